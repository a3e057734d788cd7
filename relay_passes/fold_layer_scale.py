"""Fold a per-channel LayerScale multiply after a ternary_matmul into its scales and bias."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax import expr_functor

from .base import KernelMutator, rewrite_to_fixpoint
from .fuse_epilogue import channel_vector, reshaped
from .fuse_ternary_matmul import kernel_const, reemit_ternary_matmul


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        if isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.multiply":
            for a, b in (call.args, call.args[::-1]):
                found = self.single_use_kernel(a, "ternary_matmul")
                if found is None or found[1]["epilogue"] != "none":
                    continue
                tmm, params = found
                gamma = channel_vector(b, int(params["n"]))
                if gamma is None:
                    continue
                y = reemit_ternary_matmul(self, tmm, params, alpha=kernel_const(tmm, 3) * gamma,
                                          bias=kernel_const(tmm, 4) * gamma)
                return reshaped(self, y, call)
        return super().visit_call_(call)


@tvm.transform.module_pass(opt_level=0, name="FoldLayerScale")
class FoldLayerScale:
    """``ternary_matmul(...) * gamma`` (DeiT-III LayerScale) -> ``alpha * gamma``, ``bias * gamma``.

    Must run after the bias add is folded (FuseEpilogue) and before residual fusion, which is why
    the pipeline runs FuseEpilogue once more afterwards.
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_to_fixpoint(_Rewriter, mod)
