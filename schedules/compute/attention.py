"""TensorIR compute of integer attention: Q, K per token and V per channel quantized to int8,
``QK^T`` and ``P.V`` in int32, softmax in fp32 with probabilities on the uint8 grid 1/255.

Layouts: ``int8_attention`` (generic ``[b, h, n, hd]``), ``int8_attention_qkv`` (reads the fused
projection ``qkv[n, 3*h*hd]``), ``int8_attention_q`` (projects Q itself row by row from int8 K/V)
and ``int8_attention_block`` (that, plus output projection and residual, in place).
"""

from __future__ import annotations

import operator

from tvm import tirx
from tvm.script import tirx as T

from ..formats import get_format
from .kernel_base import _absf, _tag, cached_builder, scaled, ternary_acc, without_params
from .matmul import head_scratch, head_values
from .quantize import _absmax_quant, _q8, _q8s, _scale, scale_block


@cached_builder
def int8_attention(b: int, h: int, n: int, hd: int, scale: float) -> tirx.PrimFunc:
    """Integer attention on float ``q, k, v[b,h,n,hd]`` -> ``o[b,h,n,hd]``.

    Q, K quantized per token to int8, V per channel over the tokens; ``QK^T`` and ``P.V`` accumulate
    in int32; softmax in fp32 with probabilities put on the uint8 grid 1/255. The ``b * h``
    (batch, head) pairs are the groups of ``_grouped_attention``.
    """
    body = _grouped_attention(b * h, n, hd, scale, lambda x, g, i, c, off: x[g // h, g % h, i, c],
                              lambda g, i, c: [g // h, g % h, i, c], 0, 0, 0)

    @T.prim_func(s_tir=True)
    def func(q: T.Buffer((b, h, n, hd), "float32"), k: T.Buffer((b, h, n, hd), "float32"),
             v: T.Buffer((b, h, n, hd), "float32"), o: T.Buffer((b, h, n, hd), "float32")):
        body(q, k, v, o)

    return _tag(func, "int8_attention", b=b, h=h, n=n, hd=hd, scale=repr(float(scale)))


@cached_builder
def int8_attention_qkv(n: int, h: int, hd: int, scale: float) -> tirx.PrimFunc:
    """Integer attention reading the fused projection ``qkv[n, 3*h*hd]`` (layout (3, h, hd)) and
    writing ``o[n, h*hd]`` (layout (h, hd)) -- the head split/merge copies around the generic
    ``int8_attention`` disappear. Same numerics; the per-(head, row) blocks are laid out so a
    schedule can stream rows with O(n) scratch.
    """
    d = h * hd
    body = _grouped_attention(h, n, hd, scale, lambda x, g, i, c, off: x[i, off + g * hd + c],
                              lambda g, i, c: [i, g * hd + c], 0, d, 2 * d)

    @T.prim_func(s_tir=True)
    def func(qkv: T.Buffer((n, 3 * d), "float32"), o: T.Buffer((n, d), "float32")):
        body(qkv, qkv, qkv, o)

    return _tag(func, "int8_attention_qkv", n=n, h=h, hd=hd, scale=repr(float(scale)))


def _grouped_attention(groups: int, n: int, hd: int, scale: float, at, out_index, q_off: int,
                       k_off: int, v_off: int):
    """A ``T.macro`` ``(q, k, v, o)``: integer attention over ``groups`` independent (batch, head)
    pairs, whatever the tensors' layout. ``at(x, g, i, c, off)`` reads channel ``c`` of token
    ``i`` in group ``g`` of ``x``, ``off`` the operand's channel offset (``q_off``, ``k_off``,
    ``v_off``: the fused projection holds the three side by side); ``out_index(g, i, c)`` is
    where the output goes in ``o``. Scratch is per group: ``[groups, n]`` row scales,
    ``[groups, n, n]`` scores."""
    q_absmax = _token_absmax("qmax", groups, n, hd, at, q_off)
    k_absmax = _token_absmax("kmax", groups, n, hd, at, k_off)
    scores = row_dot("qk", (groups, n, n, hd), "int32", lambda ki, g, i, j, r: ki[g, j, r])
    row_max = row_fold("lmax", (groups, n, n), T.float32(-3.4e38), T.max, _key_at)
    # src: (logit, lmax)
    row_sum = row_fold("lsum", (groups, n, n), T.float32(0), operator.add,
                       lambda src, g, i, j: T.exp(src[0][g, i, j] - src[1][g, i]))
    pv = row_dot("pv", (groups, n, hd, n), "int32", lambda vq, g, i, c, j: vq[g, j, c])

    @T.macro
    def body(q, k, v, o):
        qmax = T.sblock_alloc_buffer((groups, n), "float32")
        kmax = T.sblock_alloc_buffer((groups, n), "float32")
        vmax = T.sblock_alloc_buffer((groups, hd), "float32")
        qi = T.sblock_alloc_buffer((groups, n, hd), "int8")
        ki = T.sblock_alloc_buffer((groups, n, hd), "int8")
        vq = T.sblock_alloc_buffer((groups, n, hd), "int8")
        sacc = T.sblock_alloc_buffer((groups, n, n), "int32")
        logit = T.sblock_alloc_buffer((groups, n, n), "float32")
        lmax = T.sblock_alloc_buffer((groups, n), "float32")
        lsum = T.sblock_alloc_buffer((groups, n), "float32")
        p = T.sblock_alloc_buffer((groups, n, n), "uint8")
        pacc = T.sblock_alloc_buffer((groups, n, hd), "int32")
        q_absmax(q, qmax)
        k_absmax(k, kmax)
        for hh, c, r in T.grid(groups, hd, n):
            with T.sblock("vmax"):
                vh, vc, vr = T.axis.remap("SSR", [hh, c, r])
                with T.init():
                    vmax[vh, vc] = T.float32(0)
                vmax[vh, vc] = T.max(vmax[vh, vc], _absf(at(v, vh, vr, vc, v_off)))
        for hh, i, c in T.grid(groups, n, hd):
            with T.sblock("qkv_quant"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                qi[vh, vi, vc] = _q8(at(q, vh, vi, vc, q_off), qmax[vh, vi])
                ki[vh, vi, vc] = _q8(at(k, vh, vi, vc, k_off), kmax[vh, vi])
                vq[vh, vi, vc] = _q8(at(v, vh, vi, vc, v_off), vmax[vh, vc])
        scores(qi, ki, sacc)
        for hh, i, j in T.grid(groups, n, n):
            with T.sblock("logit"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                logit[vh, vi, vj] = T.Cast("float32", sacc[vh, vi, vj]) * (
                    _scale(qmax[vh, vi]) * _scale(kmax[vh, vj])) * T.float32(scale)
        row_max(logit, lmax)
        row_sum((logit, lmax), lsum)
        for hh, i, j in T.grid(groups, n, n):
            with T.sblock("prob"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                p[vh, vi, vj] = T.Cast("uint8", T.max(T.min(T.nearbyint(
                    T.exp(logit[vh, vi, vj] - lmax[vh, vi]) / lsum[vh, vi] * T.float32(255)),
                    T.float32(255)), T.float32(0)))
        pv(p, vq, pacc)
        for hh, i, c in T.grid(groups, n, hd):
            with T.sblock("out"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                T.buffer_store(o, T.Cast("float32", pacc[vh, vi, vc]) * (
                    _scale(vmax[vh, vc]) / T.float32(255)), out_index(vh, vi, vc))

    return body


def row_dot(name: str, extents, acc_dtype: str, b_at, a_at=None):
    """A fresh ``T.macro`` ``(a, b, acc)``, the block ``name`` over ``extents`` ``(x, y, outputs,
    reduction)``: ``acc[x, y, o] = sum_r a_at(a, x, y, r) * b_at(b, x, y, o, r)``, ``x, y`` a
    query row and its head (or group) in the layout's order -- the scores (outputs: keys,
    reduction: channels) and P.V (outputs: channels, reduction: keys) of every attention form:
    the grouped and the per-row ones here, every x86 layout (``schedules.x86.attention_forms``).
    ``a_at`` reads the query codes / probabilities (default ``a[x, y, r]``), ``b_at`` the keys /
    values. Products in ``acc_dtype``: integer codes are widened to int32, the x86 float
    variant's codes are float32 already. Fresh per kernel, so the block keeps its name."""

    def widen(v):
        return v if acc_dtype == "float32" else T.Cast(acc_dtype, v)

    def plain(a, x, y, r):
        return a[x, y, r]

    a_at = a_at or plain
    zero = tirx.const(0, acc_dtype)

    @T.macro
    def dot(a, b, acc):
        for x, y, o, r in T.grid(*extents):
            with T.sblock(name):
                vx, vy, vo, vr = T.axis.remap("SSSR", [x, y, o, r])
                with T.init():
                    acc[vx, vy, vo] = zero
                acc[vx, vy, vo] = acc[vx, vy, vo] + widen(a_at(a, vx, vy, vr)) * widen(
                    b_at(b, vx, vy, vo, vr))

    return dot


def row_fold(name: str, extents, init, combine, term):
    """A fresh ``T.macro`` ``(src, out)``, the block ``name`` over ``extents`` ``(x, y, keys)``:
    ``out[x, y] = combine(out[x, y], term(src, x, y, j))`` over the keys ``j`` from ``init`` -- a
    score row's maximum or exp-sum, in the grouped ``[groups, n, n]`` or the per-row ``[n, h, n]``
    layout. Fresh per kernel, so the block keeps its name."""

    @T.macro
    def fold(src, out):
        for x, y, j in T.grid(*extents):
            with T.sblock(name):
                vx, vy, vj = T.axis.remap("SSR", [x, y, j])
                with T.init():
                    out[vx, vy] = init
                out[vx, vy] = combine(out[vx, vy], term(src, vx, vy, vj))

    return fold


def _key_at(x, i, h, j):
    return x[i, h, j]


def _token_absmax(name: str, groups: int, n: int, hd: int, at, off: int):
    """A fresh ``T.macro`` ``(x, amax)``: the block ``name``, each token's absmax over its ``hd``
    channels in every group (Q and K are quantized per token alike); ``at``, ``off`` as in
    ``_grouped_attention``."""

    @T.macro
    def block(x, amax):
        for hh, i, r in T.grid(groups, n, hd):
            with T.sblock(name):
                vh, vi, vr = T.axis.remap("SSR", [hh, i, r])
                with T.init():
                    amax[vh, vi] = T.float32(0)
                amax[vh, vi] = T.max(amax[vh, vi], _absf(at(x, vh, vi, vr, off)))

    return block


def attention_row_blocks(n: int, h: int, hd: int, lowest, zero):
    """Fresh ``T.macro`` s for the per-row attention blocks both numerics share (float here,
    fixed point in ``schedules.integer.attention``), over scores ``[n, h, n]`` and values in the
    fused ``[n, h*hd]`` layout: ``scores(qc, k, sacc)`` ("qk", int32 dot of a query row's head with
    every key), ``row_max(logit, lmax)`` and ``row_sum(e, lsum)`` (reductions initialised to
    ``lowest`` and ``zero``: the logits' dtype decides) and ``pv(p, v, pacc)`` (uint8
    probabilities against int8 values, per (row, head, channel)). Fresh per kernel so each block
    keeps its name."""

    scores = row_dot("qk", (n, h, n, hd), "int32", lambda k, i, hh, j, r: k[j, hh * hd + r],
                     lambda qc, i, hh, r: qc[i, hh * hd + r])
    row_max = row_fold("lmax", (n, h, n), lowest, T.max, _key_at)
    row_sum = row_fold("lsum", (n, h, n), zero, operator.add, _key_at)
    # per (row, head, channel): a head's [hd] outputs against its n probabilities form one tile
    pv = row_dot("pv", (n, h, hd, n), "int32", lambda v, i, hh, c, j: v[j, hh * hd + c])
    return scores, row_max, row_sum, pv


def score_scratch(n: int, h: int, hd: int, dtype: str):
    """The per-row blocks' scratch from the query codes to the softmax sums, allocated in the
    kernel being parsed (call it in the body: ``qc, sacc, logit, lmax, e, lsum =
    score_scratch(...)`` names them): int8 query codes ``[n, h*hd]``, int32 scores ``[n, h, n]``,
    then logits, row maxima, exponentials and row sums in ``dtype`` (float32, or int32 in the
    integer form)."""
    return (T.sblock_alloc_buffer((n, h * hd), "int8"), T.sblock_alloc_buffer((n, h, n), "int32"),
            *(T.sblock_alloc_buffer(shape, dtype) for shape in ((n, h, n), (n, h), (n, h, n),
                                                                (n, h))))


def out_projection(n: int, d: int, fmt: str):
    """A fresh ``T.macro`` ``(oq, os, w, alpha, bias, acc, x)``: the attention block's output
    projection of its int8 codes ``oq[n, d]`` (row scales ``os``) and the residual, ``x`` updated
    in place (block ``residual``); both numerics end alike."""
    acc_block = ternary_acc("acc", n, d, d, fmt)

    @T.macro
    def project(oq, os, w, alpha, bias, acc, x):
        acc_block(oq, w, acc)
        for i, j in T.grid(n, d):
            with T.sblock("residual"):
                vi, vj = T.axis.remap("SS", [i, j])
                x[vi, vj] = scaled(acc, alpha, os, bias, vi, vj) + x[vi, vj]

    return project


def _q_attention_rows(n, h, hd, fmt, scale):
    """A fresh ``T.macro``: per token row, its Q projection (quantized per head), scores against
    every int8 K, softmax, uint8 probabilities, P.V, the row of ``o``. Shared by the two attention
    kernels."""
    d = h * hd
    q_values = head_values(n, d, h, hd, fmt, ("qacc", "q_value", "q_absmax"))
    scores, row_max, row_sum, pv = attention_row_blocks(n, h, hd, T.float32(-3.4e38),
                                                        T.float32(0))
    k_scales, q_scales = scale_block("k_scale", n, h), scale_block("q_scale", n, h)

    @T.macro
    def rows(xq, xs, wq, aq, bq, k, k_amax, ks, v, v_amax, qacc, qf, qamax, qs, qc, sacc, logit,
             lmax, e, lsum, p, pacc, o):
        # the keys' scales once per call, each query row's once per row: the scores and codes
        # read them
        k_scales(k_amax, ks)
        q_values(xq, xs, wq, aq, bq, qacc, qf, qamax)
        q_scales(qamax, qs)
        for i, j in T.grid(n, d):
            with T.sblock("q_codes"):
                vi, vj = T.axis.remap("SS", [i, j])
                qc[vi, vj] = _q8s(qf[vi, vj], qs[vi, vj // hd])
        scores(qc, k, sacc)
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("logit"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                logit[vi, vh, vj] = T.Cast("float32", sacc[vi, vh, vj]) * (
                    qs[vi, vh] * ks[vj, vh]) * T.float32(scale)
        row_max(logit, lmax)
        # each exponential once (the sum and the probabilities read it): exp dominates the row
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("expv"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                e[vi, vh, vj] = T.exp(logit[vi, vh, vj] - lmax[vi, vh])
        row_sum(e, lsum)
        for i, hh, j in T.grid(n, h, n):
            with T.sblock("prob"):
                vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
                p[vi, vh, vj] = T.Cast("uint8", T.max(T.min(T.nearbyint(
                    e[vi, vh, vj] / lsum[vi, vh] * T.float32(255)), T.float32(255)),
                    T.float32(0)))
        pv(p, v, pacc)
        for i, c in T.grid(n, d):
            with T.sblock("attn_out"):
                vi, vc = T.axis.remap("SS", [i, c])
                o[vi, vc] = T.Cast("float32", pacc[vi, vc // hd, vc % hd]) * (
                    _scale(v_amax[vc]) / T.float32(255))

    return rows


@cached_builder
def int8_attention_q(n: int, h: int, hd: int, fmt: str, scale: float) -> tirx.PrimFunc:
    """Integer attention that projects Q itself, row by row, from the int8 LayerNorm output.

    ``xq[n,d] int8, xs[n]`` + Q weights, int8 ``k[n,d]`` with per-(token, head) absmax
    ``k_amax[n,h]``, int8 ``v[n,d]`` with per-channel absmax ``v_amax[d]`` -> ``o[n,d]`` f32.
    Same arithmetic as the qkv projection followed by ``int8_attention_qkv``; Q never exists
    beyond one row.
    """
    return _q_attention(n, h, hd, fmt, scale, block=False)


@cached_builder
def int8_attention_block(n: int, h: int, hd: int, fmt: str, scale: float) -> tirx.PrimFunc:
    """``int8_attention_q`` + output projection + residual, updating ``x`` in place.

    ``x[n, d] += proj(quant(attention(...)))`` row by row: with ``call_tir_inplace`` neither the
    attention output nor a second residual buffer exist. Arguments: ``x``, then those of
    ``int8_attention_q`` (without ``o``), then the projection's packed weights, scales, bias.
    """
    return _q_attention(n, h, hd, fmt, scale, block=True)


def q_attention_func(n: int, h: int, hd: int, fmt: str, body) -> tirx.PrimFunc:
    """The attention block's PrimFunc around the ``T.macro`` ``body``, with every parameter of
    both kernel variants (``int8_attention_q`` / ``_block``) and of both numerics (float here,
    ``schedules.integer.attention``): ``x``, the Q projection's input ``xq, xs`` and weights
    ``wq, aq, bq``, int8 keys ``k, k_amax`` and values ``v, v_amax``, the output projection
    ``w, alpha, bias`` and the output ``o``. Each kernel drops what it does not take
    (``without_params``)."""
    d = h * hd
    kb = get_format(fmt).row_bytes(d)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((n, d), "float32"), xq: T.Buffer((n, d), "int8"),
             xs: T.Buffer((n,), "float32"), wq: T.Buffer((d, kb), "uint8"),
             aq: T.Buffer((d,), "float32"), bq: T.Buffer((d,), "float32"),
             k: T.Buffer((n, d), "int8"), k_amax: T.Buffer((n, h), "float32"),
             v: T.Buffer((n, d), "int8"), v_amax: T.Buffer((d,), "float32"),
             w: T.Buffer((d, kb), "uint8"), alpha: T.Buffer((d,), "float32"),
             bias: T.Buffer((d,), "float32"), o: T.Buffer((n, d), "float32")):
        body(x, xq, xs, wq, aq, bq, k, k_amax, v, v_amax, w, alpha, bias, o)

    return func


def _q_attention(n: int, h: int, hd: int, fmt: str, scale: float, block: bool) -> tirx.PrimFunc:
    """The two kernels around ``_q_attention_rows``, written once: ``block`` selects the variant
    (the attention block's parameters ``x, w, alpha, bias`` and its projection, or the output
    ``o``); each drops the parameters of the other."""
    d = h * hd
    project = out_projection(n, d, fmt)
    attention_rows = _q_attention_rows(n, h, hd, fmt, scale)

    @T.macro
    def body(x, xq, xs, wq, aq, bq, k, k_amax, v, v_amax, w, alpha, bias, o):
        qacc, qf, qamax = head_scratch(n, d, h, "float32")
        qs = T.sblock_alloc_buffer((n, h), "float32")
        ks = T.sblock_alloc_buffer((n, h), "float32")
        qc, sacc, logit, lmax, e, lsum = score_scratch(n, h, hd, "float32")
        p = T.sblock_alloc_buffer((n, h, n), "uint8")
        pacc = T.sblock_alloc_buffer((n, h, hd), "int32")
        if block:
            of = T.sblock_alloc_buffer((n, d), "float32")
            oamax = T.sblock_alloc_buffer((n,), "float32")
            os = T.sblock_alloc_buffer((n,), "float32")
            oq = T.sblock_alloc_buffer((n, d), "int8")
            acc = T.sblock_alloc_buffer((n, d), "int32")
            attention_rows(xq, xs, wq, aq, bq, k, k_amax, ks, v, v_amax, qacc, qf, qamax, qs, qc,
                           sacc, logit, lmax, e, lsum, p, pacc, of)
            _absmax_quant(n, d, of, oq, os, oamax)
            project(oq, os, w, alpha, bias, acc, x)
        else:
            attention_rows(xq, xs, wq, aq, bq, k, k_amax, ks, v, v_amax, qacc, qf, qamax, qs, qc,
                           sacc, logit, lmax, e, lsum, p, pacc, o)

    func = q_attention_func(n, h, hd, fmt, body)
    if block:
        return _tag(without_params(func, "o"), "int8_attention_block", n=n, h=h, hd=hd, fmt=fmt,
                    scale=repr(float(scale)))
    return _tag(without_params(func, "x", "w", "alpha", "bias"), "int8_attention_q", n=n, h=h,
                hd=hd, fmt=fmt, scale=repr(float(scale)))
