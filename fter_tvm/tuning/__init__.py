"""Autotuning internals behind :func:`fter_tvm.tune`: task extraction, the MetaSchedule driver,
measurement in the Xtensa simulator and the tuned-vs-untuned comparison."""
