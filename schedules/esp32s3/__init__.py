"""The ESP32-S3 (Xtensa, C) target: schedules, tensor intrinsics, the weight-stationary forms.

* ``schedule``: the hand schedules, one per kernel kind (``SCHEDULES``), and ``schedule_module``
  (tuning records first); ``kernel_variant="pie"`` (default) is weight-stationary on the PIE
  micro-kernels, ``"xtensa"`` the scalar row-streamed kernels.
* ``intrin``: the scalar ``fter_tmm_*`` intrinsics (one token row x NB channels);
  ``pie_intrin``: the PIE tile, QK-row and P.V-row intrinsics.
* ``stationary``: the weight-stationary MLP form the PIE schedules swap in.
* ``integer``: PIE schedules of the integer forms (``schedules.integer``) and ``to_integer``.
* ``space``: the tuning search space (the hand schedules with their tile choices sampled).

A new kernel kind gets its schedule in ``schedule.SCHEDULES`` (and, for the integer mode,
``integer.SCHEDULES``); a new micro-kernel gets its intrinsic here and its C in
``runtime/kernels``.
"""

from .integer import to_integer
from .schedule import schedule_module

__all__ = ["schedule_module", "to_integer"]
