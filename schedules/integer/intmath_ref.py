"""NumPy reference kernels of the integer mode: what ``schedules.integer.kernels`` computes, composed
from the ops of ``schedules.integer.intmath`` (the tests compare the compiled kernels against these, and
``fter_tvm.models.integer_logits`` runs a model with them)."""

from __future__ import annotations

import numpy as np

from .intmath import (LN_NORM_FRAC, LOGIT_FRAC, NP, V_WEIGHT_BITS, VALUE_FRAC, abs_bits, acc_bits,
                      attn_out_scale, code_scale, dequant, exp_neg, fixed_frac, fixed_from_f32,
                      gelu, gelu_row_bound, gelu_table, ln_affine, ln_eps_bits, ln_inv_split,
                      ln_inv_std, ln_sq_shift, ln_out_scale, patch_multiplier, patch_scale, prob8,
                      prob_reciprocal, quant8, quant_multiplier, row_scale, rshift_round,
                      score_bits, shift_round, split_f32, v_weight)


def _f32(a):
    return np.asarray(a, dtype=np.float32)


def _codes(a, m):
    return quant8(NP, a, m[..., None]).astype(np.int8)


def layernorm_quant(x, g, b, ab, eps: float):
    """``kernels_integer.ternary_layernorm_quant``: ``x[t, d] f32`` -> ``(q int8, s f32)``."""
    x, ab = _f32(x), _f32(ab)
    d = x.shape[-1]
    sq_shift = ln_sq_shift(d)
    top = abs_bits(NP, x).max(-1)
    xi = fixed_from_f32(NP, x, np.maximum(top >> 23, 1)[:, None])
    mean = (xi.sum(-1) + d // 2) // d
    dev = xi - mean[:, None]
    sq = NP.chk(((dev * dev) >> sq_shift).sum(-1))
    eps_scale = NP.from_bits(ln_eps_bits(NP, top))
    inv = ln_inv_std(NP, sq, eps_scale, d, sq_shift, eps)
    rm, re = ln_inv_split(NP, inv)
    g0, g1 = ln_affine(NP, ab[0], ab[1], 0), ln_affine(NP, ab[0], ab[1], 1)
    z = shift_round(NP, dev * rm[:, None], -re[:, None])
    y = rshift_round(NP, NP.chk(z * g.astype(np.int64) * g0 + b.astype(np.int64) * g1
                                * (1 << LN_NORM_FRAC)), 15)
    a = np.abs(y).max(-1)
    return _codes(y, quant_multiplier(NP, a)), ln_out_scale(NP, a, ab[0], ab[1]).astype(np.float32)


def values(acc, alpha, s, bias, k: int):
    """``V[t, n] = round((acc * alpha[n] * s[t] + bias[n]) * 2^G)`` of a projection over ``k``."""
    ma, ea = split_f32(NP, _f32(alpha))
    ms, es = split_f32(NP, _f32(s))
    return dequant(NP, acc, acc_bits(k), ma[None, :], ea[None, :], ms[:, None], es[:, None],
                   fixed_frac(NP, _f32(bias))[None, :])


def mlp(q, s, w1, a1, b1, w2, a2, b2, res):
    """``kernels_integer.ternary_mlp`` with decoded weights ``w1[hidden, d]``, ``w2[d, hidden]``."""
    tab = gelu_table()
    v = values(q.astype(np.int64) @ w1.T.astype(np.int64), a1, s, b1, q.shape[1])
    h = gelu(NP, v, lambda k: tab[k])
    a = gelu_row_bound(NP, v.max(-1), lambda k: tab[k])
    q2 = _codes(h, quant_multiplier(NP, a))
    s2 = row_scale(NP, a, -VALUE_FRAC).astype(np.float32)
    acc2 = q2.astype(np.int64) @ w2.T.astype(np.int64)
    return (acc2.astype(np.float32) * (_f32(a2)[None, :] * s2[:, None]) + _f32(b2)[None, :]
            + _f32(res))


def heads(x, s, w, alpha, bias, h: int):
    """``kernels_integer.ternary_matmul_heads``: ``-> (y[t, n] int8, amax[t, h] f32)``."""
    v = values(x.astype(np.int64) @ w.T.astype(np.int64), alpha, s, bias, x.shape[1])
    t, n = v.shape
    vh = v.reshape(t, h, n // h)
    a = np.abs(vh).max(-1)
    codes = quant8(NP, vh, quant_multiplier(NP, a)[..., None]).astype(np.int8).reshape(t, n)
    return codes, (a.astype(np.float32) * np.float32(2.0 ** -VALUE_FRAC))


def channels(x, s, w, alpha, bias):
    """``kernels_integer.ternary_matmul_channels``: ``-> (y[t, n] int8, amax[n] f32)``."""
    v = values(x.astype(np.int64) @ w.T.astype(np.int64), alpha, s, bias, x.shape[1])
    a = np.abs(v).max(0)
    codes = quant8(NP, v, quant_multiplier(NP, a)[None, :]).astype(np.int8)
    return codes, a.astype(np.float32) * np.float32(2.0 ** -VALUE_FRAC)


def attention_rows(qc, qs, k, k_amax, v, v_amax, h: int):
    """Integer attention of int8 queries ``qc[n, d]`` (scales ``qs[n, h]``, the softmax scale
    included) against int8 ``k``, ``v``: ``-> (ov[n, d] int, vtop)`` (``kernels_integer``)."""
    n, d = qc.shape
    hd = d // h
    sbits = score_bits(hd)
    ks = code_scale(NP, _f32(k_amax)).astype(np.float32)            # [n, h]
    km, ke = split_f32(NP, ks)
    qm, qe = split_f32(NP, _f32(qs))
    vtop = _f32(v_amax).max()
    vm = v_weight(NP, _f32(v_amax), vtop)
    qh = qc.astype(np.int64).reshape(n, h, hd)
    kh = k.astype(np.int64).reshape(n, h, hd)
    vh = v.astype(np.int64).reshape(n, h, hd)
    sacc = np.einsum("ihc,jhc->ihj", qh, kh)
    logit = dequant(NP, sacc, sbits, qm[:, :, None], qe[:, :, None], km.T[None], ke.T[None], 0,
                    LOGIT_FRAC)
    e = exp_neg(NP, logit.max(-1, keepdims=True) - logit)
    p = prob8(NP, e, prob_reciprocal(NP, e.sum(-1, keepdims=True)))
    pacc = np.einsum("ihj,jhc->ihc", p, vh).reshape(n, d)
    return rshift_round(NP, NP.chk(pacc * vm[None, :]), V_WEIGHT_BITS), vtop


def attention_block(x, xq, xs, wq, aq, bq, k, k_amax, v, v_amax, w, alpha, bias, h: int,
                        scale: float):
    """``kernels_integer.int8_attention_block`` with decoded weights: the updated ``x``."""
    n, d = xq.shape
    qv = values(xq.astype(np.int64) @ wq.T.astype(np.int64), aq, xs, bq, d)
    qa = np.abs(qv.reshape(n, h, d // h)).max(-1)
    qc = quant8(NP, qv, np.repeat(quant_multiplier(NP, qa), d // h, axis=1)).astype(np.int8)
    qs = (row_scale(NP, qa, -VALUE_FRAC) * np.float32(scale)).astype(np.float32)
    ov, vtop = attention_rows(qc, qs, k, k_amax, v, v_amax, h)
    oa = np.abs(ov).max(-1)
    oq = _codes(ov, quant_multiplier(NP, oa))
    os_ = attn_out_scale(NP, oa, vtop).astype(np.float32)
    acc = oq.astype(np.int64) @ w.T.astype(np.int64)
    return acc.astype(np.float32) * (_f32(alpha)[None, :] * os_[:, None]) + _f32(bias)[None, :] \
        + _f32(x)


def patch_embed(img, w, alpha, bias, cls, pos, p: int):
    """``kernels_integer.patch_embed`` of one image ``[c, H, W]`` with decoded weights
    ``w[d, c*p*p]`` and float prefix tokens ``cls[d]`` (or ``cls[k, d]``), ``pos[n+k, d]``:
    ``-> x[n+k, d]``."""
    c, hh, ww = img.shape
    gh, gw = hh // p, ww // p
    cols = _f32(img).reshape(c, gh, p, gw, p).transpose(1, 3, 0, 2, 4).reshape(gh * gw, c * p * p)
    top = abs_bits(NP, cols).max(-1)
    s = patch_scale(NP, top).astype(np.float32)
    codes = quant8(NP, fixed_from_f32(NP, cols, np.maximum(top >> 23, 1)[:, None]),
                   patch_multiplier(NP, top)[:, None])
    acc = codes @ w.T.astype(np.int64)
    cls = _f32(cls).reshape(-1, w.shape[0])
    k = cls.shape[0]
    tokens = acc.astype(np.float32) * (_f32(alpha)[None, :] * s[:, None]) + _f32(bias)[None, :] \
        + _f32(pos)[k:]
    return np.concatenate([cls + _f32(pos)[:k], tokens]).astype(np.float32)
