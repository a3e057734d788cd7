"""TensorIR compute of the ternary projections: ``ternary_matmul`` (int8 activations, optional GELU
or residual epilogue), ``ternary_matmul_heads`` / ``ternary_matmul_channels`` (the output quantized per
head or per channel as it is produced, the way Q/K and V enter attention), ``ternary_matmul_float``
(ternary weights on float activations: a BitNet-style patch embedding fed with the image).

Numerics follow SPEC §1: int32 accumulation of int8 x trit, fp32 epilogues. Weights are packed
(``schedules.formats``); a tiled x86 format dispatches to the x86 form (``schedules.x86.forms``).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from ..formats import get_format
from .kernel_base import (EPILOGUES, _absf, _epilogue, _tag, _trit, cached_builder, max_block,
                          scaled, ternary_acc, without_params)
from .quantize import _q8


@cached_builder
def ternary_matmul(t: int, k: int, n: int, fmt: str = "b3", epilogue: str = "none") -> tirx.PrimFunc:
    """``y[t,n] = epi(f32(sum_k q[t,k] * W[n,k]) * (alpha[n] * s[t]) + bias[n])``.

    Inputs: int8 activations ``q[t,k]``, their per-token scales ``s[t]``, packed ternary weights
    ``w[n, row_bytes(k)]``, per-channel scales ``alpha[n]``, ``bias[n]``; with ``epilogue="residual"``
    also ``res[t,n]`` which is added last.
    """
    if epilogue not in EPILOGUES:
        raise ValueError(f"unknown epilogue {epilogue!r}")
    if get_format(fmt).tile is not None:
        # tiled x86 layouts have their own compute (imported here: x86.forms builds on this package)
        from ..x86.forms import ternary_matmul_tiled

        return ternary_matmul_tiled(t, k, n, fmt, epilogue)
    kb = get_format(fmt).row_bytes(k)

    acc_block = ternary_acc("acc", t, n, k, fmt)

    @T.prim_func(s_tir=True)
    def func(q: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
             w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
             bias: T.Buffer((n,), "float32"), res: T.Buffer((t, n), "float32"),
             y: T.Buffer((t, n), "float32")):
        acc = T.sblock_alloc_buffer((t, n), "int32")
        acc_block(q, w, acc)
        for i, j in T.grid(t, n):
            with T.sblock("epilogue"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = _epilogue(
                    T.Cast("float32", acc[vi, vj]) * (alpha[vj] * s[vi]) + bias[vj],
                    res, vi, vj, epilogue)

    if epilogue != "residual":
        func = without_params(func, "res")
    return _tag(func, "ternary_matmul", t=t, k=k, n=n, fmt=fmt, epilogue=epilogue)


@cached_builder
def ternary_matmul_heads(t: int, k: int, h: int, hd: int, fmt: str = "b3") -> tirx.PrimFunc:
    """A ternary projection quantized per (token, head) as it is produced.

    ``x[t,k] int8, s[t] -> (y[t, h*hd] int8, amax[t, h] f32)``: each head's ``hd`` outputs get
    one absmax int8 scale (``amax / 127``), the way Q and K enter integer attention.
    """
    n = h * hd
    values = head_values(t, k, h, hd, fmt)

    @T.macro
    def body(x, s, w, alpha, bias, y, amax_out):
        acc, f, amax = head_scratch(t, n, h, "float32")
        values(x, s, w, alpha, bias, acc, f, amax)
        for i, g in T.grid(t, h):
            # one block per (token, head) writes both outputs: the codes and their absmax
            with T.sblock("head_quant"):
                vi, vg = T.axis.remap("SS", [i, g])
                amax_out[vi, vg] = amax[vi, vg]
                for c in range(hd):
                    y[vi, vg * hd + c] = _q8(f[vi, vg * hd + c], amax[vi, vg])

    return heads_func(t, k, h, hd, fmt, body)


def heads_func(t: int, k: int, h: int, hd: int, fmt: str, body) -> tirx.PrimFunc:
    """The tagged ``ternary_matmul_heads`` PrimFunc around the ``T.macro`` ``body(x, s, w, alpha,
    bias, y, amax_out)``: int8 ``x[t, k]`` and its token scales ``s[t]``, the packed weights,
    scales and bias of the ``h*hd`` channels, the int8 codes ``y[t, h*hd]`` and their absmax
    ``amax_out[t, h]`` per (token, head). Shared by the float and the integer form."""
    n = h * hd
    kb = get_format(fmt).row_bytes(k)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
             w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
             bias: T.Buffer((n,), "float32"), y: T.Buffer((t, n), "int8"),
             amax_out: T.Buffer((t, h), "float32")):
        body(x, s, w, alpha, bias, y, amax_out)

    return _tag(func, "ternary_matmul_heads", t=t, k=k, h=h, hd=hd, fmt=fmt)


def head_scratch(t: int, n: int, h: int, dtype: str):
    """The scratch ``head_values`` writes (either numerics), allocated in the kernel being parsed
    (call it in the body: ``acc, f, amax = head_scratch(...)`` names them): int32 accumulators
    ``[t, n]``, the values ``[t, n]`` and each (token, head)'s absmax ``[t, h]`` in ``dtype``
    (float32, or int32 in Q(G) for the integer form)."""
    return (T.sblock_alloc_buffer((t, n), "int32"), T.sblock_alloc_buffer((t, n), dtype),
            T.sblock_alloc_buffer((t, h), dtype))


def head_values(t: int, k: int, h: int, hd: int, fmt: str, names=("acc", "value", "head_absmax")):
    """A fresh ``T.macro`` ``(x, s, w, alpha, bias, acc, f, amax)``: a ternary projection's
    accumulators ``acc[t, h*hd]``, its float values ``f`` (times the channel and token scales,
    plus bias) and the absmax ``amax[t, h]`` of each (token, head) -- the head-quantized
    projections (``ternary_matmul_heads``, the attention kernels' Q) start alike. ``names``: the
    three blocks' names (the integer form: ``schedules.integer.kernels.head_values``)."""
    n = h * hd
    acc_block = ternary_acc(names[0], t, n, k, fmt)

    @T.macro
    def blocks(x, s, w, alpha, bias, acc, f, amax):
        acc_block(x, w, acc)
        for i, j in T.grid(t, n):
            with T.sblock(names[1]):
                vi, vj = T.axis.remap("SS", [i, j])
                f[vi, vj] = T.Cast("float32", acc[vi, vj]) * (alpha[vj] * s[vi]) + bias[vj]
        for i, hh, c in T.grid(t, h, hd):
            with T.sblock(names[2]):
                vi, vh, vc = T.axis.remap("SSR", [i, hh, c])
                with T.init():
                    amax[vi, vh] = T.float32(0)
                amax[vi, vh] = T.max(amax[vi, vh], _absf(f[vi, vh * hd + vc]))

    return blocks


@cached_builder
def ternary_matmul_channels(t: int, k: int, n: int, fmt: str = "b3") -> tirx.PrimFunc:
    """A ternary projection quantized per output channel over the tokens, without ever storing it
    in float: ``x[t,k] int8, s[t] -> (y[t,n] int8, amax[n] f32)``.

    The projection runs twice -- first for each channel's absmax, then to quantize with it --
    the price (t*k*n MACs) of not holding a [t, n] float tensor. Same values as
    ``ternary_matmul`` followed by ``quantize_channels``.
    """
    acc1_block = ternary_acc("acc1", t, n, k, fmt)
    acc2_block = ternary_acc("acc2", t, n, k, fmt)
    channel_absmax = max_block("channel_absmax", t, n, "RS", T.float32(0),
                               lambda v, i, j: _absf(scaled(*v, i, j)))

    @T.macro
    def body(x, s, w, alpha, bias, y, amax):
        acc1 = T.sblock_alloc_buffer((t, n), "int32")
        acc2 = T.sblock_alloc_buffer((t, n), "int32")
        acc1_block(x, w, acc1)
        channel_absmax((acc1, alpha, s, bias), amax)
        acc2_block(x, w, acc2)
        for i, j in T.grid(t, n):
            with T.sblock("channel_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = _q8(scaled(acc2, alpha, s, bias, vi, vj), amax[vj])

    return channels_func(t, k, n, fmt, body)


def channels_func(t: int, k: int, n: int, fmt: str, body) -> tirx.PrimFunc:
    """The tagged ``ternary_matmul_channels`` PrimFunc around the ``T.macro`` ``body(x, s, w,
    alpha, bias, y, amax)``: int8 ``x[t, k]`` and its token scales ``s[t]``, the packed weights,
    scales and bias of the ``n`` channels, the int8 codes ``y[t, n]`` and their absmax ``amax[n]``
    per channel. Shared by the float and the integer form."""
    kb = get_format(fmt).row_bytes(k)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
             w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
             bias: T.Buffer((n,), "float32"), y: T.Buffer((t, n), "int8"),
             amax: T.Buffer((n,), "float32")):
        body(x, s, w, alpha, bias, y, amax)

    return _tag(func, "ternary_matmul_channels", t=t, k=k, n=n, fmt=fmt)


ROW_FORMATS = ("b3", "b2")


def row_format(fmt: str) -> str:
    """The row-packed format used for ``fmt`` (tiled int8 layouts have no float kernel)."""
    return fmt if get_format(fmt).tile is None else "b2"


def _add_or_subtract(v, trit):
    """``+v``, ``-v`` or 0 as the trit says (no multiplication)."""
    return T.Select(trit > 0, v, T.Select(trit < 0, -v, T.float32(0)))


@cached_builder
def ternary_matmul_float(t: int, k: int, n: int, fmt: str = "b3") -> tirx.PrimFunc:
    """``y[t,n] = alpha[n] * sum_k trit(w)[n,k] * x[t,k] + bias[n]`` with float ``x``.

    Inputs: ``x[t,k]`` float32, packed ternary ``w[n, row_bytes(k)]`` (row format), ``alpha[n]``,
    ``bias[n]``. The trit selects ``+x``, ``-x`` or nothing: no multiplications in the sum.
    """
    if fmt not in ROW_FORMATS:
        raise ValueError(f"ternary_matmul_float needs a row format {ROW_FORMATS}, got {fmt!r}")
    kb = get_format(fmt).row_bytes(k)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "float32"), w: T.Buffer((n, kb), "uint8"),
             alpha: T.Buffer((n,), "float32"), bias: T.Buffer((n,), "float32"),
             y: T.Buffer((t, n), "float32")):
        acc = T.sblock_alloc_buffer((t, n), "float32")
        for i, j, r in T.grid(t, n, k):
            with T.sblock("acc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = T.float32(0)
                acc[vi, vj] = acc[vi, vj] + _add_or_subtract(x[vi, vr], _trit(w, vj, vr, fmt))
        for i, j in T.grid(t, n):
            with T.sblock("epilogue"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = acc[vi, vj] * alpha[vj] + bias[vj]

    return _tag(func, "ternary_matmul_float", t=t, k=k, n=n, fmt=fmt)
