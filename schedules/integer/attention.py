"""Integer form of the attention block (``numerics="integer"``): ``kernels.int8_attention_block``
with Q dequantized and coded in fixed point, integer softmax and integer output codes (the
contract: ``schedules.integer.intmath``; the NumPy reference: ``intmath_ref.attention_block``)."""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from . import intmath as im
from ..compute.attention import (attention_row_blocks, out_projection, q_attention_func,
                                 score_scratch)
from ..compute.kernel_base import _tag, cached_builder, max_block, without_params
from ..compute.matmul import head_scratch
from .kernels import (B, G, _scale_params, _scale_tables, _split, head_values, row_code_scratch,
                      row_codes)


@cached_builder
def int8_attention_block(n: int, h: int, hd: int, fmt: str, scale: float) -> tirx.PrimFunc:
    """Integer ``kernels.int8_attention_block``: Q dequantized to Q(G) and coded per (token, head)
    with integer absmax; logits ``L = round(z * 2^LOGIT_FRAC)`` from the int32 scores through the
    query row's and the key's scale mantissas; integer softmax (``exp_neg``, one reciprocal per
    row) to uint8; P.V outputs weighted per channel by ``round(2^14 * vamax[c] / max vamax)``,
    integer absmax and int8 codes per row; the output projection and residual stay float."""
    d = h * hd
    sbits = im.score_bits(hd)
    lf = im.LOGIT_FRAC
    q_values = head_values(n, d, h, hd, fmt, ("qacc", "q_value", "q_absmax"))
    project = out_projection(n, d, fmt)
    o_absmax, o_codes = row_codes(n, d, ("o_absmax", "o_quant"))
    scores, row_max, row_sum, pv = attention_row_blocks(n, h, hd, -(1 << 30), 0)
    # each head's largest key exponent and minus its smallest (for the LX7 softmax loop, below)
    key_emax = max_block("k_emax", n, h, "RS", T.min_value("int32"), lambda e, j, hh: e[j, hh])
    key_eneg = max_block("k_eneg", n, h, "RS", T.min_value("int32"), lambda e, j, hh: -e[j, hh])

    @T.macro
    def body(x, xq, xs, wq, aq, bq, k, k_amax, v, v_amax, w, alpha, bias, o):
        cm, ce, cb, rm, re = _scale_tables(d, n)
        ksf = T.sblock_alloc_buffer((n, h), "float32")
        km = T.sblock_alloc_buffer((n, h), "int32")
        ke = T.sblock_alloc_buffer((n, h), "int32")
        kneg = T.sblock_alloc_buffer((h,), "int32")
        kmax = T.sblock_alloc_buffer((h,), "int32")
        kf = T.sblock_alloc_buffer((n, h, 2), "int32")
        vtop = T.sblock_alloc_buffer((1,), "float32")
        vm = T.sblock_alloc_buffer((d,), "int32")
        qacc, qv, qamax = head_scratch(n, d, h, "int32")
        qmult = T.sblock_alloc_buffer((n, h), "int32")
        qs = T.sblock_alloc_buffer((n, h), "float32")
        qm = T.sblock_alloc_buffer((n, h), "int32")
        qe = T.sblock_alloc_buffer((n, h), "int32")
        qc, sacc, logit, lmax, e, lsum = score_scratch(n, h, hd, "int32")
        recip = T.sblock_alloc_buffer((n, h), "int32")
        p = T.sblock_alloc_buffer((n, h, n), "uint8")
        pacc = T.sblock_alloc_buffer((n, h, hd), "int32")
        ov, oamax, omult, os = row_code_scratch(n, d)
        oq = T.sblock_alloc_buffer((n, d), "int8")
        acc = T.sblock_alloc_buffer((n, d), "int32")
        _scale_params(d, n, aq, bq, xs, cm, ce, cb, rm, re)
        for j, hh in T.grid(n, h):
            with T.sblock("k_scale"):
                vj, vh = T.axis.remap("SS", [j, hh])
                ksf[vj, vh] = im.code_scale(B, k_amax[vj, vh])
        for j, hh in T.grid(n, h):
            with T.sblock("k_mant"):
                vj, vh = T.axis.remap("SS", [j, hh])
                km[vj, vh] = _split(ksf[vj, vh])[0]
                ke[vj, vh] = _split(ksf[vj, vh])[1]
        # the LX7 softmax loop's key factors (runtime/kernels/epilogue_int.c; the contract's
        # logits do not read them): each head's largest key exponent and minus its smallest, and
        # per key its mantissa and 2^(30 - largest + its own exponent) side by side (the loop
        # reads both through one pointer), with which one MULSH divides by the key's share of
        # the shift
        key_eneg(ke, kneg)
        key_emax(ke, kmax)
        for j, hh in T.grid(n, h):
            with T.sblock("k_fact"):
                vj, vh = T.axis.remap("SS", [j, hh])
                kf[vj, vh, 0] = km[vj, vh]
                kf[vj, vh, 1] = T.shift_left(1, T.max(T.min(30 - kmax[vh] + ke[vj, vh], 30), 0))
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
        q_values(xq, wq, cm, ce, cb, rm, re, qacc, qv, qamax)
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
        scores(qc, k, sacc)
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("logit"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                logit[vi, vh, vj] = im.dequant(B, sacc[vi, vh, vj], sbits, qm[vi, vh], qe[vi, vh],
                                               km[vj, vh], ke[vj, vh], 0, lf)
        row_max(logit, lmax)
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("expv"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                e[vi, vh, vj] = im.exp_neg(B, lmax[vi, vh] - logit[vi, vh, vj])
        row_sum(e, lsum)
        for i, hh in T.grid(n, h):
            with T.sblock("precip"):
                vi, vh = T.axis.remap("SS", [i, hh])
                recip[vi, vh] = im.prob_reciprocal(B, lsum[vi, vh])
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("prob"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                p[vi, vh, vj] = T.Cast("uint8", im.prob8(B, e[vi, vh, vj], recip[vi, vh]))
        pv(p, v, pacc)
        for i, c in T.grid(n, d):
            with T.sblock("attn_out"):
                vi, vc = T.axis.remap("SS", [i, c])
                ov[vi, vc] = im.rshift_round(B, pacc[vi, vc // hd, vc % hd] * vm[vc], im.V_WEIGHT_BITS)
        o_absmax(ov, oamax)
        for i in range(n):
            with T.sblock("o_mult"):
                vi = T.axis.remap("S", [i])
                omult[vi] = im.quant_multiplier(B, oamax[vi])
        o_codes(ov, omult, oq)
        for i in range(n):
            with T.sblock("o_unit"):
                vi = T.axis.remap("S", [i])
                os[vi] = im.attn_out_scale(B, oamax[vi], vtop[0])
        project(oq, os, w, alpha, bias, acc, x)

    func = without_params(q_attention_func(n, h, hd, fmt, body), "o")
    return _tag(func, "int8_attention_block", n=n, h=h, hd=hd, fmt=fmt, scale=repr(float(scale)))
