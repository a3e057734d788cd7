"""TensorIR compute of TernaryLayerNorm: fused with the next layer's quantizer
(``ternary_layernorm_quant``) or with a float output (``ternary_layernorm_float``: ``norm_pre``, q/k
norms, a final norm read by two heads). Both share the row statistics (``_layernorm_rows``).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .kernel_base import _tag, cached_builder
from .quantize import _absmax_quant

@T.macro
def _layernorm_rows(t, d, eps, x, g, b, ab, total, mean, sq, std, y):
    """TernaryLayerNorm of every row into ``y`` (shared by the quantizing and the float-output
    kernel): ``(x - mean) / sqrt(var + eps) * (ab[0] * g) + ab[1] * b``."""
    for i, r in T.grid(t, d):
        with T.sblock("sum"):
            vi, vr = T.axis.remap("SR", [i, r])
            with T.init():
                total[vi] = T.float32(0)
            total[vi] = total[vi] + x[vi, vr]
    # the row's mean and standard deviation once per row (the C compiler cannot hoist our
    # sqrtf, and a soft-float division per element costs more than the rest of the row)
    for i in range(t):
        with T.sblock("mean"):
            vi = T.axis.remap("S", [i])
            mean[vi] = total[vi] / T.float32(d)
    for i, r in T.grid(t, d):
        with T.sblock("sqsum"):
            vi, vr = T.axis.remap("SR", [i, r])
            with T.init():
                sq[vi] = T.float32(0)
            sq[vi] = sq[vi] + (x[vi, vr] - mean[vi]) * (x[vi, vr] - mean[vi])
    for i in range(t):
        with T.sblock("std"):
            vi = T.axis.remap("S", [i])
            std[vi] = T.sqrt(sq[vi] / T.float32(d) + T.float32(eps))
    for i, j in T.grid(t, d):
        with T.sblock("norm"):
            vi, vj = T.axis.remap("SS", [i, j])
            y[vi, vj] = (x[vi, vj] - mean[vi]) / std[vi] * (ab[0] * T.Cast("float32", g[vj])) + (
                ab[1] * T.Cast("float32", b[vj]))


@cached_builder
def ternary_layernorm_quant(t: int, d: int, eps: float) -> tirx.PrimFunc:
    """TernaryLayerNorm fused with the next layer's quantizer.

    ``y = (x - mean) / sqrt(var + eps) * (ab[0] * g) + ab[1] * b`` with ternary codes ``g, b`` (int8)
    and their absmean scales ``ab[0], ab[1]``; then ``y -> (q int8, s f32)`` per token.
    """

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, d), "float32"), g: T.Buffer((d,), "int8"), b: T.Buffer((d,), "int8"),
             ab: T.Buffer((2,), "float32"), q: T.Buffer((t, d), "int8"),
             s: T.Buffer((t,), "float32")):
        total = T.sblock_alloc_buffer((t,), "float32")
        mean = T.sblock_alloc_buffer((t,), "float32")
        sq = T.sblock_alloc_buffer((t,), "float32")
        std = T.sblock_alloc_buffer((t,), "float32")
        y = T.sblock_alloc_buffer((t, d), "float32")
        amax = T.sblock_alloc_buffer((t,), "float32")
        _layernorm_rows(t, d, eps, x, g, b, ab, total, mean, sq, std, y)
        _absmax_quant(t, d, y, q, s, amax)

    return _tag(func, "ternary_layernorm", t=t, d=d, eps=repr(float(eps)))


@cached_builder
def ternary_layernorm_float(t: int, d: int, eps: float) -> tirx.PrimFunc:
    """``y = (x - mean) / sqrt(var + eps) * (ab[0] * g) + ab[1] * b`` per row, float output.

    Same arithmetic as ``ternary_layernorm_quant`` without the quantizer.
    """

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, d), "float32"), g: T.Buffer((d,), "int8"), b: T.Buffer((d,), "int8"),
             ab: T.Buffer((2,), "float32"), y: T.Buffer((t, d), "float32")):
        total = T.sblock_alloc_buffer((t,), "float32")
        mean = T.sblock_alloc_buffer((t,), "float32")
        sq = T.sblock_alloc_buffer((t,), "float32")
        std = T.sblock_alloc_buffer((t,), "float32")
        _layernorm_rows(t, d, eps, x, g, b, ab, total, mean, sq, std, y)

    return _tag(func, "ternary_layernorm_float", t=t, d=d, eps=repr(float(eps)))
