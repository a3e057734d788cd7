"""Fuse ternary_matmul(gelu) -> quantize_act -> ternary_matmul(residual) into one ternary_mlp kernel."""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, tensor_sinfo


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def visit_call_(self, call: relax.Call):
        found = self.residual_matmul_behind(call, "ternary_matmul")
        if found is None or found[2][1]["epilogue"] != "gelu":
            return super().visit_call_(call)
        p2, fc2_args, (fc1_call, p1) = found
        if p1["fmt"] != p2["fmt"]:
            return super().visit_call_(call)
        t, d, hidden, fmt = int(p1["t"]), int(p1["k"]), int(p1["n"]), p1["fmt"]
        q, s, w1, a1, b1 = (self.new(a) for a in fc1_call.args[1].fields)
        _, _, w2, a2, b2, res = (self.new(a) for a in fc2_args)
        args = [q, s, w1, a1, b1, w2, a2, b2, res]
        inplace = isinstance(fc2_args[5], relax.Var) and self.lookup.dead_after(fc2_args[5], call)
        name = compute.kernel_name("ternary_mlp", t=t, d=d, hidden=hidden, fmt=fmt)
        func = compute.ternary_mlp(t, d, hidden, fmt, inplace=inplace)
        if inplace:   # the residual stream is updated where it is: no second [t, d] buffer
            return self.emit_kernel_inplace(func, name + "_inplace", args, 8,
                                            tensor_sinfo((t, d), "float32"))
        return self.emit_kernel(func, name, args, tensor_sinfo((t, d), "float32"))


@tvm.transform.module_pass(opt_level=0, name="FuseTernaryMlp")
class FuseTernaryMlp:
    """fc1(+GELU) -> int8 quantizer -> fc2(+residual) -> one ``ternary_mlp`` kernel.

    Optional (a target setting): worth it where memory is scarce, since a token-streamed schedule
    never materialises the [tokens, hidden] activations; the report still counts two ternary
    matmuls for it.
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
