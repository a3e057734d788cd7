"""Kernels and their schedules, by op family and by target (the way TVM's ``dlight`` keeps one
schedule rule per op pattern per target):

* ``compute/``: the TensorIR compute of every fused kernel, one module per op family (matmul, mlp,
  attention, normalization, quantize, embedding) -- a new op goes here.
* ``integer/``: the integer numerics mode (the fixed-point contract ``intmath``, its NumPy
  reference, the integer forms of the kernels).
* ``x86/``, ``esp32s3/``: one package per target -- its schedules (``schedule.py``,
  ``schedule_module``), tensor intrinsics, target-specific kernel forms and tuning search space. A
  new target is a new sibling package of the same shape.
* ``tuning/``: applying tuning records (``database``), choosing a target's space, mutators.
* ``formats.py`` (ternary weight packing, shared with the passes and the C kernels),
  ``common.py`` (schedule steps shared by the targets).

Dependencies point one way: the target packages build on ``compute``, ``integer`` and ``tuning``;
``compute`` knows no target except that a tiled (x86) weight format's matmul is built by
``x86.forms`` (imported when asked for).
"""
