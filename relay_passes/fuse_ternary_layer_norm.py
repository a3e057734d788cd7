"""Fuse a LayerNorm with ternary gamma/beta and the int8 quantizer that follows it into one kernel."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, const, tensor_sinfo
from .matching import per_tensor_ternary, shape_of

# token-selecting ops that commute with a per-token LayerNorm (slicing rows before normalising
# gives the same rows as normalising first)
ROW_SELECT_OPS = ("relax.take", "relax.strided_slice")


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def _layer_norm_source(self, expr):
        """``(layer_norm call, row-select calls outermost first)`` under views and row selections."""
        selects = []
        while True:
            inner = self.lookup.single_use_chain(expr)
            if inner is None:
                return None
            v = self.lookup.value(inner)
            if not (isinstance(v, relax.Call) and isinstance(v.op, tvm.ir.Op)):
                return None
            if v.op.name == "relax.nn.layer_norm":
                return v, selects
            if v.op.name in ROW_SELECT_OPS and _selects_rows(v):
                selects.append(v)
                expr = v.args[0]
                continue
            return None

    def visit_call_(self, call: relax.Call):
        found = self.kernel_attrs(call)
        if found is None or found[0] != "quantize_act":
            return super().visit_call_(call)
        src = self._layer_norm_source(call.args[1].fields[0])
        if src is None:
            return super().visit_call_(call)
        ln, selects = src
        x, gamma, beta = ln.args
        d = shape_of(x)[-1]
        axes = [int(a) for a in ln.attrs.axes]
        g, b = per_tensor_ternary(gamma, d), per_tensor_ternary(beta, d)
        if g is None or b is None or axes not in ([-1], [len(shape_of(x)) - 1]):
            return super().visit_call_(call)
        x = self.new(x)
        for sel in reversed(selects):   # apply the row selection to the LayerNorm input instead
            x = self.builder_.emit(relax.Call(sel.op, [x] + list(sel.args[1:]), sel.attrs))
        t = int(np.prod(shape_of(x)[:-1]))
        x2 = x if len(shape_of(x)) == 2 else self.builder_.emit(relax.op.reshape(x, (t, d)))
        eps = float(ln.attrs.epsilon)
        args = [x2, const(g[0]), const(b[0]), const(np.array([g[1], b[1]], np.float32))]
        name = compute.kernel_name("ternary_layernorm", t=t, d=d)
        return self.emit_kernel(compute.ternary_layernorm_quant(t, d, eps), name, args,
                                [tensor_sinfo((t, d), "int8"), tensor_sinfo((t,), "float32")])


def _selects_rows(call: relax.Call) -> bool:
    rank = len(shape_of(call.args[0]))
    if call.op.name == "relax.take":
        return int(call.attrs.axis) % rank != rank - 1
    axes = call.args[1]
    items = axes.fields if hasattr(axes, "fields") else axes.values
    return all(int(getattr(a, "value", a)) % rank != rank - 1 for a in items)


@tvm.transform.module_pass(opt_level=0, name="FuseTernaryLayerNorm")
class FuseTernaryLayerNorm:
    """``quantize_act(layer_norm(x, a_g*t_g, a_b*t_b))`` -> one ``ternary_layernorm`` kernel.

    gamma and beta must be ternary with one scale each (per tensor); row selections between the
    LayerNorm and the quantizer (the cls-token slice before the head) move to the input.
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
