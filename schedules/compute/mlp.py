"""TensorIR compute of the whole ViT MLP in one kernel (fc1 + GELU -> int8 -> fc2 + residual), so a
schedule can run it token by token and the ``[t, hidden]`` activations never exist.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from ..formats import get_format
from .kernel_base import _gelu, _tag, cached_builder, ternary_acc, without_params
from .quantize import _absmax_quant


@cached_builder
def ternary_mlp(t: int, d: int, hidden: int, fmt: str = "b3", inplace: bool = False
                ) -> tirx.PrimFunc:
    """The whole ViT MLP in one kernel: ``y = res + fc2(quant(gelu(fc1(q, s))))``.

    Numerically the chain ternary_matmul(gelu) -> quantize_act -> ternary_matmul(residual), but as
    one kernel a schedule can run it token by token, so the [t, hidden] activations never exist.
    ``inplace``: no ``y``; ``res`` is updated in place (for ``call_tir_inplace``).
    """
    acc1_block = ternary_acc("acc1", t, hidden, d, fmt)
    fc2 = fc2_blocks(t, d, hidden, fmt)

    @T.macro
    def body(q, s, w1, a1, b1, w2, a2, b2, res, y):
        acc1 = T.sblock_alloc_buffer((t, hidden), "int32")
        hf = T.sblock_alloc_buffer((t, hidden), "float32")
        amax = T.sblock_alloc_buffer((t,), "float32")
        s2 = T.sblock_alloc_buffer((t,), "float32")
        q2 = T.sblock_alloc_buffer((t, hidden), "int8")
        acc2 = T.sblock_alloc_buffer((t, d), "int32")
        acc1_block(q, w1, acc1)
        for i, j in T.grid(t, hidden):
            with T.sblock("hidden"):
                vi, vj = T.axis.remap("SS", [i, j])
                hf[vi, vj] = _gelu(T.Cast("float32", acc1[vi, vj]) * (a1[vj] * s[vi]) + b1[vj])
        _absmax_quant(t, hidden, hf, q2, s2, amax)
        fc2(q2, s2, w2, a2, b2, res, acc2, y)

    func = mlp_func(t, d, hidden, fmt, inplace, body)
    return _tag(func, "ternary_mlp", t=t, d=d, hidden=hidden, fmt=fmt, inplace=int(inplace))


def fc2_blocks(t: int, d: int, hidden: int, fmt: str):
    """A fresh macro ``fc2(q2, s2, w2, a2, b2, res, acc2, y)``: the MLP's second projection of
    the int8 hidden layer ``q2[t, hidden]`` (scales ``s2``) plus the residual, into ``y`` (blocks
    ``acc2``, ``out``); shared by every float MLP form."""
    acc2_block = ternary_acc("acc2", t, d, hidden, fmt)

    @T.macro
    def fc2(q2, s2, w2, a2, b2, res, acc2, y):
        acc2_block(q2, w2, acc2)
        for i, j in T.grid(t, d):
            with T.sblock("out"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = T.Cast("float32", acc2[vi, vj]) * (a2[vj] * s2[vi]) + b2[vj] + res[vi, vj]

    return fc2


def mlp_func(t: int, d: int, hidden: int, fmt: str, inplace: bool, body) -> tirx.PrimFunc:
    """The ``ternary_mlp`` PrimFunc around ``body(q, s, w1, a1, b1, w2, a2, b2, res, y)`` (a
    ``T.macro`` that allocates its own scratch): ``q[t,d] int8, s[t]``, fc1's packed weights,
    scales and bias, fc2's, ``res[t,d]`` and ``y[t,d]``; ``inplace``: no ``y``, ``res`` is
    updated in place (for ``call_tir_inplace``). Every MLP form shares this signature."""
    kb1, kb2 = get_format(fmt).row_bytes(d), get_format(fmt).row_bytes(hidden)

    @T.prim_func(s_tir=True)
    def func(q: T.Buffer((t, d), "int8"), s: T.Buffer((t,), "float32"),
             w1: T.Buffer((hidden, kb1), "uint8"), a1: T.Buffer((hidden,), "float32"),
             b1: T.Buffer((hidden,), "float32"), w2: T.Buffer((d, kb2), "uint8"),
             a2: T.Buffer((d,), "float32"), b2: T.Buffer((d,), "float32"),
             res: T.Buffer((t, d), "float32"), y: T.Buffer((t, d), "float32")):
        if inplace:
            body(q, s, w1, a1, b1, w2, a2, b2, res, res)
        else:
            body(q, s, w1, a1, b1, w2, a2, b2, res, y)

    return without_params(func, "y") if inplace else func
