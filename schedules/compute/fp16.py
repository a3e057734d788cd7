"""fp16 storage of float side tensors (position embeddings, tokens, scales, biases).

The C targets have no half-precision type (``_Float16`` is not available for Xtensa lx106), so
fp16 values are stored as their IEEE bit patterns in ``uint16`` buffers and widened to float32
by integer operations where a kernel reads them: exact for every finite fp16 value.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .kernel_base import cached_builder

F16_BITS = "uint16"   # buffer dtype of an fp16-stored tensor


def _u32(v: int):
    return tirx.const(v, "uint32")


def f16_to_f32(h):
    """float32 value of the fp16 bit pattern ``h`` (a uint16 expression); finite values only."""
    b = tirx.Cast("uint32", h)
    sign = (b & _u32(0x8000)) << _u32(16)
    e = (b >> _u32(10)) & _u32(0x1F)
    m = b & _u32(0x3FF)
    normal = tirx.reinterpret("float32", sign | ((e + _u32(112)) << _u32(23)) | (m << _u32(13)))
    tiny = tirx.Cast("float32", m) * tirx.const(2.0 ** -24, "float32")      # zero and subnormals
    return tirx.Select(e == _u32(0), tirx.Select(sign == _u32(0), tiny, -tiny), normal)


def read(buf, *idx):
    """``buf[idx]`` as float32 whether ``buf`` holds float32 or fp16 bits."""
    v = buf[idx]
    return f16_to_f32(v) if buf.dtype == F16_BITS else v


def fp16_exact(arr: np.ndarray) -> bool:
    """True when every value of ``arr`` is a finite fp16 value (storing it as fp16 is lossless)."""
    a = np.asarray(arr)
    if a.dtype != np.float32:
        return False
    with np.errstate(over="ignore"):
        h = a.astype(np.float16)
    return bool(np.isfinite(h).all() and np.array_equal(h.astype(np.float32), a))


def to_f16_bits(arr: np.ndarray) -> np.ndarray:
    """``arr`` rounded to fp16 (nearest even), as uint16 bit patterns.

    Raises:
        ValueError: a value overflows fp16.
    """
    with np.errstate(over="ignore"):
        h = np.ascontiguousarray(np.asarray(arr, np.float32).astype(np.float16))
    if not np.isfinite(h).all():
        raise ValueError("value out of the fp16 range")
    return h.view(np.uint16)


@cached_builder
def decode_f16(n: int) -> tirx.PrimFunc:
    """``y[i] = float32(h[i])`` for ``n`` fp16 bit patterns (NumPy: ``h.view(float16)``)."""

    @T.prim_func(s_tir=True)
    def func(h: T.Buffer((n,), "uint16"), y: T.Buffer((n,), "float32")):
        for i in range(n):
            with T.sblock("decode"):
                vi = T.axis.remap("S", [i])
                y[vi] = f16_to_f32(h[vi])

    return func
