"""Store the float side tensors of our kernels (scales, biases) as fp16, widened before each call."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax import expr_functor

from schedules.compute.fp16 import decode_f16, fp16_exact, to_f16_bits

from .base import KernelMutator, tensor_sinfo

MIN_ELEMENTS = 16   # below this the decode call costs more than the bytes it saves
# kernel parameter names of the side tensors (schedules/compute/): added biases, multiplied scales
ROLES = {"bias": "bias", "b1": "bias", "b2": "bias", "bq": "bias",
         "alpha": "scale", "a1": "scale", "a2": "scale", "aq": "scale"}


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def __init__(self, mod, rounded: tuple[str, ...]):
        super().__init__(mod)
        self.rounded = rounded

    def _wanted(self, arr: np.ndarray, role: str | None) -> bool:
        if arr.dtype != np.float32 or arr.ndim != 1 or arr.size < MIN_ELEMENTS:
            return False
        if fp16_exact(arr):
            return True
        with np.errstate(over="ignore"):
            return role in self.rounded and bool(np.isfinite(arr.astype(np.float16)).all())

    def visit_call_(self, call: relax.Call):
        if self.kernel_attrs(call) is None:   # call_tir or call_tir_inplace of one of ours
            return super().visit_call_(call)
        params = self.builder_.get()[call.args[0]].params
        args = []
        changed = False
        for a, param in zip(call.args[1].fields, params):
            role = ROLES.get(param.name)
            if isinstance(a, Constant) and self._wanted(a.value.numpy(), role):
                arr = a.value.numpy()
                n = arr.size
                bits = relax.const(to_f16_bits(arr))
                a = self.emit_kernel(decode_f16(n), f"decode_f16_n{n}", [bits],
                                     tensor_sinfo((n,), "float32"))
                changed = True
            else:
                a = self.new(a)
            args.append(a)
        if not changed:
            return super().visit_call_(call)
        return relax.Call(call.op, [call.args[0], relax.Tuple(args)], call.attrs, call.ty_args)


@tvm.transform.module_pass(opt_level=0, name="StoreSideTensorsFp16")
class StoreSideTensorsFp16:
    """Every 1-D float32 constant (>= 16 values) passed to one of our kernels is stored as fp16
    bits and widened by a ``decode_f16`` call right before the kernel (its float32 copy lives in
    the arena only for that call; the kernels are unchanged). Values exactly representable in
    fp16 always are (lossless); the others only when their role -- ``"bias"`` or ``"scale"``, from
    the kernel's parameter name -- is in ``rounded`` (a measured numerics trade, README "Flash").

    Runs after constant folding (``runtime.lower.lower_for_aot(..., after_fold=[...])``): folding
    would turn the decode calls back into float32 constants.
    """

    def __init__(self, rounded: tuple[str, ...] = ("bias",)):
        unknown = set(rounded) - set(ROLES.values())
        if unknown:
            raise ValueError(f"unknown side-tensor roles {sorted(unknown)}")
        self.rounded = tuple(rounded)

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod, self.rounded).run()
