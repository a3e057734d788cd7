"""TensorIR compute of the int8 quantizers (per token, per tensor, per patch with im2col, per
channel) and the absmax / scale / code helpers the other op families quantize with.

Per-token absmax int8 (``ACT_EPS``), round half to even (``nearbyint``), SPEC §1.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .kernel_base import ACT_EPS, _absf, _tag, cached_builder, max_block


def _abs_at(x, i, j):
    """``|x[i, j]|``: the term of a plain absmax (``kernel_base.max_block``)."""
    return _absf(x[i, j])


def _scale(amax):
    return T.max(amax, T.float32(ACT_EPS)) / T.float32(127.0)


# (macros see the names defined before them: _scale comes first)
@T.macro
def _row_scales(t, amax, s):
    """Per-row scales ``s = _scale(amax)`` (block ``scale``; also the x86 lane quantizers')."""
    for i in range(t):
        with T.sblock("scale"):
            vi = T.axis.remap("S", [i])
            s[vi] = _scale(amax[vi])


def scale_block(name: str, rows: int, cols: int):
    """A fresh ``T.macro`` ``(amax, s)``: the block ``name``, ``s[i, j] = _scale(amax[i, j])``
    over ``rows x cols`` -- the int8 scales of a table of absmax values (per (token, head) for
    the attention's queries and keys, per (head, channel) for the x86 values). Fresh per call,
    so the block keeps its name."""

    @T.macro
    def block(amax, s):
        for i, j in T.grid(rows, cols):
            with T.sblock(name):
                vi, vj = T.axis.remap("SS", [i, j])
                s[vi, vj] = _scale(amax[vi, vj])

    return block


@T.macro
def _patch_scales(b, gh, gw, amax, s):
    """Per-patch scales ``s[token] = _scale(amax[b, gy, gx])`` (block ``scale``)."""
    for bi, gy, gx in T.grid(b, gh, gw):
        with T.sblock("scale"):
            vb, vy, vx = T.axis.remap("SSS", [bi, gy, gx])
            s[(vb * gh + vy) * gw + vx] = _scale(amax[vb, vy, vx])


@T.macro
def _absmax_quant(t, k, y, q, s, amax):
    """Blocks shared by the quantizing kernels: per-row absmax of ``y`` -> ``s``, int8 codes -> ``q``."""
    max_block("absmax", t, k, "SR", T.float32(0), _abs_at)(y, amax)
    _row_scales(t, amax, s)
    for i, j in T.grid(t, k):
        with T.sblock("quant"):
            vi, vj = T.axis.remap("SS", [i, j])
            q[vi, vj] = T.Cast("int8", T.max(T.min(T.nearbyint(y[vi, vj] / s[vi]),
                                                   T.float32(127)), T.float32(-128)))


@cached_builder
def quantize_act(t: int, k: int) -> tirx.PrimFunc:
    """Per-token absmax int8 quantizer: ``x[t,k] f32 -> (q[t,k] int8, s[t] f32)``."""

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "float32"), q: T.Buffer((t, k), "int8"),
             s: T.Buffer((t,), "float32")):
        amax = T.sblock_alloc_buffer((t,), "float32")
        _absmax_quant(t, k, x, q, s, amax)

    return _tag(func, "quantize_act", t=t, k=k)


@cached_builder
def quantize_act_tensor(t: int, k: int) -> tirx.PrimFunc:
    """Per-tensor absmax int8 quantizer: one scale for the whole ``x[t,k]``, written to every
    ``s[t]`` so ``ternary_matmul`` consumes it like per-token scales."""

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "float32"), q: T.Buffer((t, k), "int8"),
             s: T.Buffer((t,), "float32")):
        amax = T.sblock_alloc_buffer((1,), "float32")
        for i, j in T.grid(t, k):
            with T.sblock("absmax"):
                vi, vj = T.axis.remap("RR", [i, j])
                with T.init():
                    amax[0] = T.float32(0)
                amax[0] = T.max(amax[0], _absf(x[vi, vj]))
        for i in range(t):
            with T.sblock("scale"):
                vi = T.axis.remap("S", [i])
                s[vi] = _scale(amax[0])
        for i, j in T.grid(t, k):
            with T.sblock("quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                q[vi, vj] = _q8(x[vi, vj], amax[0])

    return _tag(func, "quantize_act_tensor", t=t, k=k)


@cached_builder
def quantize_patches(b: int, c: int, gh: int, gw: int, p: int) -> tirx.PrimFunc:
    """im2col of a stride == kernel patch embedding fused with the per-patch int8 quantizer.

    ``x[b, c, gh*p, gw*p] f32 -> (q[b*gh*gw, c*p*p] int8, s[b*gh*gw] f32)`` with patches in
    (c, kh, kw) order; the [tokens, c*p*p] float patch matrix is never written.
    """
    t, f = b * gh * gw, c * p * p

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((b, c, gh * p, gw * p), "float32"), q: T.Buffer((t, f), "int8"),
             s: T.Buffer((t,), "float32")):
        amax = T.sblock_alloc_buffer((b, gh, gw), "float32")
        for bi, gy, gx, ci, ky, kx in T.grid(b, gh, gw, c, p, p):
            with T.sblock("absmax"):
                vb, vy, vx, vc, vky, vkx = T.axis.remap("SSSRRR", [bi, gy, gx, ci, ky, kx])
                with T.init():
                    amax[vb, vy, vx] = T.float32(0)
                amax[vb, vy, vx] = T.max(amax[vb, vy, vx],
                                         _absf(x[vb, vc, vy * p + vky, vx * p + vkx]))
        _patch_scales(b, gh, gw, amax, s)
        for bi, gy, gx, ci, ky, kx in T.grid(b, gh, gw, c, p, p):
            with T.sblock("quant"):
                vb, vy, vx, vc, vky, vkx = T.axis.remap("SSSSSS", [bi, gy, gx, ci, ky, kx])
                q[(vb * gh + vy) * gw + vx, (vc * p + vky) * p + vkx] = _q8(
                    x[vb, vc, vy * p + vky, vx * p + vkx], amax[vb, vy, vx])

    return _tag(func, "quantize_patches", b=b, c=c, gh=gh, gw=gw, p=p)


@cached_builder
def quantize_channels(t: int, d: int) -> tirx.PrimFunc:
    """Per-channel absmax int8 over the tokens: ``v[t,d] f32 -> (q[t,d] int8, amax[d] f32)``."""
    # channels outermost: each channel's absmax over the tokens in one pass down its column
    channel_absmax = max_block("channel_absmax", d, t, "SR", T.float32(0),
                               lambda v, j, i: _absf(v[i, j]))

    @T.prim_func(s_tir=True)
    def func(v: T.Buffer((t, d), "float32"), q: T.Buffer((t, d), "int8"),
             amax: T.Buffer((d,), "float32")):
        channel_absmax(v, amax)
        for i, j in T.grid(t, d):
            with T.sblock("channel_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                q[vi, vj] = _q8(v[vi, vj], amax[vj])

    return _tag(func, "quantize_channels", t=t, d=d)


def _q8(x, amax):
    return _q8s(x, _scale(amax))


def _q8s(x, scale):
    """int8 code of ``x`` on the grid ``scale`` (``_q8`` with the row's scale already computed:
    the same value, one division per element fewer)."""
    return T.Cast("int8", T.max(T.min(T.nearbyint(x / scale), T.float32(127)), T.float32(-128)))
