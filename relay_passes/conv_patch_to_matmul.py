"""Rewrite a stride == kernel conv2d with a ternary constant weight into im2col + matmul."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax import PyExprMutator, expr_functor

from .matching import ActQuantPattern, Lookup, shape_of, ternary_decompose


def _ints(values) -> list[int]:
    return [int(v) for v in values]


def _patchify(bb, x, p: int):
    """``[B, C, gh*p, gw*p] -> [B, gh*gw, C*p*p]`` in (c, kh, kw) order (pure layout)."""
    b, c, h, w = shape_of(x)
    gh, gw = h // p, w // p
    x = bb.emit(relax.op.reshape(x, (b, c, gh, p, gw, p)))
    x = bb.emit(relax.op.permute_dims(x, [0, 2, 4, 1, 3, 5]))
    return bb.emit(relax.op.reshape(x, (b, gh * gw, c * p * p)))


@expr_functor.mutator
class _Rewriter(PyExprMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.mod = mod
        self.quant = ActQuantPattern()
        self.lookup: Lookup | None = None

    def _conv_params(self, call):
        a = call.attrs
        weight = call.args[1]
        if not isinstance(weight, Constant) or str(a.data_layout) != "NCHW" or \
                str(a.kernel_layout) != "OIHW" or int(a.groups) != 1:
            return None
        d, c, kh, kw = shape_of(weight)
        if kh != kw or _ints(a.strides) != [kh, kw] or any(_ints(a.padding)) or \
                _ints(a.dilation) != [1, 1]:
            return None
        _, _, h, w = shape_of(call.args[0])
        if h % kh or w % kw or ternary_decompose(weight.value.numpy(), channel_axis=0) is None:
            return None
        return kh, weight.value.numpy().reshape(d, c * kh * kw)

    def visit_call_(self, call: relax.Call):
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.conv2d"):
            return super().visit_call_(call)
        found = self._conv_params(call)
        if found is None:
            return super().visit_call_(call)
        p, wmat = found
        bb = self.builder_
        act = self.quant.match(self.lookup.value(call.args[0]), self.lookup.var2val)
        if act is not None and not act.per_token:
            # a per-tensor quantizer commutes with the patch layout: quantize the patches instead
            patches = _patchify(bb, self.visit_expr(act.x), p)
            patches = bb.emit(_per_tensor_fake_quant(patches))
        else:
            patches = _patchify(bb, self.visit_expr(call.args[0]), p)
        y = bb.emit(relax.op.matmul(patches, relax.const(np.ascontiguousarray(wmat.T))))
        b, d, gh, gw = shape_of(call)
        y = bb.emit(relax.op.permute_dims(y, [0, 2, 1]))
        return relax.op.reshape(y, (b, d, gh, gw))

    def run(self):
        for gv, func in self.mod.functions_items():
            if isinstance(func, relax.Function):
                self.lookup = Lookup(func)
                self.builder_.update_func(gv, self.visit_expr(func))
        return relax.transform.DeadCodeElimination()(self.builder_.get())


def _per_tensor_fake_quant(x):
    """``clip(round(x / s), -128, 127) * s`` with ``s = max(max|x|, eps) / 127`` (per tensor)."""
    s = relax.op.divide(relax.op.clip(relax.op.max(relax.op.abs(x)), 1e-5, float("inf")),
                        relax.const(127.0, "float32"))
    return relax.op.multiply(relax.op.clip(relax.op.round(relax.op.divide(x, s)), -128, 127), s)


@tvm.transform.module_pass(opt_level=0, name="ConvPatchToMatmul")
class ConvPatchToMatmul:
    """``conv2d(x, W)`` with stride == kernel, no padding and a ternary constant ``W`` ->
    patchify + ``matmul`` (+ layout back to NCHW), which FuseTernaryMatmul then fuses. A
    per-tensor quantizer on ``x`` moves onto the patches (same values, global max unchanged)."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
