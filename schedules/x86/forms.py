"""TensorIR compute of the ternary matmul on the VNNI tile layout ``v16x4`` (see ``formats``).

``compute.ternary_matmul`` dispatches here when ``fmt`` is a tiled format. The meaning is the same
as the packed kernels -- ``y = epi(f32(sum_k q*W) * (alpha*s) + bias)`` exact in int32 -- but the
weights are stored as one byte per weight, ``code = W + 1`` in {0, 1, 2}, in [16 x 4] tiles: the
shape of one ``vpdpbusd`` (16 int32 lanes, each the dot product of 4 u8 x 4 s8). The unsigned
operand of VNNI is the weight code, the signed one the int8 activation, so

    sum_k q[k] * W[k] = sum_k q[k] * code[k] - sum_k q[k]

and the correction is one row sum of the activations per token (no shifted copy of q, no
per-channel table). Output channels are padded to whole tiles (padding codes are 1, i.e. weight
0); the accumulator covers the padded channels, the epilogue only the real ones.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from ..compute.kernel_base import _absf, _tag, without_params
from ..compute.kernel_base import _epilogue as kernels_epilogue
from ..compute.quantize import _patch_scales, _row_scales
from ..formats import get_format
from .fast_math import fast_erf

# qsum/acc have ROW_PAD - 1 rows more than q, each repeating q's last row, so a schedule can tile
# rows by any factor up to ROW_PAD without a predicated tail (untensorizable, and unvectorized)
ROW_PAD = 16


def ternary_matmul_tiled(t: int, k: int, n: int, fmt: str, epilogue: str = "none") -> tirx.PrimFunc:
    """Compute of ``ternary_matmul`` for a tiled format such as ``v16x4``.

    Buffers: ``q[t,k]`` int8, ``s[t]`` f32, ``w[ceil(n/16), ceil(k/4), 16, 4]`` uint8 codes,
    ``alpha[n]``, ``bias[n]`` f32, optional ``res[t,n]`` f32 -> ``y[t,n]`` f32.
    Blocks: ``qsum`` (row sums of q), ``acc`` (int32 dot products over padded channels),
    ``epilogue`` (subtracts ``qsum``).
    """
    f = get_format(fmt)
    tn, tk = f.tile
    nt = -(-n // tn)
    npad = nt * tn
    tpad = t + ROW_PAD - 1
    qsum_block, finish = _tile_blocks(t, tpad, k, n, epilogue)

    @T.macro
    def body(q, s, w, alpha, bias, res, y):
        qsum = T.sblock_alloc_buffer((tpad,), "int32")
        acc = T.sblock_alloc_buffer((tpad, npad), "int32")
        qsum_block(q, qsum)
        for i, j, r in T.grid(tpad, npad, k):
            with T.sblock("acc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = 0
                acc[vi, vj] = acc[vi, vj] + T.Cast("int32", q[T.min(vi, t - 1), vr]) * T.Cast(
                    "int32", w[vj // tn, vr // tk, vj % tn, vr % tk])
        finish(acc, qsum, s, alpha, bias, res, y)

    return _tiled_func(t, k, n, fmt, epilogue, body)


# int16 pair sums of a weight code (0..2) and an int8 activation are at most 2 * 2 * 128 = 512 in
# magnitude, so a k-block of up to I16_MAX_STEPS 4-groups sums in int16 without overflow
I16_MAX_STEPS = 32767 // 512


def i16_k_block(k: int) -> int | None:
    """Largest k-block (a multiple of 4 dividing ``k``, at most I16_MAX_STEPS groups of 4) of
    :func:`ternary_matmul_i16`, or None if ``k`` has none."""
    return next((kb for kb in range(4 * min(I16_MAX_STEPS, k // 4), 0, -4) if k % kb == 0), None)


def ternary_matmul_i16(t: int, k: int, n: int, fmt: str, epilogue: str = "none") -> tirx.PrimFunc:
    """``ternary_matmul_tiled`` with the dot products summed in int16 within k-blocks (AVX2:
    ``vpmaddubsw`` + ``vpaddw`` per step, see ``intrin``): ``acc16[i, kblock, j, half]``
    holds the pair sums of one k-block (the two halves of each 4-group, as ``vpmaddubsw`` lays
    them out), ``acc`` adds them up in int32. Exact: no int16 sum can overflow
    (:func:`i16_k_block`). Same buffers and meaning as :func:`ternary_matmul_tiled`."""
    f = get_format(fmt)
    tn, tk = f.tile
    kb = i16_k_block(k)
    if tk != 4 or kb is None:
        raise ValueError(f"ternary_matmul_i16 needs 4-deep tiles and k % 4 == 0, got {fmt}, k={k}")
    nt = -(-n // tn)
    npad = nt * tn
    tpad = t + ROW_PAD - 1
    nb, steps = k // kb, kb // 4
    qsum_block, finish = _tile_blocks(t, tpad, k, n, epilogue)

    @T.macro
    def body(q, s, w, alpha, bias, res, y):
        qsum = T.sblock_alloc_buffer((tpad,), "int32")
        acc16 = T.sblock_alloc_buffer((tpad, nb, npad, 2), "int16")
        acc = T.sblock_alloc_buffer((tpad, npad), "int32")
        qsum_block(q, qsum)
        for i, j, b, h, st, r in T.grid(tpad, npad, nb, 2, steps, 2):
            with T.sblock("acc16"):
                vi, vj, vb, vh, vs, vr = T.axis.remap("SSSSRR", [i, j, b, h, st, r])
                with T.init():
                    acc16[vi, vb, vj, vh] = T.int16(0)
                acc16[vi, vb, vj, vh] = acc16[vi, vb, vj, vh] + T.Cast(
                    "int16", q[T.min(vi, t - 1), vb * kb + vs * 4 + vh * 2 + vr]) * T.Cast(
                    "int16", w[vj // tn, vb * steps + vs, vj % tn, vh * 2 + vr])
        for i, j, b, h in T.grid(tpad, npad, nb, 2):
            with T.sblock("acc"):
                vi, vj, vb, vh = T.axis.remap("SSRR", [i, j, b, h])
                with T.init():
                    acc[vi, vj] = 0
                acc[vi, vj] = acc[vi, vj] + T.Cast("int32", acc16[vi, vb, vj, vh])
        finish(acc, qsum, s, alpha, bias, res, y)

    return _tiled_func(t, k, n, fmt, epilogue, body)


# ---- per-token kernels with explicit vector lanes -------------------------------------------------
# TensorIR can only vectorize spatial loops, and rfactor rejects the absmax reducer (its init is 0,
# not -inf). These variants keep the signature and numerics of compute.quantize_act /
# ternary_layernorm_quant but reduce each row in LANES independent partial results (a spatial
# axis), then fold the lanes (max is order-independent; LN sums round in another order).
# Quantizers multiply by 1/s (one division per row, hoisted by LLVM) instead of dividing every
# element: divisions were 40 % of these kernels. A code differs from round(x / s) only when x / s
# lies within an ulp of a rounding boundary (one step, rarely).

LANES = 16


# TVM's vectorizer serializes any loop calling an op not marked TVectorizable -- nearbyint and erf
# are not -- so the x86 kernels call LLVM's roundeven directly (call_llvm_pure_intrin is) and
# spell erf as arithmetic.

def round_even(v):
    """``nearbyint`` in the default rounding mode: round half to even (``llvm.roundeven``)."""
    return T.call_llvm_pure_intrin("float32", "llvm.roundeven", v)


def clamp_round(v, lo: float, hi: float):
    """``nearbyint(clamp(v, lo, hi))`` in float32: an integer code kept as a float (clamping first
    is the same as after for integer bounds)."""
    return round_even(T.max(T.min(v, T.float32(hi)), T.float32(lo)))


def quant_int8(v, dtype: str = "int8", shift: int = 0):
    """The int8 code ``clamp(nearbyint(v), -128, 127)`` plus ``shift``, stored as ``dtype``,
    through int32: a direct f32 -> narrow int vector conversion is scalarized by LLVM."""
    code = T.Cast("int32", clamp_round(v, -128, 127))
    return T.Cast(dtype, code + shift if shift else code)


def _gelu(v):
    return v * T.float32(0.5) * (T.float32(1.0) + fast_erf(v * T.float32(0.7071067811865476)))


def _epilogue(v, res, i, j, epilogue):
    """``compute.kernel_base._epilogue`` with erf as arithmetic."""
    if epilogue == "gelu":
        return _gelu(v)
    return kernels_epilogue(v, res, i, j, epilogue)


def _tiled_func(t: int, k: int, n: int, fmt: str, epilogue: str, body) -> tirx.PrimFunc:
    """The ``ternary_matmul`` PrimFunc of a tiled format around ``body(q, s, w, alpha, bias, res,
    y)`` (a ``T.macro`` allocating its own scratch); ``res`` only with the residual epilogue."""
    tn, tk = get_format(fmt).tile
    nt, kt = -(-n // tn), -(-k // tk)

    @T.prim_func(s_tir=True)
    def func(q: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
             w: T.Buffer((nt, kt, tn, tk), "uint8"), alpha: T.Buffer((n,), "float32"),
             bias: T.Buffer((n,), "float32"), res: T.Buffer((t, n), "float32"),
             y: T.Buffer((t, n), "float32")):
        body(q, s, w, alpha, bias, res, y)

    if epilogue != "residual":
        func = without_params(func, "res")
    return _tag(func, "ternary_matmul", t=t, k=k, n=n, fmt=fmt, epilogue=epilogue)


def _tile_blocks(t: int, tpad: int, k: int, n: int, epilogue: str):
    """Fresh macros for the blocks both tiled matmuls share: ``qsum(q, qsum)``, the sum of each
    row of ``q`` (rows past ``t`` repeat the last one), and ``finish(acc, qsum, s, alpha, bias,
    res, y)``, the real rows and channels of the padded accumulator corrected by the row sums
    (``code = W + 1``), scaled, biased, through the epilogue. Fresh per call: TVMScript numbers
    the blocks of every later expansion of one macro object."""

    @T.macro
    def qsum_block(q, qsum):
        for i, r in T.grid(tpad, k):
            with T.sblock("qsum"):
                vi, vr = T.axis.remap("SR", [i, r])
                with T.init():
                    qsum[vi] = 0
                qsum[vi] = qsum[vi] + T.Cast("int32", q[T.min(vi, t - 1), vr])

    @T.macro
    def finish(acc, qsum, s, alpha, bias, res, y):
        for i, j in T.grid(t, n):
            with T.sblock("epilogue"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = _epilogue(
                    T.Cast("float32", acc[vi, vj] - qsum[vi]) * (alpha[vj] * s[vi]) + bias[vj],
                    res, vi, vj, epilogue)

    return qsum_block, finish


def _fold_lanes(name: str, combine):
    """A fresh ``T.macro`` ``(t, part, out)``, the block ``name``: ``out[i]`` is ``combine``
    folded over row ``i``'s LANES partial results ``part[i, :]``, from 0 (a max of absolute
    values or a sum). Fresh per kernel, so the block keeps its name."""

    @T.macro
    def fold(t, part, out):
        for i, l in T.grid(t, LANES):
            with T.sblock(name):
                vi, vl = T.axis.remap("SR", [i, l])
                with T.init():
                    out[vi] = T.float32(0)
                out[vi] = combine(out[vi], part[vi, vl])

    return fold


def _add(a, b):
    return a + b


_fold_absmax = _fold_lanes("absmax", T.max)


@T.macro
def _lane_absmax(t, k, y, q, s, amax_l, amax):
    for i, ro, l in T.grid(t, k // LANES, LANES):
        with T.sblock("absmax_lanes"):
            vi, vro, vl = T.axis.remap("SRS", [i, ro, l])
            with T.init():
                amax_l[vi, vl] = T.float32(0)
            amax_l[vi, vl] = T.max(amax_l[vi, vl], _absf(y[vi, vro * LANES + vl]))
    _fold_absmax(t, amax_l, amax)
    _row_scales(t, amax, s)
    for i, j in T.grid(t, k):
        with T.sblock("quant"):
            vi, vj = T.axis.remap("SS", [i, j])
            q[vi, vj] = quant_int8(y[vi, vj] * (T.float32(1) / s[vi]))


def quantize_act_lanes(t: int, k: int) -> tirx.PrimFunc:
    """``compute.quantize_act`` with the row absmax split over LANES (``k % LANES == 0``)."""

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "float32"), q: T.Buffer((t, k), "int8"),
             s: T.Buffer((t,), "float32")):
        amax_l = T.sblock_alloc_buffer((t, LANES), "float32")
        amax = T.sblock_alloc_buffer((t,), "float32")
        _lane_absmax(t, k, x, q, s, amax_l, amax)

    return _tag(func, "quantize_act", t=t, k=k)


def ternary_layernorm_lanes(t: int, d: int, eps: float) -> tirx.PrimFunc:
    """``compute.ternary_layernorm_quant`` with every row reduction split over LANES, and one
    reciprocal square root per row multiplied in (as torch's layer_norm does) instead of a
    division per element."""
    fold_sum, fold_sqsum = _fold_lanes("sum", _add), _fold_lanes("sqsum", _add)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, d), "float32"), g: T.Buffer((d,), "int8"), b: T.Buffer((d,), "int8"),
             ab: T.Buffer((2,), "float32"), q: T.Buffer((t, d), "int8"),
             s: T.Buffer((t,), "float32")):
        sum_l = T.sblock_alloc_buffer((t, LANES), "float32")
        total = T.sblock_alloc_buffer((t,), "float32")
        sq_l = T.sblock_alloc_buffer((t, LANES), "float32")
        sq = T.sblock_alloc_buffer((t,), "float32")
        rstd = T.sblock_alloc_buffer((t,), "float32")
        y = T.sblock_alloc_buffer((t, d), "float32")
        amax_l = T.sblock_alloc_buffer((t, LANES), "float32")
        amax = T.sblock_alloc_buffer((t,), "float32")
        for i, ro, l in T.grid(t, d // LANES, LANES):
            with T.sblock("sum_lanes"):
                vi, vro, vl = T.axis.remap("SRS", [i, ro, l])
                with T.init():
                    sum_l[vi, vl] = T.float32(0)
                sum_l[vi, vl] = sum_l[vi, vl] + x[vi, vro * LANES + vl]
        fold_sum(t, sum_l, total)
        for i, ro, l in T.grid(t, d // LANES, LANES):
            with T.sblock("sqsum_lanes"):
                vi, vro, vl = T.axis.remap("SRS", [i, ro, l])
                with T.init():
                    sq_l[vi, vl] = T.float32(0)
                sq_l[vi, vl] = sq_l[vi, vl] + (x[vi, vro * LANES + vl] - total[vi] / T.float32(d)) * (
                    x[vi, vro * LANES + vl] - total[vi] / T.float32(d))
        fold_sqsum(t, sq_l, sq)
        for i in range(t):
            with T.sblock("rstd"):
                vi = T.axis.remap("S", [i])
                rstd[vi] = T.float32(1) / T.sqrt(sq[vi] / T.float32(d) + T.float32(eps))
        for i, j in T.grid(t, d):
            with T.sblock("norm"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = (x[vi, vj] - total[vi] / T.float32(d)) * rstd[vi] * (
                    ab[0] * T.Cast("float32", g[vj])) + ab[1] * T.Cast("float32", b[vj])
        _lane_absmax(t, d, y, q, s, amax_l, amax)

    return _tag(func, "ternary_layernorm", t=t, d=d, eps=repr(float(eps)))


def quantize_patches_lanes(b: int, c: int, gh: int, gw: int, p: int) -> tirx.PrimFunc:
    """``compute.quantize_patches`` with each patch's absmax split over its ``p`` columns (the
    lanes: contiguous pixels); bit-identical (max)."""
    t, f = b * gh * gw, c * p * p

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((b, c, gh * p, gw * p), "float32"), q: T.Buffer((t, f), "int8"),
             s: T.Buffer((t,), "float32")):
        amax_l = T.sblock_alloc_buffer((b, gh, gw, p), "float32")
        amax = T.sblock_alloc_buffer((b, gh, gw), "float32")
        for bi, gy, gx, ci, ky, kx in T.grid(b, gh, gw, c, p, p):
            with T.sblock("absmax_lanes"):
                vb, vy, vx, vc, vky, vkx = T.axis.remap("SSSRRS", [bi, gy, gx, ci, ky, kx])
                with T.init():
                    amax_l[vb, vy, vx, vkx] = T.float32(0)
                amax_l[vb, vy, vx, vkx] = T.max(amax_l[vb, vy, vx, vkx],
                                                _absf(x[vb, vc, vy * p + vky, vx * p + vkx]))
        for bi, gy, gx, kx in T.grid(b, gh, gw, p):
            with T.sblock("absmax"):
                vb, vy, vx, vkx = T.axis.remap("SSSR", [bi, gy, gx, kx])
                with T.init():
                    amax[vb, vy, vx] = T.float32(0)
                amax[vb, vy, vx] = T.max(amax[vb, vy, vx], amax_l[vb, vy, vx, vkx])
        _patch_scales(b, gh, gw, amax, s)
        for bi, gy, gx, ci, ky, kx in T.grid(b, gh, gw, c, p, p):
            with T.sblock("quant"):
                vb, vy, vx, vc, vky, vkx = T.axis.remap("SSSSSS", [bi, gy, gx, ci, ky, kx])
                q[(vb * gh + vy) * gw + vx, (vc * p + vky) * p + vkx] = quant_int8(
                    x[vb, vc, vy * p + vky, vx * p + vkx] * (T.float32(1) / s[(vb * gh + vy) * gw + vx]))

    return _tag(func, "quantize_patches", b=b, c=c, gh=gh, gw=gw, p=p)
