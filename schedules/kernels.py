"""TensorIR compute definitions of the fused FTerViT kernels (the scalar meaning, before scheduling).

Every builder returns a PrimFunc tagged with ``fter.kind`` (the kernel family) and ``fter.params``
(its specialization), which target schedules read to pick a schedule. Numerics follow SPEC §1 and
``fter_tvm.models.quant``: per-token absmax int8 (``ACT_EPS``), round half to even (``nearbyint``),
int32 accumulation, fp32 epilogues.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from . import fp16
from .formats import get_format

from .kernel_base import (ACT_EPS, EPILOGUES, _absf, _epilogue, _gelu, _tag,  # noqa: F401
                          _trit, kernel_name)


def ternary_matmul(t: int, k: int, n: int, fmt: str = "b3", epilogue: str = "none") -> tirx.PrimFunc:
    """``y[t,n] = epi(f32(sum_k q[t,k] * W[n,k]) * (alpha[n] * s[t]) + bias[n])``.

    Inputs: int8 activations ``q[t,k]``, their per-token scales ``s[t]``, packed ternary weights
    ``w[n, row_bytes(k)]``, per-channel scales ``alpha[n]``, ``bias[n]``; with ``epilogue="residual"``
    also ``res[t,n]`` which is added last.
    """
    if epilogue not in EPILOGUES:
        raise ValueError(f"unknown epilogue {epilogue!r}")
    if get_format(fmt).tile is not None:
        # tiled x86 layouts have their own compute; imported here because kernels_x86 uses our helpers
        from .kernels_x86 import ternary_matmul_tiled

        return ternary_matmul_tiled(t, k, n, fmt, epilogue)
    kb = get_format(fmt).row_bytes(k)

    @T.macro
    def compute(q, s, w, alpha, bias, res, y, acc):
        for i, j, r in T.grid(t, n, k):
            with T.sblock("acc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = 0
                acc[vi, vj] = acc[vi, vj] + T.Cast("int32", q[vi, vr]) * _trit(w, vj, vr, fmt)
        for i, j in T.grid(t, n):
            with T.sblock("epilogue"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = _epilogue(
                    T.Cast("float32", acc[vi, vj]) * (alpha[vj] * s[vi]) + bias[vj],
                    res, vi, vj, epilogue)

    if epilogue == "residual":
        @T.prim_func(s_tir=True)
        def func(q: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
                 w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
                 bias: T.Buffer((n,), "float32"), res: T.Buffer((t, n), "float32"),
                 y: T.Buffer((t, n), "float32")):
            acc = T.sblock_alloc_buffer((t, n), "int32")
            compute(q, s, w, alpha, bias, res, y, acc)
    else:
        @T.prim_func(s_tir=True)
        def func(q: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
                 w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
                 bias: T.Buffer((n,), "float32"), y: T.Buffer((t, n), "float32")):
            acc = T.sblock_alloc_buffer((t, n), "int32")
            compute(q, s, w, alpha, bias, None, y, acc)
    return _tag(func, "ternary_matmul", t=t, k=k, n=n, fmt=fmt, epilogue=epilogue)


@T.macro
def _absmax_quant(t, k, y, q, s, amax):
    """Blocks shared by the quantizing kernels: per-row absmax of ``y`` -> ``s``, int8 codes -> ``q``."""
    for i, r in T.grid(t, k):
        with T.sblock("absmax"):
            vi, vr = T.axis.remap("SR", [i, r])
            with T.init():
                amax[vi] = T.float32(0)
            amax[vi] = T.max(amax[vi], _absf(y[vi, vr]))
    for i in range(t):
        with T.sblock("scale"):
            vi = T.axis.remap("S", [i])
            s[vi] = T.max(amax[vi], T.float32(ACT_EPS)) / T.float32(127.0)
    for i, j in T.grid(t, k):
        with T.sblock("quant"):
            vi, vj = T.axis.remap("SS", [i, j])
            q[vi, vj] = T.Cast("int8", T.max(T.min(T.nearbyint(y[vi, vj] / s[vi]),
                                                   T.float32(127)), T.float32(-128)))


def quantize_act(t: int, k: int) -> tirx.PrimFunc:
    """Per-token absmax int8 quantizer: ``x[t,k] f32 -> (q[t,k] int8, s[t] f32)``."""

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "float32"), q: T.Buffer((t, k), "int8"),
             s: T.Buffer((t,), "float32")):
        amax = T.sblock_alloc_buffer((t,), "float32")
        _absmax_quant(t, k, x, q, s, amax)

    return _tag(func, "quantize_act", t=t, k=k)


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


def int8_attention(b: int, h: int, n: int, hd: int, scale: float) -> tirx.PrimFunc:
    """Integer attention on float ``q, k, v[b,h,n,hd]`` -> ``o[b,h,n,hd]``.

    Q, K quantized per token to int8, V per channel over the tokens; ``QK^T`` and ``P.V`` accumulate
    in int32; softmax in fp32 with probabilities put on the uint8 grid 1/255.
    """

    @T.prim_func(s_tir=True)
    def func(q: T.Buffer((b, h, n, hd), "float32"), k: T.Buffer((b, h, n, hd), "float32"),
             v: T.Buffer((b, h, n, hd), "float32"), o: T.Buffer((b, h, n, hd), "float32")):
        qmax = T.sblock_alloc_buffer((b, h, n), "float32")
        kmax = T.sblock_alloc_buffer((b, h, n), "float32")
        vmax = T.sblock_alloc_buffer((b, h, hd), "float32")
        qi = T.sblock_alloc_buffer((b, h, n, hd), "int8")
        ki = T.sblock_alloc_buffer((b, h, n, hd), "int8")
        vq = T.sblock_alloc_buffer((b, h, n, hd), "int8")
        sacc = T.sblock_alloc_buffer((b, h, n, n), "int32")
        logit = T.sblock_alloc_buffer((b, h, n, n), "float32")
        lmax = T.sblock_alloc_buffer((b, h, n), "float32")
        lsum = T.sblock_alloc_buffer((b, h, n), "float32")
        p = T.sblock_alloc_buffer((b, h, n, n), "uint8")
        pacc = T.sblock_alloc_buffer((b, h, n, hd), "int32")
        _row_absmax(b, h, n, hd, q, qmax, "qmax")
        _row_absmax(b, h, n, hd, k, kmax, "kmax")
        for bb, hh, d, r in T.grid(b, h, hd, n):
            with T.sblock("vmax"):
                vb, vh, vd, vr = T.axis.remap("SSSR", [bb, hh, d, r])
                with T.init():
                    vmax[vb, vh, vd] = T.float32(0)
                vmax[vb, vh, vd] = T.max(vmax[vb, vh, vd], _absf(v[vb, vh, vr, vd]))
        for bb, hh, i, d in T.grid(b, h, n, hd):
            with T.sblock("qk_quant"):
                vb, vh, vi, vd = T.axis.remap("SSSS", [bb, hh, i, d])
                qi[vb, vh, vi, vd] = _q8(q[vb, vh, vi, vd], qmax[vb, vh, vi])
                ki[vb, vh, vi, vd] = _q8(k[vb, vh, vi, vd], kmax[vb, vh, vi])
        for bb, hh, i, d in T.grid(b, h, n, hd):
            with T.sblock("v_quant"):
                vb, vh, vi, vd = T.axis.remap("SSSS", [bb, hh, i, d])
                vq[vb, vh, vi, vd] = _q8(v[vb, vh, vi, vd], vmax[vb, vh, vd])
        for bb, hh, i, j, r in T.grid(b, h, n, n, hd):
            with T.sblock("qk"):
                vb, vh, vi, vj, vr = T.axis.remap("SSSSR", [bb, hh, i, j, r])
                with T.init():
                    sacc[vb, vh, vi, vj] = 0
                sacc[vb, vh, vi, vj] = sacc[vb, vh, vi, vj] + T.Cast(
                    "int32", qi[vb, vh, vi, vr]) * T.Cast("int32", ki[vb, vh, vj, vr])
        for bb, hh, i, j in T.grid(b, h, n, n):
            with T.sblock("logit"):
                vb, vh, vi, vj = T.axis.remap("SSSS", [bb, hh, i, j])
                logit[vb, vh, vi, vj] = T.Cast("float32", sacc[vb, vh, vi, vj]) * (
                    _scale(qmax[vb, vh, vi]) * _scale(kmax[vb, vh, vj])) * T.float32(scale)
        for bb, hh, i, j in T.grid(b, h, n, n):
            with T.sblock("lmax"):
                vb, vh, vi, vj = T.axis.remap("SSSR", [bb, hh, i, j])
                with T.init():
                    lmax[vb, vh, vi] = T.float32(-3.4e38)
                lmax[vb, vh, vi] = T.max(lmax[vb, vh, vi], logit[vb, vh, vi, vj])
        for bb, hh, i, j in T.grid(b, h, n, n):
            with T.sblock("lsum"):
                vb, vh, vi, vj = T.axis.remap("SSSR", [bb, hh, i, j])
                with T.init():
                    lsum[vb, vh, vi] = T.float32(0)
                lsum[vb, vh, vi] = lsum[vb, vh, vi] + T.exp(logit[vb, vh, vi, vj] - lmax[vb, vh, vi])
        for bb, hh, i, j in T.grid(b, h, n, n):
            with T.sblock("prob"):
                vb, vh, vi, vj = T.axis.remap("SSSS", [bb, hh, i, j])
                p[vb, vh, vi, vj] = T.Cast("uint8", T.max(T.min(T.nearbyint(
                    T.exp(logit[vb, vh, vi, vj] - lmax[vb, vh, vi]) / lsum[vb, vh, vi]
                    * T.float32(255)), T.float32(255)), T.float32(0)))
        for bb, hh, i, d, j in T.grid(b, h, n, hd, n):
            with T.sblock("pv"):
                vb, vh, vi, vd, vj = T.axis.remap("SSSSR", [bb, hh, i, d, j])
                with T.init():
                    pacc[vb, vh, vi, vd] = 0
                pacc[vb, vh, vi, vd] = pacc[vb, vh, vi, vd] + T.Cast(
                    "int32", p[vb, vh, vi, vj]) * T.Cast("int32", vq[vb, vh, vj, vd])
        for bb, hh, i, d in T.grid(b, h, n, hd):
            with T.sblock("out"):
                vb, vh, vi, vd = T.axis.remap("SSSS", [bb, hh, i, d])
                o[vb, vh, vi, vd] = T.Cast("float32", pacc[vb, vh, vi, vd]) * (
                    _scale(vmax[vb, vh, vd]) / T.float32(255))

    return _tag(func, "int8_attention", b=b, h=h, n=n, hd=hd, scale=repr(float(scale)))


@T.macro
def _row_absmax(b, h, n, hd, x, amax, name):
    for bb, hh, i, r in T.grid(b, h, n, hd):
        with T.sblock(name):
            vb, vh, vi, vr = T.axis.remap("SSSR", [bb, hh, i, r])
            with T.init():
                amax[vb, vh, vi] = T.float32(0)
            amax[vb, vh, vi] = T.max(amax[vb, vh, vi], _absf(x[vb, vh, vi, vr]))


def _scale(amax):
    return T.max(amax, T.float32(ACT_EPS)) / T.float32(127.0)


def _q8(x, amax):
    return _q8s(x, _scale(amax))


def _q8s(x, scale):
    """int8 code of ``x`` on the grid ``scale`` (``_q8`` with the row's scale already computed:
    the same value, one division per element fewer)."""
    return T.Cast("int8", T.max(T.min(T.nearbyint(x / scale), T.float32(127)), T.float32(-128)))


def int8_attention_qkv(n: int, h: int, hd: int, scale: float) -> tirx.PrimFunc:
    """Integer attention reading the fused projection ``qkv[n, 3*h*hd]`` (layout (3, h, hd)) and
    writing ``o[n, h*hd]`` (layout (h, hd)) -- the head split/merge copies around the generic
    ``int8_attention`` disappear. Same numerics; the per-(head, row) blocks are laid out so a
    schedule can stream rows with O(n) scratch.
    """
    d = h * hd

    @T.prim_func(s_tir=True)
    def func(qkv: T.Buffer((n, 3 * d), "float32"), o: T.Buffer((n, d), "float32")):
        qmax = T.sblock_alloc_buffer((h, n), "float32")
        kmax = T.sblock_alloc_buffer((h, n), "float32")
        vmax = T.sblock_alloc_buffer((h, hd), "float32")
        qi = T.sblock_alloc_buffer((h, n, hd), "int8")
        ki = T.sblock_alloc_buffer((h, n, hd), "int8")
        vq = T.sblock_alloc_buffer((h, n, hd), "int8")
        sacc = T.sblock_alloc_buffer((h, n, n), "int32")
        logit = T.sblock_alloc_buffer((h, n, n), "float32")
        lmax = T.sblock_alloc_buffer((h, n), "float32")
        lsum = T.sblock_alloc_buffer((h, n), "float32")
        p = T.sblock_alloc_buffer((h, n, n), "uint8")
        pacc = T.sblock_alloc_buffer((h, n, hd), "int32")
        for hh, i, r in T.grid(h, n, hd):
            with T.sblock("qmax"):
                vh, vi, vr = T.axis.remap("SSR", [hh, i, r])
                with T.init():
                    qmax[vh, vi] = T.float32(0)
                qmax[vh, vi] = T.max(qmax[vh, vi], _absf(qkv[vi, vh * hd + vr]))
        for hh, i, r in T.grid(h, n, hd):
            with T.sblock("kmax"):
                vh, vi, vr = T.axis.remap("SSR", [hh, i, r])
                with T.init():
                    kmax[vh, vi] = T.float32(0)
                kmax[vh, vi] = T.max(kmax[vh, vi], _absf(qkv[vi, d + vh * hd + vr]))
        for hh, c, r in T.grid(h, hd, n):
            with T.sblock("vmax"):
                vh, vc, vr = T.axis.remap("SSR", [hh, c, r])
                with T.init():
                    vmax[vh, vc] = T.float32(0)
                vmax[vh, vc] = T.max(vmax[vh, vc], _absf(qkv[vr, 2 * d + vh * hd + vc]))
        for hh, i, c in T.grid(h, n, hd):
            with T.sblock("qkv_quant"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                qi[vh, vi, vc] = _q8(qkv[vi, vh * hd + vc], qmax[vh, vi])
                ki[vh, vi, vc] = _q8(qkv[vi, d + vh * hd + vc], kmax[vh, vi])
                vq[vh, vi, vc] = _q8(qkv[vi, 2 * d + vh * hd + vc], vmax[vh, vc])
        for hh, i, j, r in T.grid(h, n, n, hd):
            with T.sblock("qk"):
                vh, vi, vj, vr = T.axis.remap("SSSR", [hh, i, j, r])
                with T.init():
                    sacc[vh, vi, vj] = 0
                sacc[vh, vi, vj] = sacc[vh, vi, vj] + T.Cast("int32", qi[vh, vi, vr]) * T.Cast(
                    "int32", ki[vh, vj, vr])
        for hh, i, j in T.grid(h, n, n):
            with T.sblock("logit"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                logit[vh, vi, vj] = T.Cast("float32", sacc[vh, vi, vj]) * (
                    _scale(qmax[vh, vi]) * _scale(kmax[vh, vj])) * T.float32(scale)
        for hh, i, j in T.grid(h, n, n):
            with T.sblock("lmax"):
                vh, vi, vj = T.axis.remap("SSR", [hh, i, j])
                with T.init():
                    lmax[vh, vi] = T.float32(-3.4e38)
                lmax[vh, vi] = T.max(lmax[vh, vi], logit[vh, vi, vj])
        for hh, i, j in T.grid(h, n, n):
            with T.sblock("lsum"):
                vh, vi, vj = T.axis.remap("SSR", [hh, i, j])
                with T.init():
                    lsum[vh, vi] = T.float32(0)
                lsum[vh, vi] = lsum[vh, vi] + T.exp(logit[vh, vi, vj] - lmax[vh, vi])
        for hh, i, j in T.grid(h, n, n):
            with T.sblock("prob"):
                vh, vi, vj = T.axis.remap("SSS", [hh, i, j])
                p[vh, vi, vj] = T.Cast("uint8", T.max(T.min(T.nearbyint(
                    T.exp(logit[vh, vi, vj] - lmax[vh, vi]) / lsum[vh, vi] * T.float32(255)),
                    T.float32(255)), T.float32(0)))
        for hh, i, c, j in T.grid(h, n, hd, n):
            with T.sblock("pv"):
                vh, vi, vc, vj = T.axis.remap("SSSR", [hh, i, c, j])
                with T.init():
                    pacc[vh, vi, vc] = 0
                pacc[vh, vi, vc] = pacc[vh, vi, vc] + T.Cast("int32", p[vh, vi, vj]) * T.Cast(
                    "int32", vq[vh, vj, vc])
        for hh, i, c in T.grid(h, n, hd):
            with T.sblock("out"):
                vh, vi, vc = T.axis.remap("SSS", [hh, i, c])
                o[vi, vh * hd + vc] = T.Cast("float32", pacc[vh, vi, vc]) * (
                    _scale(vmax[vh, vc]) / T.float32(255))

    return _tag(func, "int8_attention_qkv", n=n, h=h, hd=hd, scale=repr(float(scale)))


def ternary_mlp(t: int, d: int, hidden: int, fmt: str = "b3", inplace: bool = False
                ) -> tirx.PrimFunc:
    """The whole ViT MLP in one kernel: ``y = res + fc2(quant(gelu(fc1(q, s))))``.

    Numerically the chain ternary_matmul(gelu) -> quantize_act -> ternary_matmul(residual), but as
    one kernel a schedule can run it token by token, so the [t, hidden] activations never exist.
    ``inplace``: no ``y``; ``res`` is updated in place (for ``call_tir_inplace``).
    """
    kb1, kb2 = get_format(fmt).row_bytes(d), get_format(fmt).row_bytes(hidden)

    @T.macro
    def body(q, s, w1, a1, b1, w2, a2, b2, res, y):
        acc1 = T.sblock_alloc_buffer((t, hidden), "int32")
        hf = T.sblock_alloc_buffer((t, hidden), "float32")
        amax = T.sblock_alloc_buffer((t,), "float32")
        s2 = T.sblock_alloc_buffer((t,), "float32")
        q2 = T.sblock_alloc_buffer((t, hidden), "int8")
        acc2 = T.sblock_alloc_buffer((t, d), "int32")
        for i, j, r in T.grid(t, hidden, d):
            with T.sblock("acc1"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc1[vi, vj] = 0
                acc1[vi, vj] = acc1[vi, vj] + T.Cast("int32", q[vi, vr]) * _trit(w1, vj, vr, fmt)
        for i, j in T.grid(t, hidden):
            with T.sblock("hidden"):
                vi, vj = T.axis.remap("SS", [i, j])
                hf[vi, vj] = _gelu(T.Cast("float32", acc1[vi, vj]) * (a1[vj] * s[vi]) + b1[vj])
        _absmax_quant(t, hidden, hf, q2, s2, amax)
        for i, j, r in T.grid(t, d, hidden):
            with T.sblock("acc2"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc2[vi, vj] = 0
                acc2[vi, vj] = acc2[vi, vj] + T.Cast("int32", q2[vi, vr]) * _trit(w2, vj, vr, fmt)
        for i, j in T.grid(t, d):
            with T.sblock("out"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = T.Cast("float32", acc2[vi, vj]) * (a2[vj] * s2[vi]) + b2[vj] + res[vi, vj]

    if inplace:
        @T.prim_func(s_tir=True)
        def func(q: T.Buffer((t, d), "int8"), s: T.Buffer((t,), "float32"),
                 w1: T.Buffer((hidden, kb1), "uint8"), a1: T.Buffer((hidden,), "float32"),
                 b1: T.Buffer((hidden,), "float32"), w2: T.Buffer((d, kb2), "uint8"),
                 a2: T.Buffer((d,), "float32"), b2: T.Buffer((d,), "float32"),
                 res: T.Buffer((t, d), "float32")):
            body(q, s, w1, a1, b1, w2, a2, b2, res, res)
    else:
        @T.prim_func(s_tir=True)
        def func(q: T.Buffer((t, d), "int8"), s: T.Buffer((t,), "float32"),
                 w1: T.Buffer((hidden, kb1), "uint8"), a1: T.Buffer((hidden,), "float32"),
                 b1: T.Buffer((hidden,), "float32"), w2: T.Buffer((d, kb2), "uint8"),
                 a2: T.Buffer((d,), "float32"), b2: T.Buffer((d,), "float32"),
                 res: T.Buffer((t, d), "float32"), y: T.Buffer((t, d), "float32")):
            body(q, s, w1, a1, b1, w2, a2, b2, res, y)
    return _tag(func, "ternary_mlp", t=t, d=d, hidden=hidden, fmt=fmt, inplace=int(inplace))


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
        for bi, gy, gx in T.grid(b, gh, gw):
            with T.sblock("scale"):
                vb, vy, vx = T.axis.remap("SSS", [bi, gy, gx])
                s[(vb * gh + vy) * gw + vx] = _scale(amax[vb, vy, vx])
        for bi, gy, gx, ci, ky, kx in T.grid(b, gh, gw, c, p, p):
            with T.sblock("quant"):
                vb, vy, vx, vc, vky, vkx = T.axis.remap("SSSSSS", [bi, gy, gx, ci, ky, kx])
                q[(vb * gh + vy) * gw + vx, (vc * p + vky) * p + vkx] = _q8(
                    x[vb, vc, vy * p + vky, vx * p + vkx], amax[vb, vy, vx])

    return _tag(func, "quantize_patches", b=b, c=c, gh=gh, gw=gw, p=p)


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


def ternary_matmul_heads(t: int, k: int, h: int, hd: int, fmt: str = "b3") -> tirx.PrimFunc:
    """A ternary projection quantized per (token, head) as it is produced.

    ``x[t,k] int8, s[t] -> (y[t, h*hd] int8, amax[t, h] f32)``: each head's ``hd`` outputs get
    one absmax int8 scale (``amax / 127``), the way Q and K enter integer attention.
    """
    n = h * hd
    kb = get_format(fmt).row_bytes(k)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
             w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
             bias: T.Buffer((n,), "float32"), y: T.Buffer((t, n), "int8"),
             amax_out: T.Buffer((t, h), "float32")):
        acc = T.sblock_alloc_buffer((t, n), "int32")
        f = T.sblock_alloc_buffer((t, n), "float32")
        amax = T.sblock_alloc_buffer((t, h), "float32")
        for i, j, r in T.grid(t, n, k):
            with T.sblock("acc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = 0
                acc[vi, vj] = acc[vi, vj] + T.Cast("int32", x[vi, vr]) * _trit(w, vj, vr, fmt)
        for i, j in T.grid(t, n):
            with T.sblock("value"):
                vi, vj = T.axis.remap("SS", [i, j])
                f[vi, vj] = T.Cast("float32", acc[vi, vj]) * (alpha[vj] * s[vi]) + bias[vj]
        for i, g, c in T.grid(t, h, hd):
            with T.sblock("head_absmax"):
                vi, vg, vc = T.axis.remap("SSR", [i, g, c])
                with T.init():
                    amax[vi, vg] = T.float32(0)
                amax[vi, vg] = T.max(amax[vi, vg], _absf(f[vi, vg * hd + vc]))
        for i, g in T.grid(t, h):
            # one block per (token, head) writes both outputs: the codes and their absmax
            with T.sblock("head_quant"):
                vi, vg = T.axis.remap("SS", [i, g])
                amax_out[vi, vg] = amax[vi, vg]
                for c in range(hd):
                    y[vi, vg * hd + c] = _q8(f[vi, vg * hd + c], amax[vi, vg])

    return _tag(func, "ternary_matmul_heads", t=t, k=k, h=h, hd=hd, fmt=fmt)


def quantize_channels(t: int, d: int) -> tirx.PrimFunc:
    """Per-channel absmax int8 over the tokens: ``v[t,d] f32 -> (q[t,d] int8, amax[d] f32)``."""

    @T.prim_func(s_tir=True)
    def func(v: T.Buffer((t, d), "float32"), q: T.Buffer((t, d), "int8"),
             amax: T.Buffer((d,), "float32")):
        for j, i in T.grid(d, t):
            with T.sblock("channel_absmax"):
                vj, vi = T.axis.remap("SR", [j, i])
                with T.init():
                    amax[vj] = T.float32(0)
                amax[vj] = T.max(amax[vj], _absf(v[vi, vj]))
        for i, j in T.grid(t, d):
            with T.sblock("channel_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                q[vi, vj] = _q8(v[vi, vj], amax[vj])

    return _tag(func, "quantize_channels", t=t, d=d)


def ternary_matmul_channels(t: int, k: int, n: int, fmt: str = "b3") -> tirx.PrimFunc:
    """A ternary projection quantized per output channel over the tokens, without ever storing it
    in float: ``x[t,k] int8, s[t] -> (y[t,n] int8, amax[n] f32)``.

    The projection runs twice -- first for each channel's absmax, then to quantize with it --
    the price (t*k*n MACs) of not holding a [t, n] float tensor. Same values as
    ``ternary_matmul`` followed by ``quantize_channels``.
    """
    kb = get_format(fmt).row_bytes(k)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "int8"), s: T.Buffer((t,), "float32"),
             w: T.Buffer((n, kb), "uint8"), alpha: T.Buffer((n,), "float32"),
             bias: T.Buffer((n,), "float32"), y: T.Buffer((t, n), "int8"),
             amax: T.Buffer((n,), "float32")):
        acc1 = T.sblock_alloc_buffer((t, n), "int32")
        acc2 = T.sblock_alloc_buffer((t, n), "int32")
        for i, j, r in T.grid(t, n, k):
            with T.sblock("acc1"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc1[vi, vj] = 0
                acc1[vi, vj] = acc1[vi, vj] + T.Cast("int32", x[vi, vr]) * _trit(w, vj, vr, fmt)
        for i, j in T.grid(t, n):
            with T.sblock("channel_absmax"):
                vi, vj = T.axis.remap("RS", [i, j])
                with T.init():
                    amax[vj] = T.float32(0)
                amax[vj] = T.max(amax[vj], _absf(
                    T.Cast("float32", acc1[vi, vj]) * (alpha[vj] * s[vi]) + bias[vj]))
        for i, j, r in T.grid(t, n, k):
            with T.sblock("acc2"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc2[vi, vj] = 0
                acc2[vi, vj] = acc2[vi, vj] + T.Cast("int32", x[vi, vr]) * _trit(w, vj, vr, fmt)
        for i, j in T.grid(t, n):
            with T.sblock("channel_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = _q8(T.Cast("float32", acc2[vi, vj]) * (alpha[vj] * s[vi]) + bias[vj],
                                amax[vj])

    return _tag(func, "ternary_matmul_channels", t=t, k=k, n=n, fmt=fmt)


@T.macro
def _q_attention_rows(n, h, hd, d, fmt, scale, xq, xs, wq, aq, bq, k, k_amax, ks, v, v_amax, qacc,
                      qf, qamax, qs, qc, sacc, logit, lmax, e, lsum, p, pacc, o):
    """Per token row: its Q projection (quantized per head), scores against every int8 K,
    softmax, uint8 probabilities, P.V, the row of ``o``. Shared by the two attention kernels.
    (``d = h * hd`` is passed in: an assignment in a macro would be a non-block statement.)"""
    # the keys' scales once per call, each query row's once per row: the scores and codes read them
    for j, hh in T.grid(n, h):
        with T.sblock("k_scale"):
            vj, vh = T.axis.remap("SS", [j, hh])
            ks[vj, vh] = _scale(k_amax[vj, vh])
    for i, j, r in T.grid(n, d, d):
        with T.sblock("qacc"):
            vi, vj, vr = T.axis.remap("SSR", [i, j, r])
            with T.init():
                qacc[vi, vj] = 0
            qacc[vi, vj] = qacc[vi, vj] + T.Cast("int32", xq[vi, vr]) * _trit(wq, vj, vr, fmt)
    for i, j in T.grid(n, d):
        with T.sblock("q_value"):
            vi, vj = T.axis.remap("SS", [i, j])
            qf[vi, vj] = T.Cast("float32", qacc[vi, vj]) * (aq[vj] * xs[vi]) + bq[vj]
    for i, hh, c in T.grid(n, h, hd):
        with T.sblock("q_absmax"):
            vi, vh, vc = T.axis.remap("SSR", [i, hh, c])
            with T.init():
                qamax[vi, vh] = T.float32(0)
            qamax[vi, vh] = T.max(qamax[vi, vh], _absf(qf[vi, vh * hd + vc]))
    for i, hh in T.grid(n, h):
        with T.sblock("q_scale"):
            vi, vh = T.axis.remap("SS", [i, hh])
            qs[vi, vh] = _scale(qamax[vi, vh])
    for i, j in T.grid(n, d):
        with T.sblock("q_codes"):
            vi, vj = T.axis.remap("SS", [i, j])
            qc[vi, vj] = _q8s(qf[vi, vj], qs[vi, vj // hd])
    for i, hh, j, r in T.grid(n, h, n, hd):
        with T.sblock("qk"):
            vi, vh, vj, vr = T.axis.remap("SSSR", [i, hh, j, r])
            with T.init():
                sacc[vi, vh, vj] = 0
            sacc[vi, vh, vj] = sacc[vi, vh, vj] + T.Cast("int32", qc[vi, vh * hd + vr]) * T.Cast(
                "int32", k[vj, vh * hd + vr])
    for i, hh, j in T.grid(n, h, n):
        with T.sblock("logit"):
            vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
            logit[vi, vh, vj] = T.Cast("float32", sacc[vi, vh, vj]) * (
                qs[vi, vh] * ks[vj, vh]) * T.float32(scale)
    for i, hh, j in T.grid(n, h, n):
        with T.sblock("lmax"):
            vi, vh, vj = T.axis.remap("SSR", [i, hh, j])
            with T.init():
                lmax[vi, vh] = T.float32(-3.4e38)
            lmax[vi, vh] = T.max(lmax[vi, vh], logit[vi, vh, vj])
    # each exponential once (the sum and the probabilities read it): exp dominates the row's cost
    for i, hh, j in T.grid(n, h, n):
        with T.sblock("expv"):
            vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
            e[vi, vh, vj] = T.exp(logit[vi, vh, vj] - lmax[vi, vh])
    for i, hh, j in T.grid(n, h, n):
        with T.sblock("lsum"):
            vi, vh, vj = T.axis.remap("SSR", [i, hh, j])
            with T.init():
                lsum[vi, vh] = T.float32(0)
            lsum[vi, vh] = lsum[vi, vh] + e[vi, vh, vj]
    for i, hh, j in T.grid(n, h, n):
        with T.sblock("prob"):
            vi, vh, vj = T.axis.remap("SSS", [i, hh, j])
            p[vi, vh, vj] = T.Cast("uint8", T.max(T.min(T.nearbyint(
                e[vi, vh, vj] / lsum[vi, vh] * T.float32(255)), T.float32(255)), T.float32(0)))
    # per (row, head, channel): a head's [hd] outputs against its n probabilities form one tile
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
            o[vi, vc] = T.Cast("float32", pacc[vi, vc // hd, vc % hd]) * (
                _scale(v_amax[vc]) / T.float32(255))


def int8_attention_q(n: int, h: int, hd: int, fmt: str, scale: float) -> tirx.PrimFunc:
    """Integer attention that projects Q itself, row by row, from the int8 LayerNorm output.

    ``xq[n,d] int8, xs[n]`` + Q weights, int8 ``k[n,d]`` with per-(token, head) absmax
    ``k_amax[n,h]``, int8 ``v[n,d]`` with per-channel absmax ``v_amax[d]`` -> ``o[n,d]`` f32.
    Same arithmetic as the qkv projection followed by ``int8_attention_qkv``; Q never exists
    beyond one row.
    """
    d = h * hd
    kb = get_format(fmt).row_bytes(d)

    @T.prim_func(s_tir=True)
    def func(xq: T.Buffer((n, d), "int8"), xs: T.Buffer((n,), "float32"),
             wq: T.Buffer((d, kb), "uint8"), aq: T.Buffer((d,), "float32"),
             bq: T.Buffer((d,), "float32"), k: T.Buffer((n, d), "int8"),
             k_amax: T.Buffer((n, h), "float32"), v: T.Buffer((n, d), "int8"),
             v_amax: T.Buffer((d,), "float32"), o: T.Buffer((n, d), "float32")):
        qacc = T.sblock_alloc_buffer((n, d), "int32")
        qf = T.sblock_alloc_buffer((n, d), "float32")
        qamax = T.sblock_alloc_buffer((n, h), "float32")
        qs = T.sblock_alloc_buffer((n, h), "float32")
        ks = T.sblock_alloc_buffer((n, h), "float32")
        qc = T.sblock_alloc_buffer((n, d), "int8")
        sacc = T.sblock_alloc_buffer((n, h, n), "int32")
        logit = T.sblock_alloc_buffer((n, h, n), "float32")
        lmax = T.sblock_alloc_buffer((n, h), "float32")
        e = T.sblock_alloc_buffer((n, h, n), "float32")
        lsum = T.sblock_alloc_buffer((n, h), "float32")
        p = T.sblock_alloc_buffer((n, h, n), "uint8")
        pacc = T.sblock_alloc_buffer((n, h, hd), "int32")
        _q_attention_rows(n, h, hd, d, fmt, scale, xq, xs, wq, aq, bq, k, k_amax, ks, v, v_amax,
                          qacc, qf, qamax, qs, qc, sacc, logit, lmax, e, lsum, p, pacc, o)

    return _tag(func, "int8_attention_q", n=n, h=h, hd=hd, fmt=fmt, scale=repr(float(scale)))


def int8_attention_block(n: int, h: int, hd: int, fmt: str, scale: float) -> tirx.PrimFunc:
    """``int8_attention_q`` + output projection + residual, updating ``x`` in place.

    ``x[n, d] += proj(quant(attention(...)))`` row by row: with ``call_tir_inplace`` neither the
    attention output nor a second residual buffer exist. Arguments: ``x``, then those of
    ``int8_attention_q`` (without ``o``), then the projection's packed weights, scales, bias.
    """
    d = h * hd
    kb = get_format(fmt).row_bytes(d)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((n, d), "float32"), xq: T.Buffer((n, d), "int8"),
             xs: T.Buffer((n,), "float32"), wq: T.Buffer((d, kb), "uint8"),
             aq: T.Buffer((d,), "float32"), bq: T.Buffer((d,), "float32"),
             k: T.Buffer((n, d), "int8"), k_amax: T.Buffer((n, h), "float32"),
             v: T.Buffer((n, d), "int8"), v_amax: T.Buffer((d,), "float32"),
             w: T.Buffer((d, kb), "uint8"), alpha: T.Buffer((d,), "float32"),
             bias: T.Buffer((d,), "float32")):
        qacc = T.sblock_alloc_buffer((n, d), "int32")
        qf = T.sblock_alloc_buffer((n, d), "float32")
        qamax = T.sblock_alloc_buffer((n, h), "float32")
        qs = T.sblock_alloc_buffer((n, h), "float32")
        ks = T.sblock_alloc_buffer((n, h), "float32")
        qc = T.sblock_alloc_buffer((n, d), "int8")
        sacc = T.sblock_alloc_buffer((n, h, n), "int32")
        logit = T.sblock_alloc_buffer((n, h, n), "float32")
        lmax = T.sblock_alloc_buffer((n, h), "float32")
        e = T.sblock_alloc_buffer((n, h, n), "float32")
        lsum = T.sblock_alloc_buffer((n, h), "float32")
        p = T.sblock_alloc_buffer((n, h, n), "uint8")
        pacc = T.sblock_alloc_buffer((n, h, hd), "int32")
        of = T.sblock_alloc_buffer((n, d), "float32")
        oamax = T.sblock_alloc_buffer((n,), "float32")
        os = T.sblock_alloc_buffer((n,), "float32")
        oq = T.sblock_alloc_buffer((n, d), "int8")
        acc = T.sblock_alloc_buffer((n, d), "int32")
        _q_attention_rows(n, h, hd, d, fmt, scale, xq, xs, wq, aq, bq, k, k_amax, ks, v, v_amax,
                          qacc, qf, qamax, qs, qc, sacc, logit, lmax, e, lsum, p, pacc, of)
        _absmax_quant(n, d, of, oq, os, oamax)
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


def patch_embed(c: int, gh: int, gw: int, p: int, d: int, fmt: str = "b3",
                embed_dtype: str = "float32") -> tirx.PrimFunc:
    """The whole token embedding of one image: per patch int8 quantization, ternary projection,
    bias, then ``[cls; tokens] + pos`` written straight into ``x[1 + gh*gw, d]``.

    Same values as quantize_patches -> ternary_matmul -> concat(cls) -> add(pos), with no
    [patches, c*p*p] or [patches, d] intermediate. ``embed_dtype`` ``"uint16"``: cls and pos
    are fp16 bit patterns (``schedules.fp16``), widened where they are read.
    """
    n, f = gh * gw, c * p * p
    kb = get_format(fmt).row_bytes(f)
    cls_row, project = patch_embed_blocks(n, d, f, fmt)

    @T.prim_func(s_tir=True)
    def func(img: T.Buffer((1, c, gh * p, gw * p), "float32"), w: T.Buffer((d, kb), "uint8"),
             alpha: T.Buffer((d,), "float32"), bias: T.Buffer((d,), "float32"),
             cls: T.Buffer((d,), embed_dtype), pos: T.Buffer((n + 1, d), embed_dtype),
             x: T.Buffer((n + 1, d), "float32")):
        amax = T.sblock_alloc_buffer((n,), "float32")
        s = T.sblock_alloc_buffer((n,), "float32")
        q = T.sblock_alloc_buffer((n, f), "int8")
        acc = T.sblock_alloc_buffer((n, d), "int32")
        cls_row(cls, pos, x)
        for t, r in T.grid(n, f):
            with T.sblock("patch_absmax"):
                vt, vr = T.axis.remap("SR", [t, r])
                with T.init():
                    amax[vt] = T.float32(0)
                amax[vt] = T.max(amax[vt], _absf(_patch_pixel(img, vt, vr, gw, p)))
        for t in range(n):
            with T.sblock("patch_scale"):
                vt = T.axis.remap("S", [t])
                s[vt] = _scale(amax[vt])
        for t, r in T.grid(n, f):
            with T.sblock("patch_quant"):
                vt, vr = T.axis.remap("SS", [t, r])
                q[vt, vr] = _q8(_patch_pixel(img, vt, vr, gw, p), amax[vt])
        project(q, s, w, alpha, bias, pos, acc, x)

    return _tag(func, "patch_embed", c=c, gh=gh, gw=gw, p=p, d=d, fmt=fmt, embed=embed_dtype)


def patch_embed_blocks(n: int, d: int, f: int, fmt: str):
    """The blocks every patch-embedding form shares, whatever its patch quantizer: the class-token
    row ``x[0] = cls + pos[0]``, and the projection of the int8 patch codes ``q[n, f]`` (scales
    ``s[n]``) with bias and position into ``x[1:]``. Fresh macros per call: block names stay
    unsuffixed (TVMScript numbers every later expansion of one macro object)."""

    @T.macro
    def cls_row(cls, pos, x):
        for j in range(d):
            with T.sblock("cls_row"):
                vj = T.axis.remap("S", [j])
                x[0, vj] = fp16.read(cls, vj) + fp16.read(pos, 0, vj)

    @T.macro
    def project(q, s, w, alpha, bias, pos, acc, x):
        for t, j, r in T.grid(n, d, f):
            with T.sblock("acc"):
                vt, vj, vr = T.axis.remap("SSR", [t, j, r])
                with T.init():
                    acc[vt, vj] = 0
                acc[vt, vj] = acc[vt, vj] + T.Cast("int32", q[vt, vr]) * _trit(w, vj, vr, fmt)
        for t, j in T.grid(n, d):
            with T.sblock("token"):
                vt, vj = T.axis.remap("SS", [t, j])
                x[vt + 1, vj] = T.Cast("float32", acc[vt, vj]) * (alpha[vj] * s[vt]) + bias[vj] + \
                    fp16.read(pos, vt + 1, vj)

    return cls_row, project


def _patch_pixel(img, t, r, gw, p):
    """Pixel ``r`` (in (c, kh, kw) order) of patch ``t`` (row-major over the patch grid)."""
    return img[0, r // (p * p), (t // gw) * p + (r // p) % p, (t % gw) * p + r % p]
