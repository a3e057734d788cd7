"""TensorIR compute of the ternary kernels whose input stays float (no int8 quantizer in front).

* ``ternary_matmul_float``: ternary weights applied to float activations (a BitNet-style patch
  embedding fed with the image): every weight is -1, 0 or +1, so the sum only adds and subtracts
  inputs; one scale per channel (or per tensor) and the bias come after.
* ``ternary_layernorm_float``: a TernaryLayerNorm whose output is not quantized next (``norm_pre``
  feeding the residual stream, q/k norms feeding attention, the final norm of a distilled model
  read by two heads).

Both keep fp32 arithmetic; weights are packed row by row (``b3``/``b2``).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .formats import get_format
from .kernels import _layernorm_rows, _tag, _trit

ROW_FORMATS = ("b3", "b2")


def row_format(fmt: str) -> str:
    """The row-packed format used for ``fmt`` (tiled int8 layouts have no float kernel)."""
    return fmt if get_format(fmt).tile is None else "b2"


def _add_or_subtract(v, trit):
    """``+v``, ``-v`` or 0 as the trit says (no multiplication)."""
    return T.Select(trit > 0, v, T.Select(trit < 0, -v, T.float32(0)))


def ternary_matmul_float(t: int, k: int, n: int, fmt: str = "b3") -> tirx.PrimFunc:
    """``y[t,n] = alpha[n] * sum_k trit(w)[n,k] * x[t,k] + bias[n]`` with float ``x``.

    Inputs: ``x[t,k]`` float32, packed ternary ``w[n, row_bytes(k)]`` (row format), ``alpha[n]``,
    ``bias[n]``. The trit selects ``+x``, ``-x`` or nothing: no multiplications in the sum.
    """
    if fmt not in ROW_FORMATS:
        raise ValueError(f"ternary_matmul_float needs a row format {ROW_FORMATS}, got {fmt!r}")
    kb = get_format(fmt).row_bytes(k)

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, k), "float32"), w: T.Buffer((n, kb), "uint8"),
             alpha: T.Buffer((n,), "float32"), bias: T.Buffer((n,), "float32"),
             y: T.Buffer((t, n), "float32")):
        acc = T.sblock_alloc_buffer((t, n), "float32")
        for i, j, r in T.grid(t, n, k):
            with T.sblock("acc"):
                vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    acc[vi, vj] = T.float32(0)
                acc[vi, vj] = acc[vi, vj] + _add_or_subtract(x[vi, vr], _trit(w, vj, vr, fmt))
        for i, j in T.grid(t, n):
            with T.sblock("epilogue"):
                vi, vj = T.axis.remap("SS", [i, j])
                y[vi, vj] = acc[vi, vj] * alpha[vj] + bias[vj]

    return _tag(func, "ternary_matmul_float", t=t, k=k, n=n, fmt=fmt)


def ternary_layernorm_float(t: int, d: int, eps: float) -> tirx.PrimFunc:
    """``y = (x - mean) / sqrt(var + eps) * (ab[0] * g) + ab[1] * b`` per row, float output.

    Same arithmetic as ``kernels.ternary_layernorm_quant`` without the quantizer.
    """

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((t, d), "float32"), g: T.Buffer((d,), "int8"), b: T.Buffer((d,), "int8"),
             ab: T.Buffer((2,), "float32"), y: T.Buffer((t, d), "float32")):
        total = T.sblock_alloc_buffer((t,), "float32")
        mean = T.sblock_alloc_buffer((t,), "float32")
        sq = T.sblock_alloc_buffer((t,), "float32")
        std = T.sblock_alloc_buffer((t,), "float32")
        _layernorm_rows(t, d, eps, x, g, b, ab, total, mean, sq, std, y)

    return _tag(func, "ternary_layernorm_float", t=t, d=d, eps=repr(float(eps)))
