"""Fuse int8 attention, the output projection and the residual add into one in-place kernel."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, tensor_sinfo


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        found = self.residual_matmul_behind(call, "int8_attention_q")
        if found is None:
            return super().visit_call_(call)
        params, args, (att_call, ap) = found
        res = args[5]
        if not isinstance(res, relax.Var) or not self.lookup.dead_after(res, call):
            return super().visit_call_(call)
        n, h, hd = int(ap["n"]), int(ap["h"]), int(ap["hd"])
        fmt = params["fmt"]
        if int(params["t"]) != n or int(params["n"]) != h * hd:
            return super().visit_call_(call)
        att_args = [self.new(a) for a in att_call.args[1].fields]   # xq, xs, Wq.., k.., v..
        w, alpha, bias = (self.new(a) for a in args[2:5])
        name = compute.kernel_name("int8_attention_block", n=n, h=h, hd=hd, fmt=fmt)
        return self.emit_kernel_inplace(
            compute.int8_attention_block(n, h, hd, fmt, float(ap["scale"])), name,
            [self.new(res), *att_args, w, alpha, bias], 0, tensor_sinfo((n, h * hd), "float32"))


@tvm.transform.module_pass(opt_level=0, name="FuseAttentionProjection")
class FuseAttentionProjection:
    """``x + proj(quant(int8_attention_q(...)))`` -> ``int8_attention_block`` updating ``x``
    in place (``call_tir_inplace``), when nothing reads ``x`` afterwards: the attention output
    and the second residual buffer disappear (low-memory targets)."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
