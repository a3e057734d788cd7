"""TensorIR compute of the token embedding: per-patch int8 quantization, ternary projection, bias,
class token and position embedding written straight into the residual stream.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from ..formats import get_format
from . import fp16
from .kernel_base import _absf, _tag, _trit, cached_builder, max_block, without_params
from .quantize import _q8, _scale


@cached_builder
def patch_embed(c: int, gh: int, gw: int, p: int, d: int, fmt: str = "b3",
                embed_dtype: str = "float32", prefix: int = 1) -> tirx.PrimFunc:
    """The whole token embedding of one image: per patch int8 quantization, ternary projection,
    bias, then ``[cls; tokens] + pos`` written straight into ``x[prefix + gh*gw, d]``.

    Same values as quantize_patches -> ternary_matmul -> concat(cls) -> add(pos), with no
    [patches, c*p*p] or [patches, d] intermediate. ``prefix``: the learned tokens in front of the
    patches (1: a class token ``cls[d]``; more: ``cls[prefix, d]``, e.g. class and distillation
    token, or class and register tokens). ``embed_dtype`` ``"uint16"``: cls and pos are fp16 bit
    patterns (``schedules.compute.fp16``), widened where they are read.
    """
    return patch_embed_form(c, gh, gw, p, d, fmt, embed_dtype, prefix, _patch_quantizer)


def _patch_quantizer(n: int, f: int, gw: int, p: int):
    """The float patch quantizer of ``patch_embed_form``: each patch's absmax over its pixels,
    its scale, its int8 codes (scratch: ``amax``, then the scales ``s``)."""
    absmax = max_block("patch_absmax", n, f, "SR", T.float32(0),
                       lambda img, t, r: _absf(_patch_pixel(img, t, r, gw, p)))

    def scratch():
        amax = T.sblock_alloc_buffer((n,), "float32")
        return T.sblock_alloc_buffer((n,), "float32"), (amax,)

    @T.macro
    def quantize(img, s, rest, q):
        amax = rest[0]
        absmax(img, amax)
        for t in range(n):
            with T.sblock("patch_scale"):
                vt = T.axis.remap("S", [t])
                s[vt] = _scale(amax[vt])
        for t, r in T.grid(n, f):
            with T.sblock("patch_quant"):
                vt, vr = T.axis.remap("SS", [t, r])
                q[vt, vr] = _q8(_patch_pixel(img, vt, vr, gw, p), amax[vt])

    return scratch, quantize


def patch_embed_form(c: int, gh: int, gw: int, p: int, d: int, fmt: str, embed_dtype: str,
                     prefix: int, quantizer) -> tirx.PrimFunc:
    """The tagged patch-embedding PrimFunc of ``patch_embed`` around a patch quantizer (the float
    one here, the integer one in ``schedules.integer.kernels``): ``quantizer(n, f, gw, p)`` gives
    ``(scratch, quantize)``, where ``scratch()`` allocates the quantizer's buffers in the kernel
    being parsed (in its own order, before the codes) and returns ``(s, rest)``, the patch scales
    ``s[n]`` the projection reads and what else ``quantize`` needs, and the ``T.macro``
    ``quantize(img, s, rest, q)`` writes each patch's scale and int8 codes ``q[n, f]``.

    Parameters: the image ``[1, c, gh*p, gw*p]``, packed weights, scales, bias, the prefix tokens
    (``cls[d]`` for one, ``cls[prefix, d]`` for more, none for 0) and position embedding in
    ``embed_dtype``, the residual stream ``x[prefix + gh*gw, d]``."""
    if prefix < 0:
        raise ValueError(f"patch_embed: prefix must be >= 0, got {prefix}")
    n, f = gh * gw, c * p * p
    kb = get_format(fmt).row_bytes(f)
    cls_shape = (d,) if prefix == 1 else (max(prefix, 1), d)   # prefix 0: dropped below
    cls_row, project = patch_embed_blocks(n, d, f, fmt, prefix)
    scratch, quantize = quantizer(n, f, gw, p)

    @T.macro
    def body(img, w, alpha, bias, cls, pos, x):
        s, rest = scratch()
        q = T.sblock_alloc_buffer((n, f), "int8")
        acc = T.sblock_alloc_buffer((n, d), "int32")
        if prefix > 0:
            cls_row(cls, pos, x)
        quantize(img, s, rest, q)
        project(q, s, w, alpha, bias, pos, acc, x)

    @T.prim_func(s_tir=True)
    def func(img: T.Buffer((1, c, gh * p, gw * p), "float32"), w: T.Buffer((d, kb), "uint8"),
             alpha: T.Buffer((d,), "float32"), bias: T.Buffer((d,), "float32"),
             cls: T.Buffer(cls_shape, embed_dtype), pos: T.Buffer((n + prefix, d), embed_dtype),
             x: T.Buffer((n + prefix, d), "float32")):
        body(img, w, alpha, bias, cls, pos, x)

    if prefix == 0:
        func = without_params(func, "cls")
    # the prefix is a parameter only where it is not the single class token (names unchanged)
    more = {} if prefix == 1 else {"prefix": prefix}
    return _tag(func, "patch_embed", c=c, gh=gh, gw=gw, p=p, d=d, fmt=fmt, embed=embed_dtype,
                **more)


def patch_embed_blocks(n: int, d: int, f: int, fmt: str, prefix: int = 1):
    """The blocks every patch-embedding form shares, whatever its patch quantizer: the prefix
    rows ``x[:prefix] = cls + pos[:prefix]``, and the projection of the int8 patch codes
    ``q[n, f]`` (scales ``s[n]``) with bias and position into ``x[prefix:]``. Fresh macros per
    call: block names stay unsuffixed (TVMScript numbers every later expansion of one macro
    object)."""

    if prefix == 1:
        @T.macro
        def cls_row(cls, pos, x):
            for j in range(d):
                with T.sblock("cls_row"):
                    vj = T.axis.remap("S", [j])
                    x[0, vj] = fp16.read(cls, vj) + fp16.read(pos, 0, vj)
    else:
        @T.macro
        def cls_row(cls, pos, x):
            for r, j in T.grid(prefix, d):
                with T.sblock("cls_row"):
                    vr, vj = T.axis.remap("SS", [r, j])
                    x[vr, vj] = fp16.read(cls, vr, vj) + fp16.read(pos, vr, vj)

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
                x[vt + prefix, vj] = T.Cast("float32", acc[vt, vj]) * (alpha[vj] * s[vt]) + \
                    bias[vj] + fp16.read(pos, vt + prefix, vj)

    return cls_row, project


def _patch_pixel(img, t, r, gw, p):
    """Pixel ``r`` (in (c, kh, kw) order) of patch ``t`` (row-major over the patch grid)."""
    return img[0, r // (p * p), (t // gw) * p + (r // p) % p, (t % gw) * p + r % p]
