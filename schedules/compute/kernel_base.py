"""What every kernel builder shares: the kernel tag, the decoded ternary weight, the ternary
accumulation, a projection's float value, the two-axis max reduction (every quantizer's absmax),
the epilogues.

The op-family modules of ``schedules.compute``, the target forms (``schedules.x86.forms``,
``schedules.esp32s3.stationary``) and ``schedules.integer`` all build on it.
"""

from __future__ import annotations

import functools

import tvm
from tvm import tirx
from tvm.script import tirx as T

from ..formats import get_format

ACT_EPS = 1e-5
EPILOGUES = ("none", "gelu", "residual")
# A kernel's attribute: how many times one call reads its weights (constants) from memory, where
# it is not once (the AOT executor's flash bound counts them: runtime.program.KernelCall)
WEIGHT_READS_ATTR = "fter.weight_reads"


def cached_builder(builder):
    """Memoize a kernel builder, handing out a deep copy of the kernel each time.

    A builder is a pure function of its (hashable) specialization, and parsing its TVMScript
    costs ~0.1 s while a 12-block model asks for each shape 12 times. The copy (a JSON round
    trip, about 4x cheaper than parsing) is needed: TVM's schedule primitives can rewrite the
    statements of a PrimFunc in place, which corrupted a shared cached kernel for the next
    compile when this was first tried. Unhashable arguments bypass the cache."""
    cached = functools.lru_cache(maxsize=None)(
        lambda *args, **kwargs: tvm.ir.save_json(builder(*args, **kwargs)))

    @functools.wraps(builder)
    def build(*args, **kwargs):
        try:
            hash((args, tuple(kwargs.items())))
        except TypeError:
            return builder(*args, **kwargs)
        return tvm.ir.load_json(cached(*args, **kwargs))

    build.cache_info = cached.cache_info
    return build


def _tag(func: tirx.PrimFunc, kind: str, **params) -> tirx.PrimFunc:
    # op_pattern 8 (opaque): FuseOps must not merge our scheduled kernels into neighbours
    return func.with_attr({"fter.kind": kind, "op_pattern": 8,
                           "fter.params": {k: str(v) for k, v in params.items()}})


def without_params(func: tirx.PrimFunc, *names: str) -> tirx.PrimFunc:
    """``func`` without the parameters ``names``, which its body must not use.

    Kernel variants that differ only in their signature (with or without a residual input, in
    place or with an output) are written once with every parameter, and each variant drops what it
    does not take -- one signature in the source, not one per variant.
    """
    params = [p for p in func.params if p.name not in names]
    if len(params) != len(func.params) - len(names):
        raise ValueError(f"{func.params} has no parameter among {names}")
    return tirx.PrimFunc(params, func.body, func.ret_type, func.attrs)


def kernel_name(kind: str, **params) -> str:
    """Deterministic C-safe symbol for a kernel specialization, e.g. ``ternary_matmul_t17_k64_n16_b3``."""
    parts = [kind] + [f"{k}{v}" if isinstance(v, int) else str(v) for k, v in params.items()]
    return "_".join(parts)


def _trit(w, n, k, fmt):
    """Decoded weight in {-1,0,1} (int32) of packed byte matrix ``w`` at row n, column k."""
    f = get_format(fmt)
    byte = T.Cast("int32", w[n, k // f.per_byte])
    j = k % f.per_byte
    if fmt == "b2":
        return T.bitwise_and(T.shift_right(byte, j * 2), 3) - 1
    pow3 = T.Select(j == 0, 1, T.Select(j == 1, 3, T.Select(j == 2, 9, T.Select(j == 3, 27, 81))))
    return T.truncmod(T.truncdiv(byte, pow3), 3) - 1


def ternary_acc(name: str, rows: int, n: int, k: int, fmt: str):
    """A fresh ``T.macro`` ``(x, w, acc)``: the block ``name`` accumulating the ternary matmul
    ``acc[i, j] += int32(x[i, r]) * trit(w)[j, r]`` over ``rows x n x k`` (the inner loop of every
    ternary projection). Fresh per call: each block keeps its name (TVMScript numbers the later
    expansions of one macro object)."""

    @T.macro
    def block(x, w, acc):
        for i, j, r in T.grid(rows, n, k):
            with T.sblock(name):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = 0
                acc[vi, vj] = acc[vi, vj] + T.Cast("int32", x[vi, vr]) * _trit(w, vj, vr, fmt)

    return block


def max_block(name: str, rows: int, cols: int, kinds: str, zero, term):
    """A fresh ``T.macro`` ``(src, out)``: the block ``name`` over ``rows x cols`` folding
    ``term(src, i, j)`` into ``out`` with ``max`` from ``zero``, along the axis ``kinds`` marks
    ``R``: ``"SR"`` keeps the first (``out[i]``, e.g. a token's absmax), ``"RS"`` the second
    (``out[j]``, a channel's over the tokens). ``src``: what ``term`` reads, one buffer or a tuple
    of them. Every two-axis absmax of a quantizer, float or integer, is one of these (``term``
    takes the absolute value). Fresh per call, so the block keeps its name."""
    if kinds not in ("SR", "RS"):
        raise ValueError(f"max_block reduces one of two axes ('SR' or 'RS'), got {kinds!r}")

    def kept(i, j):
        return i if kinds == "SR" else j

    @T.macro
    def block(src, out):
        for i, j in T.grid(rows, cols):
            with T.sblock(name):
                vi, vj = T.axis.remap(kinds, [i, j])
                with T.init():
                    out[kept(vi, vj)] = zero
                out[kept(vi, vj)] = T.max(out[kept(vi, vj)], term(src, vi, vj))

    return block


def scaled(acc, alpha, s, bias, i, j):
    """The float value of a projection's int32 accumulator ``acc[i, j]``: times its channel's and
    token's scales, plus the channel's bias (SPEC §1 epilogue before any activation)."""
    return T.Cast("float32", acc[i, j]) * (alpha[j] * s[i]) + bias[j]


def _absf(v):
    # TVM's C codegen cannot emit fabs ("Unresolved call"); max(v, -v) is exact and portable
    return T.max(v, -v)


def _gelu(v):
    return v * T.float32(0.5) * (T.float32(1.0) + T.erf(v * T.float32(0.7071067811865476)))


def _epilogue(v, res, i, j, epilogue):
    if epilogue == "gelu":
        return _gelu(v)
    if epilogue == "residual":
        return v + res[i, j]
    return v
