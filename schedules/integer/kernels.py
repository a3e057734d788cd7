"""Integer forms of the MCU kernels (``numerics="integer"``): same signatures, fixed-point insides.

Each builder states one kernel of ``schedules.compute`` / ``schedules.esp32s3.stationary`` with
the per-element float work (LayerNorm, the projections' scale-and-bias, GELU, softmax, every
int8 quantizer) replaced by the integer ops of ``schedules.integer.intmath`` -- the contract, which also
gives the NumPy reference the tests compare these kernels against. Inputs and outputs keep their
types (float32 residual stream and per-token scales), so the graph, the arena plan and the
executor do not change with the mode; only the elementwise residual updates stay float.

A target swaps a kernel for its integer form with ``integer_forms.integer_form`` before scheduling (the
esp32s3 schedules for these forms are in ``schedules.esp32s3.integer``).
"""

from __future__ import annotations


from tvm import tirx
from tvm.script import tirx as T

from . import intmath as im
from ..compute.embedding import _patch_pixel, patch_embed_form
from ..compute.kernel_base import _tag, cached_builder, max_block, ternary_acc
from ..compute.matmul import channels_func, head_scratch, heads_func
from ..compute.mlp import fc2_blocks, mlp_func

B = im.TIR
G = im.VALUE_FRAC


def _split(f):
    return im.split_f32(B, f)


def _scale_tables(n: int, t: int):
    """The scale tables every integer projection reads, allocated in the kernel being parsed
    (call it in the body: ``cm, ce, cb, rm, re = _scale_tables(n, t)`` names them): per output
    channel the scale's mantissa and exponent and the bias in Q(G), per token the scale's mantissa
    and exponent. ``_scale_params`` fills them."""
    return tuple(T.sblock_alloc_buffer((size,), "int32") for size in (n, n, n, t, t))


@T.macro
def _scale_params(n, t, alpha, bias, s, cm, ce, cb, rm, re):
    """Fill the ``_scale_tables`` once per call: per output channel (``alpha[n], bias[n]``) the
    scale's mantissa/exponent and the bias in Q(G), per token (``s[t]``) the scale's
    mantissa/exponent."""
    for j in range(n):
        with T.sblock("chan"):
            vj = T.axis.remap("S", [j])
            cm[vj] = im.split_f32(B, alpha[vj])[0]
            ce[vj] = im.split_f32(B, alpha[vj])[1]
            cb[vj] = im.fixed_frac(B, bias[vj])
    for i in range(t):
        with T.sblock("rowp"):
            vi = T.axis.remap("S", [i])
            rm[vi] = im.split_f32(B, s[vi])[0]
            re[vi] = im.split_f32(B, s[vi])[1]


@T.macro
def _gelu_table(tab):
    """The Phi table of ``intmath.gelu``, filled once per call."""
    for k in range(im.GELU_TABLE_SIZE):
        with T.sblock("gelu_table"):
            vk = T.axis.remap("S", [k])
            tab[vk] = im.gelu_table_entry(B, vk)


def _value(acc, abits, cm, ce, cb, rm, re, i, j):
    """``round((acc * alpha[j] * s[i] + bias[j]) * 2^G)`` from the channel and row tables."""
    return im.dequant(B, acc, abits, cm[j], ce[j], rm[i], re[i], cb[j])


def _abs(v):
    return T.max(v, -v)


def row_codes(t: int, d: int, names=("ln_absmax", "ln_quant")):
    """Fresh ``T.macro`` s of the per-row int8 quantizer of values in Q(G) ``y[t, d]``:
    ``absmax(y, amax)`` (integer absmax per row) and ``codes(y, mult, q)`` (``quant8`` with the
    row's multiplier); what lies between (the multiplier, the row's scale) differs by caller.
    ``names``: the two blocks' names."""

    absmax = max_block(names[0], t, d, "SR", 0, lambda y, i, r: _abs(y[i, r]))

    @T.macro
    def codes(y, mult, q):
        for i, j in T.grid(t, d):
            with T.sblock(names[1]):
                vi, vj = T.axis.remap("SS", [i, j])
                q[vi, vj] = T.Cast("int8", im.quant8(B, y[vi, vj], mult[vi]))

    return absmax, codes


def row_code_scratch(t: int, d: int):
    """The scratch of a per-row int8 quantizer of values in Q(G), allocated in the kernel being
    parsed (call it in the body: ``v, amax, mult, s = row_code_scratch(t, d)`` names them): the
    values ``[t, d]``, each row's bound (its integer absmax), the codes' multiplier (int32
    ``[t]``) and the row's float scale ``[t]`` -- the MLP's hidden layer and the attention
    block's output are coded alike."""
    return (T.sblock_alloc_buffer((t, d), "int32"), T.sblock_alloc_buffer((t,), "int32"),
            T.sblock_alloc_buffer((t,), "int32"), T.sblock_alloc_buffer((t,), "float32"))


def projection_values(t: int, k: int, n: int, fmt: str, names=("acc", "value")):
    """A fresh ``T.macro`` ``(x, w, cm, ce, cb, rm, re, acc, f)``: a ternary projection's int32
    accumulators ``acc[t, n]`` and their values in Q(G) ``f`` (``_value``), in their own block
    (what follows reads each value several times; a re-emitted expression would be copied into
    every use). ``names``: the two blocks' names."""
    abits = im.acc_bits(k)
    acc_block = ternary_acc(names[0], t, n, k, fmt)

    @T.macro
    def blocks(x, w, cm, ce, cb, rm, re, acc, f):
        acc_block(x, w, acc)
        for i, j in T.grid(t, n):
            with T.sblock(names[1]):
                vi, vj = T.axis.remap("SS", [i, j])
                f[vi, vj] = _value(acc[vi, vj], abits, cm, ce, cb, rm, re, vi, vj)

    return blocks


def head_values(t: int, k: int, h: int, hd: int, fmt: str, names=("acc", "value", "head_absmax")):
    """A fresh ``T.macro`` ``(x, w, cm, ce, cb, rm, re, acc, f, amax)``: ``projection_values``
    over ``h*hd`` channels, then the integer absmax ``amax[t, h]`` of each (token, head) -- the
    head-quantized projections (K here, Q in the attention block) start alike."""
    values = projection_values(t, k, h * hd, fmt, names[:2])

    @T.macro
    def blocks(x, w, cm, ce, cb, rm, re, acc, f, amax):
        values(x, w, cm, ce, cb, rm, re, acc, f)
        for i, hh, c in T.grid(t, h, hd):
            with T.sblock(names[2]):
                vi, vh, vc = T.axis.remap("SSR", [i, hh, c])
                with T.init():
                    amax[vi, vh] = 0
                amax[vi, vh] = T.max(amax[vi, vh], _abs(f[vi, vh * hd + vc]))

    return blocks


# ---- LayerNorm ------------------------------------------------------------------------------------
@cached_builder
def ternary_layernorm_quant(t: int, d: int, eps: float) -> tirx.PrimFunc:
    """Integer ``kernels.ternary_layernorm_quant``: the row read as integers relative to its largest
    exponent (``LN_BITS``), integer mean and sum of squares, one float ``1/sqrt`` per row turned
    into a multiplier, ternary gamma/beta as a Q15 pair, integer absmax and int8 codes."""
    sq_shift = im.ln_sq_shift(d)
    nf = im.LN_NORM_FRAC
    absmax, codes = row_codes(t, d)
    # each row's largest magnitude, as float32 bits (the exponent of its largest element)
    row_top = max_block("ln_top", t, d, "SR", 0, lambda x, i, r: im.abs_bits(B, x[i, r]))

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, d), "float32"), g: T.Buffer((d,), "int8"), b: T.Buffer((d,), "int8"),
             ab: T.Buffer((2,), "float32"), q: T.Buffer((t, d), "int8"),
             s: T.Buffer((t,), "float32")):
        top = T.sblock_alloc_buffer((t,), "int32")
        xi = T.sblock_alloc_buffer((t, d), "int32")
        total = T.sblock_alloc_buffer((t,), "int32")
        mean = T.sblock_alloc_buffer((t,), "int32")
        sq = T.sblock_alloc_buffer((t,), "int32")
        pw = T.sblock_alloc_buffer((t,), "int32")
        inv = T.sblock_alloc_buffer((t,), "float32")
        rm = T.sblock_alloc_buffer((t,), "int32")
        re = T.sblock_alloc_buffer((t,), "int32")
        g0 = T.sblock_alloc_buffer((t,), "int32")
        g1 = T.sblock_alloc_buffer((t,), "int32")
        y = T.sblock_alloc_buffer((t, d), "int32")
        amax = T.sblock_alloc_buffer((t,), "int32")
        mult = T.sblock_alloc_buffer((t,), "int32")
        row_top(x, top)
        for i, r in T.grid(t, d):
            with T.sblock("ln_fixed"):
                vi, vr = T.axis.remap("SS", [i, r])
                xi[vi, vr] = im.fixed_from_f32(B, x[vi, vr], T.max(top[vi] >> 23, 1))
        for i, r in T.grid(t, d):
            with T.sblock("ln_sum"):
                vi, vr = T.axis.remap("SR", [i, r])
                with T.init():
                    total[vi] = 0
                total[vi] = total[vi] + xi[vi, vr]
        for i in range(t):
            with T.sblock("ln_mean"):
                vi = T.axis.remap("S", [i])
                mean[vi] = T.floordiv(total[vi] + d // 2, d)
        for i, r in T.grid(t, d):
            with T.sblock("ln_sq"):
                vi, vr = T.axis.remap("SR", [i, r])
                with T.init():
                    sq[vi] = 0
                sq[vi] = sq[vi] + (((xi[vi, vr] - mean[vi]) * (xi[vi, vr] - mean[vi])) >> sq_shift)
        for i in range(t):
            with T.sblock("ln_epsb"):
                vi = T.axis.remap("S", [i])
                pw[vi] = im.ln_eps_bits(B, top[vi])
        for i in range(t):
            with T.sblock("ln_rstd"):
                vi = T.axis.remap("S", [i])
                inv[vi] = im.ln_inv_std(B, sq[vi], T.reinterpret("float32", pw[vi]), d, sq_shift,
                                        eps)
                g0[vi] = _ln_affine(ab, 0)
                g1[vi] = _ln_affine(ab, 1)
        for i in range(t):
            with T.sblock("ln_rmant"):
                vi = T.axis.remap("S", [i])
                rm[vi] = im.ln_inv_split(B, inv[vi])[0]
                re[vi] = im.ln_inv_split(B, inv[vi])[1]
        for i, j in T.grid(t, d):
            with T.sblock("ln_norm"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = im.rshift_round(
                    B, im.shift_round(B, (xi[vi, vj] - mean[vi]) * rm[vi], -re[vi])
                    * T.Cast("int32", g[vj]) * g0[vi]
                    + T.Cast("int32", b[vj]) * g1[vi] * (1 << nf), 15)
        absmax(y, amax)
        for i in range(t):
            with T.sblock("ln_scale"):
                vi = T.axis.remap("S", [i])
                mult[vi] = im.quant_multiplier(B, amax[vi])
                s[vi] = im.ln_out_scale(B, amax[vi], ab[0], ab[1])
        codes(y, mult, q)

    return _tag(func, "ternary_layernorm", t=t, d=d, eps=repr(float(eps)))


def _ln_affine(ab, which):
    return im.ln_affine(B, ab[0], ab[1], which)


# ---- MLP (weight-stationary form) -----------------------------------------------------------------
@cached_builder
def ternary_mlp(t: int, d: int, hidden: int, fmt: str = "b3", inplace: bool = False
                ) -> tirx.PrimFunc:
    """Integer ``kernels_stationary.ternary_mlp``: fc1's accumulators dequantized to Q(G), integer
    GELU, per-token integer absmax and int8 hidden codes (fc1 still runs twice); fc2's epilogue
    and the residual stay float (the residual stream is float32)."""
    fc1_values = projection_values(t, d, hidden, fmt, ("acc1", "hidden_value"))
    # fc1 again, after the rows' GELU bound is known (two passes instead of a [t, hidden] store)
    fc1_values_b = projection_values(t, d, hidden, fmt, ("acc1b", "hidden_value_b"))
    fc2 = fc2_blocks(t, d, hidden, fmt)
    # each row's largest GELU input, from max's identity (so that a schedule may rfactor it;
    # the values are > -2^30, so the maximum is the same as from the first value)
    hidden_max = max_block("hidden_absmax", t, hidden, "SR", T.min_value("int32"),
                           lambda v, i, j: v[i, j])

    @T.macro
    def body(q, s, w1, a1, b1, w2, a2, b2, res, y):
        cm, ce, cb, rm, re = _scale_tables(hidden, t)
        tab = T.sblock_alloc_buffer((im.GELU_TABLE_SIZE,), "int32")
        acc1 = T.sblock_alloc_buffer((t, hidden), "int32")
        v1, amax, mult, s2 = row_code_scratch(t, hidden)
        acc1b = T.sblock_alloc_buffer((t, hidden), "int32")
        v1b = T.sblock_alloc_buffer((t, hidden), "int32")
        q2 = T.sblock_alloc_buffer((t, hidden), "int8")
        acc2 = T.sblock_alloc_buffer((t, d), "int32")
        _scale_params(hidden, t, a1, b1, s, cm, ce, cb, rm, re)
        _gelu_table(tab)
        fc1_values(q, w1, cm, ce, cb, rm, re, acc1, v1)
        hidden_max(v1, amax)
        for i in range(t):
            with T.sblock("hidden_scale"):
                vi = T.axis.remap("S", [i])
                mult[vi] = im.quant_multiplier(B, im.gelu_row_bound(B, amax[vi], lambda k: tab[k]))
                s2[vi] = im.row_scale(B, im.gelu_row_bound(B, amax[vi], lambda k: tab[k]), -G)
        fc1_values_b(q, w1, cm, ce, cb, rm, re, acc1b, v1b)
        for i, j in T.grid(t, hidden):
            with T.sblock("hidden_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                q2[vi, vj] = T.Cast("int8", im.quant8(B, im.gelu(B, v1b[vi, vj], lambda k: tab[k]),
                                                      mult[vi]))
        fc2(q2, s2, w2, a2, b2, res, acc2, y)

    func = mlp_func(t, d, hidden, fmt, inplace, body)
    return _tag(func, "ternary_mlp", t=t, d=d, hidden=hidden, fmt=fmt, inplace=int(inplace))


# ---- projections quantized per (token, head) and per channel ---------------------------------------
@cached_builder
def ternary_matmul_heads(t: int, k: int, h: int, hd: int, fmt: str = "b3") -> tirx.PrimFunc:
    """Integer ``kernels.ternary_matmul_heads``: values in Q(G), integer absmax per (token, head),
    ``amax_out = A * 2^-G`` (exact in float32)."""
    n = h * hd
    values = head_values(t, k, h, hd, fmt)

    @T.macro
    def body(x, s, w, alpha, bias, y, amax_out):
        cm, ce, cb, rm, re = _scale_tables(n, t)
        acc, f, amax = head_scratch(t, n, h, "int32")
        mult = T.sblock_alloc_buffer((t, h), "int32")
        _scale_params(n, t, alpha, bias, s, cm, ce, cb, rm, re)
        values(x, w, cm, ce, cb, rm, re, acc, f, amax)
        for i, g in T.grid(t, h):
            # one block per (token, head) writes both outputs (an output block cannot move under
            # the head loop by itself); the multiplier once, then the codes
            with T.sblock("head_quant"):
                vi, vg = T.axis.remap("SS", [i, g])
                mult[vi, vg] = im.quant_multiplier(B, amax[vi, vg])
                amax_out[vi, vg] = T.Cast("float32", amax[vi, vg]) * im.f32_pow2(B, -G)
                for c in range(hd):
                    y[vi, vg * hd + c] = T.Cast("int8", im.quant8(B, f[vi, vg * hd + c],
                                                                   mult[vi, vg]))

    return heads_func(t, k, h, hd, fmt, body)


@cached_builder
def ternary_matmul_channels(t: int, k: int, n: int, fmt: str = "b3") -> tirx.PrimFunc:
    """Integer ``kernels.ternary_matmul_channels``: the accumulators dequantize to Q(G), the
    channel's integer absmax over the tokens gives its multiplier and ``amax = A * 2^-G``. One
    accumulation: a channel's codes need only its own column (the float form accumulates twice),
    so a schedule that keeps a block of channels for all tokens codes it right away."""
    abits = im.acc_bits(k)
    acc1_block = ternary_acc("acc1", t, n, k, fmt)
    # src: (acc1, and the scale tables cm, ce, cb, rm, re)
    channel_absmax = max_block("channel_absmax", t, n, "RS", 0,
                               lambda v, i, j: _abs(_value(v[0][i, j], abits, *v[1:], i, j)))

    @T.macro
    def body(x, s, w, alpha, bias, y, amax):
        cm, ce, cb, rm, re = _scale_tables(n, t)
        acc1 = T.sblock_alloc_buffer((t, n), "int32")
        top = T.sblock_alloc_buffer((n,), "int32")
        mult = T.sblock_alloc_buffer((n,), "int32")
        _scale_params(n, t, alpha, bias, s, cm, ce, cb, rm, re)
        acc1_block(x, w, acc1)
        channel_absmax((acc1, cm, ce, cb, rm, re), top)
        for j in range(n):
            with T.sblock("channel_mult"):
                vj = T.axis.remap("S", [j])
                mult[vj] = im.quant_multiplier(B, top[vj])
        for i, j in T.grid(t, n):
            with T.sblock("channel_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = T.Cast("int8", im.quant8(
                    B, _value(acc1[vi, vj], abits, cm, ce, cb, rm, re, vi, vj), mult[vj]))
                if vi == 0:   # the channel's scale, beside its codes (one stage per channel)
                    amax[vj] = T.Cast("float32", top[vj]) * im.f32_pow2(B, -G)

    return channels_func(t, k, n, fmt, body)


# ---- patch embedding ------------------------------------------------------------------------------
@cached_builder
def patch_embed(c: int, gh: int, gw: int, p: int, d: int, fmt: str = "b3",
                embed_dtype: str = "float32", prefix: int = 1) -> tirx.PrimFunc:
    """Integer-quantizing ``kernels.patch_embed``: each patch's absmax from the pixels' bits, the
    pixels read relative to it (``fixed_from_f32``) and coded with one integer multiplier; the
    token epilogue (float residual stream) is unchanged."""
    return patch_embed_form(c, gh, gw, p, d, fmt, embed_dtype, prefix, _patch_quantizer)


def _patch_quantizer(n: int, f: int, gw: int, p: int):
    """The integer patch quantizer of ``compute.embedding.patch_embed_form``: each patch's
    absmax from its pixels' bits, its scale and multiplier, the pixels read relative to it and
    coded with the multiplier (scratch: ``top``, the scales ``s``, ``mult``)."""
    absmax = max_block("patch_absmax", n, f, "SR", 0,
                       lambda img, t, r: im.abs_bits(B, _patch_pixel(img, t, r, gw, p)))

    def scratch():
        top = T.sblock_alloc_buffer((n,), "int32")
        s = T.sblock_alloc_buffer((n,), "float32")
        return s, (top, T.sblock_alloc_buffer((n,), "int32"))

    @T.macro
    def quantize(img, s, rest, q):
        top, mult = rest
        absmax(img, top)
        for t in range(n):
            with T.sblock("patch_scale"):
                vt = T.axis.remap("S", [t])
                s[vt] = im.patch_scale(B, top[vt])
                mult[vt] = im.patch_multiplier(B, top[vt])
        for t, r in T.grid(n, f):
            with T.sblock("patch_quant"):
                vt, vr = T.axis.remap("SS", [t, r])
                q[vt, vr] = T.Cast("int8", im.quant8(B, im.fixed_from_f32(
                    B, _patch_pixel(img, vt, vr, gw, p), T.max(top[vt] >> 23, 1)), mult[vt]))

    return scratch, quantize
