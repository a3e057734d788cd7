"""Rewrite a LayerNorm with ternary gamma/beta whose output is not quantized into one kernel."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute
from schedules.compute import ternary_layernorm_float

from .base import KernelMutator, const, tensor_sinfo
from .matching import per_tensor_ternary, shape_of


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.layer_norm"):
            return super().visit_call_(call)
        x, gamma, beta = call.args
        shape = shape_of(x)
        d = shape[-1]
        axes = [int(a) for a in call.attrs.axes]
        g, b = per_tensor_ternary(gamma, d), per_tensor_ternary(beta, d)
        if g is None or b is None or axes not in ([-1], [len(shape) - 1]):
            return super().visit_call_(call)
        t = int(np.prod(shape[:-1]))
        x = self.new(x)
        x2 = x if len(shape) == 2 else self.builder_.emit(relax.op.reshape(x, (t, d)))
        eps = float(call.attrs.epsilon)
        args = [x2, const(g[0]), const(b[0]), const(np.array([g[1], b[1]], np.float32))]
        y = self.emit_kernel(ternary_layernorm_float(t, d, eps),
                             compute.kernel_name("ternary_layernorm_float", t=t, d=d), args,
                             tensor_sinfo((t, d), "float32"))
        return y if len(shape) == 2 else relax.op.reshape(y, shape)


@tvm.transform.module_pass(opt_level=0, name="FuseTernaryLayerNormFloat")
class FuseTernaryLayerNormFloat:
    """``layer_norm(x, a_g*t_g, a_b*t_b)`` not followed by a quantizer (runs after
    FuseTernaryLayerNorm) -> one ``ternary_layernorm_float`` kernel over ``[rows, d]``: ``norm_pre``,
    q/k norms, a final norm read by two heads. Non-ternary gamma/beta are left alone."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
