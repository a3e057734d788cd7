"""NumPy packers for the ternary weight formats of SPEC §2 and the matmul reference.

The C micro-kernels (runtime/kernels/) read exactly these layouts; tests compare
them bit for bit against :func:`ternary_matmul_ref`.  Depends on NumPy only.

* ``b2``: 4 weights per byte, code ``w + 1`` in bits ``2*(i % 4)`` of byte ``i // 4``.
* ``b3``: 5 weights per byte, byte = sum_t (w_{5b+t} + 1) * 3**t.

Each output row is packed on its own along K, padded with weight 0.
"""

from __future__ import annotations

import numpy as np

# name -> (weights per byte, radix of one weight's code inside the byte).
# The compiler (schedules/formats.py) keeps its own copy of this table, since
# passes do not import runtime/; tests check the two agree.
FORMATS = {"b2": (4, 4), "b3": (5, 3)}


def row_bytes(k: int, fmt: str) -> int:
    """Bytes per packed row of ``k`` weights."""
    per_byte, _ = _format(fmt)
    return -(-k // per_byte)


def _format(fmt: str) -> tuple[int, int]:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown packing format {fmt!r}; expected one of {sorted(FORMATS)}") from None


def pack(wt: np.ndarray, fmt: str) -> np.ndarray:
    """Packs ternary weights ``int[N, K]`` in {-1, 0, 1} into ``uint8[N, row_bytes(K)]``.

    Raises ValueError for other values, a non-2-D array or an unknown format.
    """
    per_byte, radix = _format(fmt)
    wt = np.asarray(wt)
    if wt.ndim != 2 or not np.isin(wt, (-1, 0, 1)).all():
        raise ValueError("pack expects a 2-D array with values in {-1, 0, 1}")
    n, k = wt.shape
    codes = np.ones((n, row_bytes(k, fmt) * per_byte), dtype=np.uint32)  # code 1 = weight 0
    codes[:, :k] = wt.astype(np.int64) + 1
    place = radix ** np.arange(per_byte, dtype=np.uint32)
    return (codes.reshape(n, -1, per_byte) * place).sum(axis=-1).astype(np.uint8)


def unpack(packed: np.ndarray, k: int, fmt: str) -> np.ndarray:
    """Inverse of :func:`pack`: ``uint8[N, B] -> int8[N, k]`` (B >= row_bytes(k))."""
    per_byte, radix = _format(fmt)
    packed = np.asarray(packed, dtype=np.uint32)
    place = radix ** np.arange(per_byte, dtype=np.uint32)
    codes = (packed[..., None] // place) % radix
    return codes.reshape(packed.shape[0], -1)[:, :k].astype(np.int8) - 1


def pack_b2(wt: np.ndarray) -> np.ndarray:
    """``int8[N, K] -> uint8[N, ceil(K/4)]`` (see :func:`pack`)."""
    return pack(wt, "b2")


def pack_b3(wt: np.ndarray) -> np.ndarray:
    """``int8[N, K] -> uint8[N, ceil(K/5)]`` (see :func:`pack`)."""
    return pack(wt, "b3")


def unpack_b2(packed: np.ndarray, k: int) -> np.ndarray:
    return unpack(packed, k, "b2")


def unpack_b3(packed: np.ndarray, k: int) -> np.ndarray:
    return unpack(packed, k, "b3")


def ternary_matmul_ref(x: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """Exact ``int32[T, N] = x int8[T, K] @ wt int8[N, K]^T`` (what the C kernels accumulate)."""
    return (np.asarray(x, dtype=np.int64) @ np.asarray(wt, dtype=np.int64).T).astype(np.int32)
