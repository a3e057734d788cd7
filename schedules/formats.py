"""Ternary weight packing formats (SPEC §2), shared by the passes (packing) and the kernels (decoding).

One table describes each format; the Python packers, the TensorIR decode expressions and the C
micro-kernels (``runtime/kernels``) all follow it.

* ``b2``: 4 weights per byte, code ``w + 1`` in bits ``2*(i % 4)`` of byte ``i // 4``.
* ``b3``: 5 trits per byte, byte = sum_j (w_{5b+j} + 1) * 3**j ("1.6-bit").
* ``v16x4`` (x86): one byte per weight, code ``w + 1``, in tiles ``[ceil(N/16), ceil(K/4), 16, 4]``
  -- the operand shape of one AVX-512 VNNI ``vpdpbusd`` (16 channels x 4 k); unpacked at compile
  time so the inner loop does no decoding (8 bits per weight: speed, not size).

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
    tile: tuple[int, int] | None = None   # (channels, k) of a tiled layout; None: [N, row_bytes]

    def row_bytes(self, k: int) -> int:
        return -(-k // self.per_byte)


FORMATS = {
    "b2": PackFormat("b2", 4, 4, 2.0),
    "b3": PackFormat("b3", 5, 3, 1.6),
    # tiled: pack/unpack branch on ``tile``; per_byte/radix describe no digit packing there
    "v16x4": PackFormat("v16x4", 1, 4, 8.0, tile=(16, 4)),
}


def get_format(name: str) -> PackFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown packing format {name!r}; choose one of {sorted(FORMATS)}") from None


def pack(codes: np.ndarray, fmt: str) -> np.ndarray:
    """Pack ternary codes ``int[N, K]`` in {-1, 0, 1} into ``uint8[N, row_bytes(K)]`` (tiled
    formats: ``uint8[ceil(N/tn), ceil(K/tk), tn, tk]``)."""
    f = get_format(fmt)
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.isin(codes, (-1, 0, 1)).all():
        raise ValueError("pack expects a 2-D array of values in {-1, 0, +1}")
    n, k = codes.shape
    if f.tile is not None:
        return _pack_tiled(codes, f.tile)
    padded = np.ones((n, f.row_bytes(k) * f.per_byte), dtype=np.uint32)   # code 1 == weight 0
    padded[:, :k] = codes.astype(np.int64) + 1
    digits = padded.reshape(n, -1, f.per_byte)
    weights = f.radix ** np.arange(f.per_byte, dtype=np.uint32)
    return (digits * weights).sum(axis=-1).astype(np.uint8)


def unpack(packed: np.ndarray, k: int, fmt: str, n: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack`: ``uint8[N, B] -> int8[N, k]`` (tiled formats: ``n`` rows, default
    all padded rows)."""
    f = get_format(fmt)
    if f.tile is not None:
        return _unpack_tiled(packed, k, n)
    packed = np.asarray(packed, dtype=np.uint32)
    weights = f.radix ** np.arange(f.per_byte, dtype=np.uint32)
    digits = (packed[..., None] // weights) % f.radix
    return (digits.reshape(packed.shape[0], -1)[:, :k].astype(np.int8) - 1)


def _pack_tiled(codes: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    tn, tk = tile
    n, k = codes.shape
    nt, kt = -(-n // tn), -(-k // tk)
    full = np.ones((nt * tn, kt * tk), dtype=np.uint8)            # code 1 == weight 0
    full[:n, :k] = codes.astype(np.int64) + 1
    return np.ascontiguousarray(full.reshape(nt, tn, kt, tk).transpose(0, 2, 1, 3))


def _unpack_tiled(packed: np.ndarray, k: int, n: int | None) -> np.ndarray:
    nt, kt, tn, tk = packed.shape
    full = np.asarray(packed).transpose(0, 2, 1, 3).reshape(nt * tn, kt * tk)
    return full[:n, :k].astype(np.int8) - 1
