"""Integer form of the attention block (``numerics="integer"``): ``kernels.int8_attention_block``
with Q dequantized and coded in fixed point, integer softmax and integer output codes (the
contract: ``schedules.integer.intmath``; the NumPy reference: ``intmath_ref.attention_block``)."""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from . import intmath as im
from ..formats import get_format
from ..compute.kernel_base import _tag, _trit, cached_builder
from .kernels import B, G, _abs, _channel_params, _row_params, _split, _value


@cached_builder
def int8_attention_block(n: int, h: int, hd: int, fmt: str, scale: float) -> tirx.PrimFunc:
    """Integer ``kernels.int8_attention_block``: Q dequantized to Q(G) and coded per (token, head)
    with integer absmax; logits ``L = round(z * 2^LOGIT_FRAC)`` from the int32 scores through the
    query row's and the key's scale mantissas; integer softmax (``exp_neg``, one reciprocal per
    row) to uint8; P.V outputs weighted per channel by ``round(2^14 * vamax[c] / max vamax)``,
    integer absmax and int8 codes per row; the output projection and residual stay float."""
    d = h * hd
    kb = get_format(fmt).row_bytes(d)
    qbits = im.acc_bits(d)
    sbits = (127 * 127 * hd).bit_length()
    lf = im.LOGIT_FRAC

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((n, d), "float32"), xq: T.Buffer((n, d), "int8"),
             xs: T.Buffer((n,), "float32"), wq: T.Buffer((d, kb), "uint8"),
             aq: T.Buffer((d,), "float32"), bq: T.Buffer((d,), "float32"),
             k: T.Buffer((n, d), "int8"), k_amax: T.Buffer((n, h), "float32"),
             v: T.Buffer((n, d), "int8"), v_amax: T.Buffer((d,), "float32"),
             w: T.Buffer((d, kb), "uint8"), alpha: T.Buffer((d,), "float32"),
             bias: T.Buffer((d,), "float32")):
        cm = T.sblock_alloc_buffer((d,), "int32")
        ce = T.sblock_alloc_buffer((d,), "int32")
        cb = T.sblock_alloc_buffer((d,), "int32")
        rm = T.sblock_alloc_buffer((n,), "int32")
        re = T.sblock_alloc_buffer((n,), "int32")
        ksf = T.sblock_alloc_buffer((n, h), "float32")
        km = T.sblock_alloc_buffer((n, h), "int32")
        ke = T.sblock_alloc_buffer((n, h), "int32")
        vtop = T.sblock_alloc_buffer((1,), "float32")
        vm = T.sblock_alloc_buffer((d,), "int32")
        qacc = T.sblock_alloc_buffer((n, d), "int32")
        qv = T.sblock_alloc_buffer((n, d), "int32")
        qamax = T.sblock_alloc_buffer((n, h), "int32")
        qmult = T.sblock_alloc_buffer((n, h), "int32")
        qs = T.sblock_alloc_buffer((n, h), "float32")
        qm = T.sblock_alloc_buffer((n, h), "int32")
        qe = T.sblock_alloc_buffer((n, h), "int32")
        qc = T.sblock_alloc_buffer((n, d), "int8")
        sacc = T.sblock_alloc_buffer((n, h, n), "int32")
        logit = T.sblock_alloc_buffer((n, h, n), "int32")
        lmax = T.sblock_alloc_buffer((n, h), "int32")
        e = T.sblock_alloc_buffer((n, h, n), "int32")
        lsum = T.sblock_alloc_buffer((n, h), "int32")
        recip = T.sblock_alloc_buffer((n, h), "int32")
        p = T.sblock_alloc_buffer((n, h, n), "uint8")
        pacc = T.sblock_alloc_buffer((n, h, hd), "int32")
        ov = T.sblock_alloc_buffer((n, d), "int32")
        oamax = T.sblock_alloc_buffer((n,), "int32")
        omult = T.sblock_alloc_buffer((n,), "int32")
        os = T.sblock_alloc_buffer((n,), "float32")
        oq = T.sblock_alloc_buffer((n, d), "int8")
        acc = T.sblock_alloc_buffer((n, d), "int32")
        _channel_params(d, aq, bq, cm, ce, cb)
        _row_params(n, xs, rm, re)
        for j, hh in T.grid(n, h):
            with T.sblock("k_scale"):
                vj, vh = T.axis.remap("SS", [j, hh])
                ksf[vj, vh] = im.code_scale(B, k_amax[vj, vh])
        for j, hh in T.grid(n, h):
            with T.sblock("k_mant"):
                vj, vh = T.axis.remap("SS", [j, hh])
                km[vj, vh] = _split(ksf[vj, vh])[0]
                ke[vj, vh] = _split(ksf[vj, vh])[1]
        for c in range(d):
            with T.sblock("v_top"):
                vc = T.axis.remap("R", [c])
                with T.init():
                    vtop[0] = T.float32(0)
                vtop[0] = T.max(vtop[0], v_amax[vc])
        for c in range(d):
            with T.sblock("v_mant"):
                vc = T.axis.remap("S", [c])
                vm[vc] = im.v_weight(B, v_amax[vc], vtop[0])
        for i, j, r in T.grid(n, d, d):
            with T.sblock("qacc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    qacc[vi, vj] = 0
                qacc[vi, vj] = qacc[vi, vj] + T.Cast("int32", xq[vi, vr]) * _trit(wq, vj, vr, fmt)
        for i, j in T.grid(n, d):
            with T.sblock("q_value"):
                vi, vj = T.axis.remap("SS", [i, j])
                qv[vi, vj] = _value(qacc[vi, vj], qbits, cm, ce, cb, rm, re, vi, vj)
        for i, hh, c in T.grid(n, h, hd):
            with T.sblock("q_absmax"):
                vi, vh, vc = T.axis.remap("SSR", [i, hh, c])
                with T.init():
                    qamax[vi, vh] = 0
                qamax[vi, vh] = T.max(qamax[vi, vh], _abs(qv[vi, vh * hd + vc]))
        for i, hh in T.grid(n, h):
            with T.sblock("q_scale"):
                vi, vh = T.axis.remap("SS", [i, hh])
                qmult[vi, vh] = im.quant_multiplier(B, qamax[vi, vh])
                qs[vi, vh] = im.row_scale(B, qamax[vi, vh], -G) * T.float32(scale)
        for i, j in T.grid(n, d):
            with T.sblock("q_codes"):
                vi, vj = T.axis.remap("SS", [i, j])
                qc[vi, vj] = T.Cast("int8", im.quant8(B, qv[vi, vj], qmult[vi, vj // hd]))
        for i, hh in T.grid(n, h):
            # the logits' per-(row, head) factor as mantissa and exponent, once per row
            with T.sblock("q_mant"):
                vi, vh = T.axis.remap("SS", [i, hh])
                qm[vi, vh] = _split(qs[vi, vh])[0]
                qe[vi, vh] = _split(qs[vi, vh])[1]
        for i, hh, j, r in T.grid(n, h, n, hd):
            with T.sblock("qk"):
                vi, vh, vj, vr = T.axis.remap("SSSR", [i, hh, j, r])
                with T.init():
                    sacc[vi, vh, vj] = 0
                sacc[vi, vh, vj] = sacc[vi, vh, vj] + T.Cast("int32", qc[vi, vh * hd + vr]) * \
                    T.Cast("int32", k[vj, vh * hd + vr])
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("logit"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                logit[vi, vh, vj] = im.dequant(B, sacc[vi, vh, vj], sbits, qm[vi, vh], qe[vi, vh],
                                               km[vj, vh], ke[vj, vh], 0, lf)
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("lmax"):
                vi, vh, vj = T.axis.remap("SSR", [i, hh, j])
                with T.init():
                    lmax[vi, vh] = -(1 << 30)
                lmax[vi, vh] = T.max(lmax[vi, vh], logit[vi, vh, vj])
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("expv"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                e[vi, vh, vj] = im.exp_neg(B, lmax[vi, vh] - logit[vi, vh, vj])
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("lsum"):
                vi, vh, vj = T.axis.remap("SSR", [i, hh, j])
                with T.init():
                    lsum[vi, vh] = 0
                lsum[vi, vh] = lsum[vi, vh] + e[vi, vh, vj]
        for i, hh in T.grid(n, h):
            with T.sblock("precip"):
                vi, vh = T.axis.remap("SS", [i, hh])
                recip[vi, vh] = im.prob_reciprocal(B, lsum[vi, vh])
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("prob"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                p[vi, vh, vj] = T.Cast("uint8", im.prob8(B, e[vi, vh, vj], recip[vi, vh]))
        for i, hh, c, j in T.grid(n, h, hd, n):
            with T.sblock("pv"):
                vi, vh, vc, vj = T.axis.remap("SSSR", [i, hh, c, j])
                with T.init():
                    pacc[vi, vh, vc] = 0
                pacc[vi, vh, vc] = pacc[vi, vh, vc] + T.Cast("int32", p[vi, vh, vj]) * T.Cast(
                    "int32", v[vj, vh * hd + vc])
        for i, c in T.grid(n, d):
            with T.sblock("attn_out"):
                vi, vc = T.axis.remap("SS", [i, c])
                ov[vi, vc] = im.rshift_round(B, pacc[vi, vc // hd, vc % hd] * vm[vc], im.V_WEIGHT_BITS)
        for i, c in T.grid(n, d):
            with T.sblock("o_absmax"):
                vi, vc = T.axis.remap("SR", [i, c])
                with T.init():
                    oamax[vi] = 0
                oamax[vi] = T.max(oamax[vi], _abs(ov[vi, vc]))
        for i in range(n):
            with T.sblock("o_mult"):
                vi = T.axis.remap("S", [i])
                omult[vi] = im.quant_multiplier(B, oamax[vi])
        for i, c in T.grid(n, d):
            with T.sblock("o_quant"):
                vi, vc = T.axis.remap("SS", [i, c])
                oq[vi, vc] = T.Cast("int8", im.quant8(B, ov[vi, vc], omult[vi]))
        for i in range(n):
            with T.sblock("o_unit"):
                vi = T.axis.remap("S", [i])
                os[vi] = im.attn_out_scale(B, oamax[vi], vtop[0])
        for i, j, r in T.grid(n, d, d):
            with T.sblock("acc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = 0
                acc[vi, vj] = acc[vi, vj] + T.Cast("int32", oq[vi, vr]) * _trit(w, vj, vr, fmt)
        for i, j in T.grid(n, d):
            with T.sblock("residual"):
                vi, vj = T.axis.remap("SS", [i, j])
                x[vi, vj] = T.Cast("float32", acc[vi, vj]) * (alpha[vj] * os[vi]) + bias[vj] + x[vi, vj]

    return _tag(func, "int8_attention_block", n=n, h=h, hd=hd, fmt=fmt, scale=repr(float(scale)))
