"""Ternary weight packing formats (SPEC §2), shared by the passes (packing) and the kernels (decoding).

One table describes each format; the Python packers, the TensorIR decode expressions and the C
micro-kernels (``runtime/kernels``) all follow it.

* ``b2``: 4 weights per byte, code ``w + 1`` in bits ``2*(i % 4)`` of byte ``i // 4``.
* ``b3``: 5 trits per byte, byte = sum_j (w_{5b+j} + 1) * 3**j ("1.6-bit").

Rows are packed independently along K; padding positions hold weight 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PackFormat:
    name: str
    per_byte: int      # weights per byte
    radix: int         # 4 (2-bit fields) or 3 (base-3 digits)
    bits_per_weight: float

    def row_bytes(self, k: int) -> int:
        return -(-k // self.per_byte)


FORMATS = {
    "b2": PackFormat("b2", 4, 4, 2.0),
    "b3": PackFormat("b3", 5, 3, 1.6),
}


def get_format(name: str) -> PackFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown packing format {name!r}; choose one of {sorted(FORMATS)}") from None


def pack(codes: np.ndarray, fmt: str) -> np.ndarray:
    """Pack ternary codes ``int[N, K]`` in {-1, 0, 1} into ``uint8[N, row_bytes(K)]``."""
    f = get_format(fmt)
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.isin(codes, (-1, 0, 1)).all():
        raise ValueError("pack expects a 2-D array of values in {-1, 0, +1}")
    n, k = codes.shape
    padded = np.ones((n, f.row_bytes(k) * f.per_byte), dtype=np.uint32)   # code 1 == weight 0
    padded[:, :k] = codes.astype(np.int64) + 1
    digits = padded.reshape(n, -1, f.per_byte)
    weights = f.radix ** np.arange(f.per_byte, dtype=np.uint32)
    return (digits * weights).sum(axis=-1).astype(np.uint8)


def unpack(packed: np.ndarray, k: int, fmt: str) -> np.ndarray:
    """Inverse of :func:`pack`: ``uint8[N, B] -> int8[N, k]``."""
    f = get_format(fmt)
    packed = np.asarray(packed, dtype=np.uint32)
    weights = f.radix ** np.arange(f.per_byte, dtype=np.uint32)
    digits = (packed[..., None] // weights) % f.radix
    return (digits.reshape(packed.shape[0], -1)[:, :k].astype(np.int8) - 1)
