"""Tuning records and search, the parts the schedules need (the tuning run itself is
``fter_tvm.tune``):

* ``database``: apply a MetaSchedule database to a module (both targets' ``schedule_module`` call
  ``apply_database`` first), kernel keys, task modules, the baseline file.
* ``space``: which search space tunes a kernel; the spaces live beside the schedules they sample
  (``schedules.x86.space``, ``schedules.esp32s3.space``).
* ``mutators``: ``MutateCategorical``, shared by the spaces.
"""
