"""Fold the elementwise/layout ops of constant weight math in NumPy, before TVM's FoldConstant."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax import PyExprMutator
from tvm.relax.expr_functor import mutator

from .matching import shape_of


def _axes(call):
    return None if call.attrs.axis is None else tuple(int(a) for a in call.attrs.axis)


def _prim(expr) -> float:
    v = expr.value
    return float(getattr(v, "value", v))


# op -> f(call, numpy args) for float tensors; anything else is left to relax.transform.FoldConstant
_RULES = {
    "relax.abs": lambda c, a: np.abs(a[0]),
    "relax.negative": lambda c, a: np.negative(a[0]),
    "relax.round": lambda c, a: np.round(a[0]),          # half to even, like TVM's and torch's
    "relax.add": lambda c, a: np.add(a[0], a[1]),
    "relax.subtract": lambda c, a: np.subtract(a[0], a[1]),
    "relax.multiply": lambda c, a: np.multiply(a[0], a[1]),
    "relax.divide": lambda c, a: np.divide(a[0], a[1]),
    "relax.maximum": lambda c, a: np.maximum(a[0], a[1]),
    "relax.minimum": lambda c, a: np.minimum(a[0], a[1]),
    "relax.clip": lambda c, a: np.clip(a[0], _prim(c.args[1]), _prim(c.args[2])),
    # NumPy sums float32 pairwise: closer to torch's absmean than TVM's sequential sum (ulp level)
    "relax.mean": lambda c, a: np.mean(a[0], axis=_axes(c), keepdims=bool(c.attrs.keepdims)),
    "relax.sum": lambda c, a: np.sum(a[0], axis=_axes(c), keepdims=bool(c.attrs.keepdims)),
    "relax.permute_dims": lambda c, a: np.transpose(
        a[0], None if c.attrs.axes is None else [int(x) for x in c.attrs.axes]),
    "relax.reshape": lambda c, a: np.reshape(a[0], shape_of(c)),
    "relax.broadcast_to": lambda c, a: np.broadcast_to(a[0], shape_of(c)),
    "relax.astype": lambda c, a: a[0].astype(str(c.attrs.dtype)),
}
# arguments that are attributes in disguise (clip bounds, target shapes), not tensors to fold
_STATIC_ARGS = {"relax.clip": 1, "relax.reshape": 1, "relax.broadcast_to": 1}


@mutator
class _Folder(PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod

    def _value(self, expr):
        if isinstance(expr, relax.Var):
            expr = self.lookup_binding(expr)
        return expr.value.numpy() if isinstance(expr, Constant) else None

    def visit_call_(self, call: relax.Call):
        call = super().visit_call_(call)
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name in _RULES):
            return call
        tensors = call.args[:_STATIC_ARGS.get(call.op.name, len(call.args))]
        values = [self._value(a) for a in tensors]
        if any(v is None or v.dtype.kind != "f" for v in values):
            return call
        out = np.asarray(_RULES[call.op.name](call, values))
        dtype = str(call.ty.dtype)
        return relax.const(np.ascontiguousarray(out.astype(dtype, copy=False)), dtype)

    def run(self) -> tvm.IRModule:
        for gv, func in self.mod.functions_items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gv, self.visit_expr(func))
        return self.builder_.get()


@tvm.transform.module_pass(opt_level=0, name="FoldConstantNumpy")
class FoldConstantNumpy:
    """Evaluate calls of the ops in ``_RULES`` whose tensor inputs are constants (float), in NumPy.

    A ternarized model exports its fake-quantized weights as math on parameters (absmean,
    divide, round, clip, multiply, transpose): ~750 ops for DeiT-Tiny. ``relax.transform.FoldConstant``
    builds each with LLVM (24 s); NumPy takes under a second. Results agree with TVM's up to the
    float summation order of ``mean`` (an ulp of the absmean scale). FoldConstant runs after it for
    the rest.
    """

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Folder(mod).run()
