"""Rewrite a matmul of float activations by a ternary constant (+ bias) into ternary_matmul_float."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant
from tvm.relax import expr_functor

from schedules import compute
from schedules.formats import pack
from schedules.compute import row_format, ternary_matmul_float

from .base import KernelMutator, const, tensor_sinfo
from .matching import matrix_const, shape_of, ternary_decompose


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def __init__(self, mod, fmt: str):
        super().__init__(mod)
        self.fmt = row_format(fmt)

    def _ternary_matmul(self, expr):
        """``(x, TernaryWeight)`` when ``expr`` is ``matmul(x, W)`` with a ternary constant ``W[K, N]``."""
        call = self.lookup.value(expr) if isinstance(expr, relax.Var) else expr
        if not (isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.Op)
                and call.op.name == "relax.matmul"):
            return None
        x, w = call.args
        w = matrix_const(w)
        if w is None or shape_of(x)[-1] != w.shape[0] or w.dtype != np.float32 or \
                len(shape_of(x)) < 2:
            return None
        weight = ternary_decompose(w, channel_axis=1)
        return None if weight is None else (x, weight)

    def _emit(self, x, weight, bias: np.ndarray, out_shape):
        shape = shape_of(x)
        k, n = shape[-1], weight.codes.shape[0]
        t = int(np.prod(shape[:-1]))
        x = self.new(x)
        x2 = x if len(shape) == 2 else self.builder_.emit(relax.op.reshape(x, (t, k)))
        args = [x2, const(pack(weight.codes, self.fmt)), const(weight.alpha.astype(np.float32)),
                const(bias.astype(np.float32))]
        name = compute.kernel_name("ternary_matmul_float", t=t, k=k, n=n, fmt=self.fmt)
        y = self.emit_kernel(ternary_matmul_float(t, k, n, self.fmt), name, args,
                             tensor_sinfo((t, n), "float32"))
        return y if list(out_shape) == [t, n] else relax.op.reshape(y, out_shape)

    def visit_call_(self, call: relax.Call):
        if not isinstance(call.op, tvm.ir.Op):
            return super().visit_call_(call)
        if call.op.name == "relax.add":   # matmul + bias vector, the matmul used only here
            lhs, rhs = call.args
            single = isinstance(lhs, relax.Var) and self.lookup.uses.get(lhs, 0) == 1
            found = self._ternary_matmul(lhs) if single else None
            if found is not None and isinstance(rhs, Constant):
                n = found[1].codes.shape[0]
                bias = rhs.value.numpy()
                if bias.dtype == np.float32 and bias.size == n and shape_of(rhs)[-1] == n:
                    return self._emit(found[0], found[1], bias.reshape(n), shape_of(call))
        elif call.op.name == "relax.matmul":
            found = self._ternary_matmul(call)
            if found is not None:
                n = found[1].codes.shape[0]
                return self._emit(found[0], found[1], np.zeros(n, np.float32), shape_of(call))
        return super().visit_call_(call)


@tvm.transform.module_pass(opt_level=0, name="FuseTernaryMatmulFloat")
class FuseTernaryMatmulFloat:
    """``matmul(x, W) (+ b)`` with a ternary constant ``W`` and float ``x`` (no quantizer: runs
    after FuseTernaryMatmul has taken the quantized ones) -> one ``ternary_matmul_float`` kernel;
    ``W`` recognised by value and packed in ``fmt`` (row format; ``b2`` for tiled targets)."""

    def __init__(self, fmt: str = "b3"):
        self.fmt = fmt

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod, self.fmt).run()
