"""Fold bias adds, GELU and residual adds that follow a ternary_matmul into its epilogue."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax import expr_functor

from .base import KernelMutator, rewrite_to_fixpoint
from .fuse_ternary_matmul import kernel_const, reemit_ternary_matmul
from .matching import shape_of


def channel_vector(expr, n: int) -> np.ndarray | None:
    """A constant that broadcasts as a per-output-channel vector of length ``n``, flattened."""
    if not isinstance(expr, Constant):
        return None
    v = expr.value.numpy()
    if v.size == n and (v.ndim == 0 or v.shape[-1] == n):
        return v.reshape(n).astype(np.float32)
    if v.size == 1:
        return np.full(n, float(v.reshape(-1)[0]), np.float32)
    return None


def reshaped(m: KernelMutator, y, like):
    shape = shape_of(like)
    return y if shape == shape_of(y) else relax.op.reshape(y, shape)


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        op = call.op.name if isinstance(call.op, tvm.ir.Op) else None
        if op == "relax.add":
            for a, b in (call.args, call.args[::-1]):
                found = self.single_use_kernel(a, "ternary_matmul")
                if found is None or found[1]["epilogue"] != "none":
                    continue
                tmm, params = found
                n = int(params["n"])
                vec = channel_vector(b, n)
                if vec is not None:
                    y = reemit_ternary_matmul(self, tmm, params, bias=kernel_const(tmm, 4) + vec)
                    return reshaped(self, y, call)
                if not isinstance(b, Constant) and shape_of(b) == shape_of(call):
                    t = int(params["t"])
                    res = self.builder_.emit(relax.op.reshape(self.new(b), (t, n)))
                    y = reemit_ternary_matmul(self, tmm, params, epilogue="residual", res=res)
                    return reshaped(self, y, call)
        if op == "relax.nn.gelu":
            found = self.single_use_kernel(call.args[0], "ternary_matmul")
            if found is not None and found[1]["epilogue"] == "none":
                y = reemit_ternary_matmul(self, *found, epilogue="gelu")
                return reshaped(self, y, call)
        return super().visit_call_(call)


@tvm.transform.module_pass(opt_level=0, name="FuseEpilogue")
class FuseEpilogue:
    """``add(bias)``, ``gelu`` and ``add(residual)`` after a ternary_matmul join its epilogue.

    Bias adds accumulate into the kernel's bias; then at most one of GELU or the residual add is
    fused (the kernel has one epilogue slot). Runs to a fixpoint so chains fold completely.
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_to_fixpoint(_Rewriter, mod)
