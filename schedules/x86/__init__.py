"""The x86 (LLVM) target: everything that makes the fused kernels fast on AVX-512 VNNI / AVX2.

* ``schedule``: the schedules, one per kernel kind (``SCHEDULES``), and ``schedule_module`` (tuning
  records first, then the hand schedules); the ISA from the target (``target_isa``).
* ``intrin``: the tensor intrinsics (``vpdpbusd``, ``vpmaddubsw``/``vpmaddwd`` dot tiles).
* ``forms`` / ``attention_forms``: the x86 TensorIR forms of the generic computes (the ``v16x4``
  tiled matmul, the int16 AVX2 matmul, lane-split quantizers and LayerNorm, attention in the
  layouts of each ISA), same signatures and numerics as ``schedules.compute``.
* ``fast_math``: vectorizable ``exp``/``erf``; ``space``: the tuning search space of its matmul.

A new kernel kind gets its schedule in ``schedule.SCHEDULES``; a new target gets a sibling package
with the same shape (``schedule_module``, its intrinsics, its space).
"""

from .schedule import PASS_CONFIG, host_target, schedule_module, target_isa

__all__ = ["PASS_CONFIG", "host_target", "schedule_module", "target_isa"]
