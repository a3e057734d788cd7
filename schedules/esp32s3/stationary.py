"""Weight-stationary forms of the row-streamed low-memory kernels (same signature, same values).

The low-memory kernels of ``schedules.compute`` (``ternary_mlp``, ``int8_attention_block``) are
written so a schedule can stream them token by token: every weight is decoded once per token.
A SIMD target whose matmul micro-kernel decodes a weight group once and runs all tokens against it
(the ESP32-S3's PIE tile, ``schedules.esp32s3.pie_intrin``) wants the opposite order: weight blocks
outermost, all tokens inside. These builders state the same computation with that order in mind:

* ``ternary_mlp``: fc1 runs twice over all tokens -- the first pass only finds each token's
  absmax of GELU(fc1), the second quantizes with it -- so the hidden layer exists as int8
  ``[t, hidden]`` and never as float ``[t, hidden]``; then fc2 over all tokens, residual in place.
* ``int8_attention_block``: Q projected for all tokens and quantized per (token, head) as K is;
  attention row by row writing each output row's int8 codes and scale; the output projection over
  all tokens, residual in place.

A target's schedule swaps a kernel's PrimFunc for its stationary form before scheduling
(:func:`stationary_form`); results are bit-identical (same float operations per element).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from ..compute.kernel_base import _absf, _gelu, _tag, max_block, scaled, ternary_acc
from ..compute.mlp import fc2_blocks, mlp_func
from ..compute.quantize import _q8s, _scale


def ternary_mlp(t: int, d: int, hidden: int, fmt: str = "b3", inplace: bool = False
                ) -> tirx.PrimFunc:
    """``compute.ternary_mlp`` with fc1 computed twice (absmax pass, quantizing pass)."""
    acc1_block = ternary_acc("acc1", t, hidden, d, fmt)
    acc1b_block = ternary_acc("acc1b", t, hidden, d, fmt)
    fc2 = fc2_blocks(t, d, hidden, fmt)
    # each token's absmax of GELU(fc1): src is (acc1, a1, s, b1)
    hidden_absmax = max_block("hidden_absmax", t, hidden, "SR", T.float32(0),
                              lambda v, i, j: _absf(_gelu(scaled(*v, i, j))))

    @T.macro
    def body(q, s, w1, a1, b1, w2, a2, b2, res, y):
        acc1 = T.sblock_alloc_buffer((t, hidden), "int32")
        amax = T.sblock_alloc_buffer((t,), "float32")
        s2 = T.sblock_alloc_buffer((t,), "float32")
        acc1b = T.sblock_alloc_buffer((t, hidden), "int32")
        q2 = T.sblock_alloc_buffer((t, hidden), "int8")
        acc2 = T.sblock_alloc_buffer((t, d), "int32")
        acc1_block(q, w1, acc1)
        hidden_absmax((acc1, a1, s, b1), amax)
        for i in range(t):
            with T.sblock("hidden_scale"):
                vi = T.axis.remap("S", [i])
                s2[vi] = _scale(amax[vi])
        acc1b_block(q, w1, acc1b)
        for i, j in T.grid(t, hidden):
            with T.sblock("hidden_quant"):
                vi, vj = T.axis.remap("SS", [i, j])
                q2[vi, vj] = _q8s(_gelu(scaled(acc1b, a1, s, b1, vi, vj)), s2[vi])
        fc2(q2, s2, w2, a2, b2, res, acc2, y)

    func = mlp_func(t, d, hidden, fmt, inplace, body)
    return _tag(func, "ternary_mlp", t=t, d=d, hidden=hidden, fmt=fmt, inplace=int(inplace))


STATIONARY = {"ternary_mlp": lambda p: ternary_mlp(int(p["t"]), int(p["d"]), int(p["hidden"]),
                                                   p["fmt"], bool(int(p["inplace"])))}


def stationary_form(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """``func`` rebuilt in its weight-stationary form (kernel attributes kept), or ``func`` itself
    when its kind has none."""
    kind = str(func.attrs["fter.kind"])
    if kind not in STATIONARY:
        return func
    params = {k: str(v) for k, v in func.attrs["fter.params"].items()}
    new = STATIONARY[kind](params)
    return new.with_attr({k: v for k, v in func.attrs.items()})
