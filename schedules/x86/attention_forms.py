"""x86 compute of ``int8_attention_qkv``: the same signature and integer numerics, in the layouts
of three instruction sets -- VNNI (``int8_attention_qkv_vnni``, described here), AVX2
(``int8_attention_qkv_i16``: int16 codes for ``vpmaddwd``) and plain FMAs
(``int8_attention_qkv_f32``). The two integer layouts are one builder over a ``DotLayout``
(``_int8_attention_tiled``); the blocks all three share are ``_shared_blocks``.

``compute.int8_attention_qkv`` states the meaning; the VNNI variant lays the quantized operands out for
``vpdpbusd`` (u8 x s8 -> s32, 16 lanes x 4) and reduces float rows in explicit lanes, so the x86
schedule can tensorize both integer matmuls and vectorize the softmax:

* keys: ``kt[h, nk/16, hd/4, 16, 4]`` = ``q8(k) + 128`` as uint8, so
  ``sum_c qi*ki = sum_c qi*kt - 128 * sum_c qi`` -- one row sum per query corrects the shift.
* values: ``vt[h, hd/16, nv/4, 16, 4]`` int8; probabilities are uint8 already.
* padding keys repeat the last key; ``kbias`` (0, or -3.4e38 on padding) is added to their
  logits, so their exp underflows to ~1e-38: invisible in the row sum (>= 1) and a probability of
  0 -- masking without selects, which TVM's vectorizer would serialize.
* per-key and per-channel scales are computed once (``kscale``, ``vscale``), and Q/K/V are
  quantized by multiplying with the reciprocal scale (see ``forms``: a code can differ from
  the reference's ``x / scale`` by one step next to a rounding boundary).
* per query row: ``qi`` (int8), ``qsum``; scores ``sacc`` over padded keys; logits, row max and
  exp-sum in LANES partial lanes (padding keys masked out); ``p`` (uint8, 0 on padding);
  ``pacc`` = P.V; output.

Query rows are padded to ``n + ROW_PAD - 1`` (repeating the last row, as in the matmul) so the
schedule can tile rows without predicated tails. Given the same probabilities, the integer scores
and P.V sums equal the reference's exactly. Two float steps differ: the row exp-sum is added in
lanes, and probabilities are ``e * (255 / sum)`` -- one division per row instead of one per
element (a third of the kernel's time); a probability can move by one step of 1/255 when
``e / sum * 255`` lies within an ulp of a rounding boundary.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from tvm import tirx
from tvm.script import tirx as T

from ..compute.attention import row_dot
from ..compute.kernel_base import _absf, _tag
from ..compute.quantize import _scale, scale_block
from .forms import LANES, ROW_PAD, clamp_round, quant_int8


def supported(n: int, h: int, hd: int) -> bool:
    """Head sizes the VNNI layout covers (whole 16-lane channel tiles)."""
    return hd % 16 == 0


# float32 represents every integer up to 2^24 exactly, so sums of int8 x int8 (scores) and
# uint8 x int8 (P.V) products accumulate exactly in float32 FMAs while |sum| stays below that
F32_EXACT = 1 << 24


def supported_f32(n: int, h: int, hd: int) -> bool:
    """Sizes whose integer sums stay exact in float32 (``int8_attention_qkv_f32``): the scores of
    ``hd`` products of at most 128 * 128, the P.V sums of ``n`` products of at most 255 * 128;
    channels in whole 8-lane vectors."""
    return hd % 8 == 0 and hd * 128 * 128 <= F32_EXACT and n * 255 * 128 <= F32_EXACT


# ---- blocks both layouts share (the same buffers, the same names) ---------------------------------

def _shared_blocks(n: int, h: int, hd: int):
    """The macros both kernels expand: per-key scales and padding mask, per-channel value scales,
    per-query absmax, the softmax in lanes. Made afresh per kernel: TVMScript suffixes a macro's
    block names with its call count in the process (``kmax``, ``kmax_1``, ...), and the schedules
    look blocks up by name."""
    d = h * hd

    def lane_reduction(name: str, init: float, combine):
        """A ``T.macro`` ``(rows, cols, term, src, part, out)``: ``out[hh, i]`` is ``combine``
        folded from ``init`` over the ``cols`` columns of row ``i`` of head ``hh``, column
        ``co * LANES + l`` being ``term(src, hh, i, co, l)`` -- first into LANES partial
        results ``part[hh, i, :]`` (block ``name_lanes``: the lanes are a spatial axis, so it
        vectorizes), then across them (block ``name``)."""

        @T.macro
        def reduce(rows, cols, term, src, part, out):
            for hh, i, co, l in T.grid(h, rows, cols // LANES, LANES):
                with T.sblock(name + "_lanes"):
                    vh, vi, vco, vl = T.axis.remap("SSRS", [hh, i, co, l])
                    with T.init():
                        part[vh, vi, vl] = T.float32(init)
                    part[vh, vi, vl] = combine(part[vh, vi, vl], term(src, vh, vi, vco, vl))
            for hh, i, l in T.grid(h, rows, LANES):
                with T.sblock(name):
                    vh, vi, vl = T.axis.remap("SSR", [hh, i, l])
                    with T.init():
                        out[vh, vi] = T.float32(init)
                    out[vh, vi] = combine(out[vh, vi], part[vh, vi, vl])

        return reduce

    value_scales = scale_block("vscale", h, hd)
    kmax_reduce = lane_reduction("kmax", 0, T.max)
    qmax_reduce = lane_reduction("qmax", 0, T.max)
    lmax_reduce = lane_reduction("lmax", -3.4e38, T.max)
    lsum_reduce = lane_reduction("lsum", 0, operator.add)

    def key_abs(qkv, vh, vj, co, l):
        return _absf(qkv[vj, d + vh * hd + co * LANES + l])

    def query_abs(qkv, vh, vi, co, l):      # padding rows repeat the last query
        return _absf(qkv[T.min(vi, n - 1), vh * hd + co * LANES + l])

    def row(x, vh, vi, co, l):
        return x[vh, vi, co * LANES + l]

    @T.macro
    def _key_scales(nk, qkv, kmax_l, kmax, kbias, kscale):
        """Per-key absmax in LANES lanes, the padding-key mask and the per-key scales."""
        kmax_reduce(n, hd, key_abs, qkv, kmax_l, kmax)
        for j in range(nk):
            with T.sblock("kbias"):
                vj = T.axis.remap("S", [j])
                kbias[vj] = T.Select(vj < n, T.float32(0), T.float32(-3.4e38))
        for hh, j in T.grid(h, nk):
            with T.sblock("kscale"):
                vh, vj = T.axis.remap("SS", [hh, j])
                kscale[vh, vj] = _scale(kmax[vh, T.min(vj, n - 1)])


    @T.macro
    def _value_scales(qkv, vmax, vscale, vinv):
        """Per-channel absmax of the values over all keys, the scales and their reciprocals."""
        for hh, j, c in T.grid(h, n, hd):
            with T.sblock("vmax"):
                vh, vj, vc = T.axis.remap("SRS", [hh, j, c])
                with T.init():
                    vmax[vh, vc] = T.float32(0)
                vmax[vh, vc] = T.max(vmax[vh, vc], _absf(qkv[vj, 2 * d + vh * hd + vc]))
        value_scales(vmax, vscale)
        for hh, c in T.grid(h, hd):
            with T.sblock("vinv"):
                vh, vc = T.axis.remap("SS", [hh, c])
                vinv[vh, vc] = T.float32(1) / vscale[vh, vc]


    @T.macro
    def _query_absmax(nq, qkv, qmax_l, qmax):
        """Per-query absmax in LANES lanes."""
        qmax_reduce(nq, hd, query_abs, qkv, qmax_l, qmax)


    @T.macro
    def _softmax_lanes(nq, nk, logit, lmax_l, lmax, e, lsum_l, lsum, pscale):
        """Row max and exp-sum of the logits in LANES lanes; ``pscale`` = 255 / sum."""
        lmax_reduce(nq, nk, row, logit, lmax_l, lmax)
        for hh, i, j in T.grid(h, nq, nk):
            with T.sblock("exp"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                e[vh, vi, vj] = T.exp(logit[vh, vi, vj] - lmax[vh, vi])
        lsum_reduce(nq, nk, row, e, lsum_l, lsum)
        for hh, i in T.grid(h, nq):
            with T.sblock("pscale"):
                vh, vi = T.axis.remap("SS", [hh, i])
                pscale[vh, vi] = T.float32(255) / lsum[vh, vi]

    return _key_scales, _value_scales, _query_absmax, _softmax_lanes


def _scales_scratch(n: int, h: int, hd: int, nk: int):
    """The scratch of ``_key_scales`` and ``_value_scales``, allocated in the calling kernel:
    ``kmax_l, kmax, kscale, kbias, vmax, vscale, vinv``."""
    channels = (h, hd)
    return tuple(T.sblock_alloc_buffer(shape, "float32") for shape in (
        (h, n, LANES), (h, n), (h, nk), (nk,), channels, channels, channels))


def _softmax_scratch(h: int, nq: int, nk: int):
    """The scratch of ``_softmax_lanes``, allocated in the calling kernel: ``logit, lmax_l,
    lmax, e, lsum_l, lsum, pscale``."""
    lanes, rows, keys = (h, nq, LANES), (h, nq), (h, nq, nk)
    return tuple(T.sblock_alloc_buffer(shape, "float32")
                 for shape in (keys, lanes, rows, keys, lanes, rows, rows))


@dataclass(frozen=True)
class DotLayout:
    """How the integer attention kernel stores its operands for one dot instruction: ``lanes``
    int32 outputs, each the sum of ``group`` products; key / query / value / probability dtypes;
    ``key_shift`` added to the key codes (VNNI multiplies unsigned by signed bytes, so keys are
    shifted into uint8 and one query row sum per row corrects the scores)."""

    lanes: int
    group: int
    key: str
    query: str
    value: str
    prob: str
    key_shift: int = 0


VNNI_LAYOUT = DotLayout(16, 4, key="uint8", query="int8", value="int8", prob="uint8", key_shift=128)
I16_LAYOUT = DotLayout(8, 2, key="int16", query="int16", value="int16", prob="int16")


def _logit(score, qmax, kscale, scale: float, kbias):
    """Scaled logit of an integer score (with the key shift already taken off:
    ``sum_c q*(k + shift) - shift * sum_c q``), plus the padding-key mask."""
    return T.Cast("float32", score) * (_scale(qmax) * kscale) * T.float32(scale) + kbias


def _int8_attention_tiled(n: int, h: int, hd: int, scale: float, lay: DotLayout,
                          key_block: int) -> tirx.PrimFunc:
    """The integer attention kernel in the tile layout ``lay`` (see module docstring): keys
    ``kt[h, nk/lanes, hd/group, lanes, group]``, values ``vt[h, hd/lanes, nv/group, lanes, group]``,
    keys padded to whole ``key_block`` score chunks, P.V keys to whole groups."""
    if hd % lay.lanes:
        raise ValueError(f"int8 attention with {lay.lanes}-lane tiles needs hd % {lay.lanes} == 0, "
                         f"got hd={hd}")
    d = h * hd
    ln, gr, shift = lay.lanes, lay.group, lay.key_shift
    shifted = shift != 0           # (TVMScript takes Python bools as parse-time conditions)
    nk = -(-n // key_block) * key_block   # keys in whole score chunks (key_block % LANES == 0)
    nv = -(-n // max(gr, 8)) * max(gr, 8)  # P.V keys in whole groups (and whole prob vectors)
    nq = n + ROW_PAD - 1
    _key_scales, _value_scales, _query_absmax, _softmax_lanes = _shared_blocks(n, h, hd)

    def tile_at(tiles, vh, vi, vo, vr):  # output o, reduction index r of a [lanes x group] tiling
        return tiles[vh, vo // ln, vr // gr, vo % ln, vr % gr]

    scores = row_dot("qk", (h, nq, nk, hd), "int32", tile_at)
    pv = row_dot("pv", (h, nq, hd, nv), "int32", tile_at)

    @T.prim_func(s_tir=True)
    def func(qkv: T.Buffer((n, 3 * d), "float32"), o: T.Buffer((n, d), "float32")):
        kmax_l, kmax, kscale, kbias, vmax, vscale, vinv = _scales_scratch(n, h, hd, nk)
        kt = T.sblock_alloc_buffer((h, nk // ln, hd // gr, ln, gr), lay.key)
        vt = T.sblock_alloc_buffer((h, hd // ln, nv // gr, ln, gr), lay.value)
        qmax_l = T.sblock_alloc_buffer((h, nq, LANES), "float32")
        qmax = T.sblock_alloc_buffer((h, nq), "float32")
        qi = T.sblock_alloc_buffer((h, nq, hd), lay.query)
        if shifted:
            qsum = T.sblock_alloc_buffer((h, nq), "int32")
        sacc = T.sblock_alloc_buffer((h, nq, nk), "int32")
        logit, lmax_l, lmax, e, lsum_l, lsum, pscale = _softmax_scratch(h, nq, nk)
        p = T.sblock_alloc_buffer((h, nq, nv), lay.prob)
        pacc = T.sblock_alloc_buffer((h, nq, hd), "int32")
        # ---- keys and values of each head (once per head) ----
        _key_scales(nk, qkv, kmax_l, kmax, kbias, kscale)
        for hh, jt, cg, jl, cl in T.grid(h, nk // ln, hd // gr, ln, gr):
            with T.sblock("kquant"):
                vh, vjt, vcg, vjl, vcl = T.axis.remap("SSSSS", [hh, jt, cg, jl, cl])
                kt[vh, vjt, vcg, vjl, vcl] = quant_int8(
                    qkv[T.min(vjt * ln + vjl, n - 1), d + vh * hd + vcg * gr + vcl]
                    * (T.float32(1) / kscale[vh, vjt * ln + vjl]), lay.key, shift)
        _value_scales(qkv, vmax, vscale, vinv)
        for hh, ct, jg, cl, jl in T.grid(h, hd // ln, nv // gr, ln, gr):
            with T.sblock("vquant"):
                vh, vct, vjg, vcl, vjl = T.axis.remap("SSSSS", [hh, ct, jg, cl, jl])
                vt[vh, vct, vjg, vcl, vjl] = quant_int8(
                    qkv[T.min(vjg * gr + vjl, n - 1), 2 * d + vh * hd + vct * ln + vcl]
                    * vinv[vh, vct * ln + vcl], lay.value)
        # ---- one query row at a time ----
        _query_absmax(nq, qkv, qmax_l, qmax)
        for hh, i, c in T.grid(h, nq, hd):
            with T.sblock("qquant"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                qi[vh, vi, vc] = quant_int8(qkv[T.min(vi, n - 1), vh * hd + vc]
                                       * (T.float32(1) / _scale(qmax[vh, vi])), lay.query)
        if shifted:             # row sums of the queries: the shifted keys' correction
            for hh, i, c in T.grid(h, nq, hd):
                with T.sblock("qsum"):
                    vh, vi, vc = T.axis.remap("SSR", [hh, i, c])
                    with T.init():
                        qsum[vh, vi] = 0
                    qsum[vh, vi] = qsum[vh, vi] + T.Cast("int32", qi[vh, vi, vc])
        scores(qi, kt, sacc)
        for hh, i, j in T.grid(h, nq, nk):
            with T.sblock("logit"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                if shifted:
                    logit[vh, vi, vj] = _logit(sacc[vh, vi, vj] - qsum[vh, vi] * shift,
                                               qmax[vh, vi], kscale[vh, vj], scale, kbias[vj])
                else:
                    logit[vh, vi, vj] = _logit(sacc[vh, vi, vj], qmax[vh, vi], kscale[vh, vj],
                                               scale, kbias[vj])
        _softmax_lanes(nq, nk, logit, lmax_l, lmax, e, lsum_l, lsum, pscale)
        for hh, i, j in T.grid(h, nq, nv):
            with T.sblock("prob"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                p[vh, vi, vj] = T.Cast(lay.prob, T.Cast("int32", clamp_round(
                    e[vh, vi, vj] * pscale[vh, vi], 0, 255)))
        pv(p, vt, pacc)
        for hh, i, c in T.grid(h, n, hd):
            with T.sblock("out"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                o[vi, vh * hd + vc] = T.Cast("float32", pacc[vh, vi, vc]) * (
                    vscale[vh, vc] / T.float32(255))

    return _tag(func, "int8_attention_qkv", n=n, h=h, hd=hd, scale=repr(float(scale)))


def int8_attention_qkv_vnni(n: int, h: int, hd: int, scale: float) -> tirx.PrimFunc:
    """``qkv[n, 3*h*hd] f32 -> o[n, h*hd] f32`` like ``compute.int8_attention_qkv`` (see module);
    keys in whole pairs of 16-key tiles (two accumulator chains)."""
    if not supported(n, h, hd):
        raise ValueError(f"int8_attention_qkv_vnni needs hd % 16 == 0, got hd={hd}")
    return _int8_attention_tiled(n, h, hd, scale, VNNI_LAYOUT, 32)


def supported_i16(n: int, h: int, hd: int) -> bool:
    """Sizes of ``int8_attention_qkv_i16``: channels in whole 8-lane tiles."""
    return hd % 8 == 0


def int8_attention_qkv_i16(n: int, h: int, hd: int, scale: float,
                           key_block: int = 16) -> tirx.PrimFunc:
    """``compute.int8_attention_qkv`` in the layouts of AVX2's ``vpmaddwd`` (int16 x int16 pairs
    summed into 8 int32 lanes; exact): the int8 codes of Q, K, V and the uint8 probabilities are
    stored as int16, keys as ``kt[h, nk/8, hd/2, 8, 2]``, values as ``vt[h, hd/8, nv/2, 8, 2]``,
    so one broadcast pair of a query (or of probabilities) against one tile is 16 MACs. Both
    operands are signed: no key shift, no query row sums."""
    if not supported_i16(n, h, hd):
        raise ValueError(f"int8_attention_qkv_i16 needs hd % 8 == 0, got hd={hd}")
    return _int8_attention_tiled(n, h, hd, scale, I16_LAYOUT, key_block)


def int8_attention_qkv_f32(n: int, h: int, hd: int, scale: float,
                           key_block: int = 16) -> tirx.PrimFunc:
    """``compute.int8_attention_qkv`` for targets without an exact u8 x s8 dot instruction (AVX2:
    ``vpmaddubsw`` saturates): the quantized codes are kept as float32 integers and both integer
    matmuls run as float FMAs, exact while the sums stay below 2^24 (:func:`supported_f32`).

    Layouts: keys transposed, ``kf[h, hd, nk]`` (a query row's scores over 8 keys are one FMA per
    channel), values ``vf[h, nv, hd]`` (padding keys repeat the last, their probability is 0); the softmax, the key masking and the reciprocal scales are
    the VNNI variant's (module docstring), so both variants compute the same codes.
    """
    if not supported_f32(n, h, hd):
        raise ValueError(f"int8_attention_qkv_f32 needs hd % 8 == 0, hd <= 1024 and n <= 514 "
                         f"(exact float32 sums), got n={n}, hd={hd}")
    d = h * hd
    nk = -(-n // key_block) * key_block   # keys in whole score tiles (key_block % LANES == 0)
    nv = -(-n // 8) * 8            # keys of P.V in whole vectors (padding: probability 0)
    nq = n + ROW_PAD - 1
    _key_scales, _value_scales, _query_absmax, _softmax_lanes = _shared_blocks(n, h, hd)

    def transposed(b, vh, vi, vo, vr):   # kf[h, channel, key], vf[h, key, channel]
        return b[vh, vr, vo]

    scores = row_dot("qk", (h, nq, nk, hd), "float32", transposed)
    pv = row_dot("pv", (h, nq, hd, nv), "float32", transposed)

    @T.prim_func(s_tir=True)
    def func(qkv: T.Buffer((n, 3 * d), "float32"), o: T.Buffer((n, d), "float32")):
        kmax_l, kmax, kscale, kbias, vmax, vscale, vinv = _scales_scratch(n, h, hd, nk)
        kf = T.sblock_alloc_buffer((h, hd, nk), "float32")
        vf = T.sblock_alloc_buffer((h, nv, hd), "float32")
        qmax_l = T.sblock_alloc_buffer((h, nq, LANES), "float32")
        qmax = T.sblock_alloc_buffer((h, nq), "float32")
        qf = T.sblock_alloc_buffer((h, nq, hd), "float32")
        sacc = T.sblock_alloc_buffer((h, nq, nk), "float32")
        logit, lmax_l, lmax, e, lsum_l, lsum, pscale = _softmax_scratch(h, nq, nk)
        pf = T.sblock_alloc_buffer((h, nq, nk), "float32")
        pacc = T.sblock_alloc_buffer((h, nq, hd), "float32")
        _key_scales(nk, qkv, kmax_l, kmax, kbias, kscale)
        for hh, c, j in T.grid(h, hd, nk):
            with T.sblock("kquant"):
                vh, vc, vj = T.axis.remap("SSS", [hh, c, j])
                kf[vh, vc, vj] = clamp_round(qkv[T.min(vj, n - 1), d + vh * hd + vc]
                                             * (T.float32(1) / kscale[vh, vj]), -128, 127)
        _value_scales(qkv, vmax, vscale, vinv)
        for hh, j, c in T.grid(h, nv, hd):
            with T.sblock("vquant"):
                vh, vj, vc = T.axis.remap("SSS", [hh, j, c])
                vf[vh, vj, vc] = clamp_round(qkv[T.min(vj, n - 1), 2 * d + vh * hd + vc]
                                             * vinv[vh, vc], -128, 127)
        _query_absmax(nq, qkv, qmax_l, qmax)
        for hh, i, c in T.grid(h, nq, hd):
            with T.sblock("qquant"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                qf[vh, vi, vc] = clamp_round(qkv[T.min(vi, n - 1), vh * hd + vc]
                                             * (T.float32(1) / _scale(qmax[vh, vi])), -128, 127)
        scores(qf, kf, sacc)
        for hh, i, j in T.grid(h, nq, nk):
            with T.sblock("logit"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                logit[vh, vi, vj] = sacc[vh, vi, vj] * (
                    _scale(qmax[vh, vi]) * kscale[vh, vj]) * T.float32(scale) + kbias[vj]
        _softmax_lanes(nq, nk, logit, lmax_l, lmax, e, lsum_l, lsum, pscale)
        for hh, i, j in T.grid(h, nq, nk):
            with T.sblock("prob"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                pf[vh, vi, vj] = clamp_round(e[vh, vi, vj] * pscale[vh, vi], 0, 255)
        pv(pf, vf, pacc)
        for hh, i, c in T.grid(h, n, hd):
            with T.sblock("out"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                o[vi, vh * hd + vc] = pacc[vh, vi, vc] * (vscale[vh, vc] / T.float32(255))

    return _tag(func, "int8_attention_qkv", n=n, h=h, hd=hd, scale=repr(float(scale)))
