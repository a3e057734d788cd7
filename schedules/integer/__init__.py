"""The integer numerics mode (``numerics="integer"``): fixed point between the integer matmuls.

* ``intmath``: the contract -- each fixed-point op written once against a backend, giving both the
  NumPy reference and the TensorIR expression; ``intmath_ref``: the NumPy reference kernels.
* ``kernels`` (LayerNorm, MLP, K/V projections, patch embedding) and ``attention`` (the attention
  block): the integer TensorIR forms, with the same signatures as the float kernels of
  ``schedules.compute``.
* ``forms``: float kernel -> its integer form (``integer_form``), used by the target's
  ``to_integer`` (``schedules.esp32s3.integer``, which also holds their PIE schedules).

A new integer op goes into ``intmath`` (with its NumPy and TensorIR forms) and the kernel that uses
it here; its schedule goes into the target package.
"""
