"""Recognise integer attention (int8 Q/K/V, softmax, uint8 probabilities) as one int8_attention kernel."""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax
from tvm.relax import expr_functor

from schedules import compute

from .base import KernelMutator, tensor_sinfo
from .matching import ActQuantPattern, scalar_const, shape_of


def _is_last_two_swap(call) -> bool:
    rank = len(shape_of(call.args[0]))
    axes = call.attrs.axes
    if axes is None:
        return rank == 2
    perm = [int(a) for a in axes]
    return perm == list(range(rank - 2)) + [rank - 1, rank - 2]


@expr_functor.mutator
class _Rewriter(KernelMutator):
    def __init__(self, mod):
        super().__init__(mod)
        self.quant = ActQuantPattern()

    def _quantized(self, expr, transposed: bool):
        """Float input of a per-token quantizer at ``expr`` (through views, optional transposes)."""
        expr = self.lookup.strip_views(expr)
        if transposed:
            t = self.lookup.call(expr, "relax.permute_dims")
            if t is None or not _is_last_two_swap(t):
                return None
            expr = self.lookup.strip_views(t.args[0])
        m = self.quant.match(self.lookup.value(expr), self.lookup.var2val)
        return m.x if m is not None and m.per_token else None

    def _quantized_per_channel(self, expr):
        """Float V under ``quant(V^T)^T``: per-channel quantization over the tokens."""
        vt = self._quantized(expr, transposed=True)
        t = None if vt is None else self.lookup.call(vt, "relax.permute_dims")
        return t.args[0] if t is not None and _is_last_two_swap(t) else None

    def _probabilities(self, expr):
        """Softmax logits under ``clip(round(p * 255)) / 255`` (or ``* (1/255)``)."""
        v = self.lookup.value(self.lookup.strip_views(expr))
        if not (isinstance(v, relax.Call) and v.op.name in ("relax.divide", "relax.multiply")):
            return None
        c = scalar_const(v.args[1])
        if c is None or not np.isclose(c if v.op.name == "relax.divide" else 1 / c, 255.0):
            return None
        clip = self.lookup.call(v.args[0], "relax.clip")
        if clip is None or (float(clip.args[1].value), float(clip.args[2].value)) != (0.0, 255.0):
            return None
        rnd = self.lookup.call(clip.args[0], "relax.round")
        mul = None if rnd is None else self.lookup.call(rnd.args[0], "relax.multiply")
        if mul is None or not np.isclose(scalar_const(mul.args[1]) or 0.0, 255.0):
            return None
        sm = self.lookup.call(mul.args[0], "relax.nn.softmax")
        if sm is None or int(sm.attrs.axis) not in (-1, len(shape_of(sm)) - 1):
            return None
        return sm.args[0]

    def _scores(self, expr):
        """``(q, k, scale)`` for ``matmul(quant(q), quant(k)^T) * scale`` (or ``/ sqrt(d)``)."""
        v = self.lookup.value(self.lookup.strip_views(expr))
        if not (isinstance(v, relax.Call) and v.op.name in ("relax.multiply", "relax.divide")):
            return None
        c = scalar_const(v.args[1])
        if c is None:
            return None
        scale = c if v.op.name == "relax.multiply" else 1.0 / c
        mm = self.lookup.call(self.lookup.strip_views(v.args[0]), "relax.matmul")
        if mm is None:
            return None
        q = self._quantized(mm.args[0], transposed=False)
        k = self._quantized(mm.args[1], transposed=True)
        return None if q is None or k is None else (q, k, scale)

    def visit_call_(self, call: relax.Call):
        if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.matmul"):
            return super().visit_call_(call)
        logits = self._probabilities(call.args[0])
        scores = None if logits is None else self._scores(logits)
        # V is quantized per channel over the tokens: a per-token quantizer on V^T, transposed back
        v = None if scores is None else self._quantized_per_channel(call.args[1])
        if v is None:
            return super().visit_call_(call)
        q, k, scale = scores
        shape = shape_of(q)
        if len(shape) not in (3, 4) or shape_of(k) != shape or shape_of(v) != shape:
            return super().visit_call_(call)
        b, h, n, hd = ([1] + shape) if len(shape) == 3 else shape
        q, k, v = (self._as4d(self.new(e), (b, h, n, hd)) for e in (q, k, v))
        name = compute.kernel_name("int8_attention", b=b, h=h, n=n, hd=hd)
        out = self.emit_kernel(compute.int8_attention(b, h, n, hd, scale), name, [q, k, v],
                               tensor_sinfo((b, h, n, hd), "float32"))
        return relax.op.reshape(out, shape_of(call))

    def _as4d(self, x, shape):
        return x if shape_of(x) == list(shape) else self.builder_.emit(relax.op.reshape(x, shape))


@tvm.transform.module_pass(opt_level=0, name="FuseInt8Attention")
class FuseInt8Attention:
    """``quant(P) @ quant_v(V)`` with ``P = softmax(quant(Q) @ quant(K)^T * c)`` -> int8_attention."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Rewriter(mod).run()
