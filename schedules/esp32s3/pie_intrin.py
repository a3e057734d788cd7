"""Tensor intrinsics of the ESP32-S3 PIE micro-kernels (runtime/kernels/*_pie.c).

Each intrinsic is a ``desc`` (the scalar meaning) and an ``impl`` calling one C micro-kernel; the C
side runs the LX7's PIE SIMD instructions on the chip and their exact C emulation on the host and
the lx106 (runtime/kernels/pie/fter_pie.h), bit-identical to the portable reference.

* ``fter_tmm_tile_t{T}_k{K}_n{NB}_{fmt}`` -- weight-stationary ternary matmul tile:
  ``acc[i, j] += sum_r q[i, r] * trit(w[j, r])`` for ``T`` tokens and ``NB`` channels. The kernel
  decodes each group of 16 packed weight rows once into int8 columns and runs every token against
  them with ``EE.VSMULAS.S8.QACC`` (16 channels per instruction), so the decode is paid once per
  call, not once per token.
* ``fter_qk_row_n{N}_d{HD}`` -- one query row against the ``N`` int8 keys of one head
  (``EE.VMULAS.S8.ACCX``, the query resident in Q registers).
* ``fter_pv_row_n{N}_d{HD}`` -- uint8 probabilities of one row times the head's int8 ``V``
  (``EE.VSMULAS.S8.QACC`` over 16 channels; probabilities above 127 and long rows are handled so
  that no 20-bit lane can overflow).
* ``fter_pv_row_g16_n{N}_d{HD}`` -- the same from ``V`` in groups of 16 channels
  (``[hd / 16, N, 16]``, each group's rows 16 bytes apart: every row is multiplied with the fused
  load of the next), which ``fter_v_groups16_n{N}_c{C}`` copies ``V`` into once per call.

Impl buffers carry symbolic row strides: the tiles are sub-regions (one head's columns of a
[n, d] matrix, a token block of a [t, n] accumulator) and the strides go to the C call.
"""

from __future__ import annotations

import threading

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from ..formats import get_format
from ..compute.kernel_base import _trit

_LOCK = threading.Lock()


def _register(name: str, make) -> str:
    with _LOCK:   # MetaSchedule postprocessors tensorize on several threads
        if TensorIntrin.get(name, allow_missing=True) is None:
            TensorIntrin.register(name, *make())
    return name


def tile_intrin(t: int, k: int, nb: int, fmt: str) -> str:
    """Register (once) and return the weight-stationary tile intrinsic for [t, nb] over k."""
    kb = get_format(fmt).row_bytes(k)

    def make():
        @T.prim_func(s_tir=True)
        def desc(q: T.Buffer((t, k), "int8", offset_factor=1),
                 w: T.Buffer((nb, kb), "uint8", offset_factor=1),
                 acc: T.Buffer((t, nb), "int32", offset_factor=1)):
            with T.sblock("root"):
                T.reads(acc[0:t, 0:nb], q[0:t, 0:k], w[0:nb, 0:kb])
                T.writes(acc[0:t, 0:nb])
                for i, j, r in T.grid(t, nb, k):
                    with T.sblock("update"):
                        vi, vj, vr = T.axis.remap("SSR", [i, j, r])
                        acc[vi, vj] = acc[vi, vj] + T.Cast("int32", q[vi, vr]) * _trit(w, vj, vr, fmt)

        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle):
            q = T.match_buffer(a, (t, k), "int8", offset_factor=1, strides=[T.int32(), 1])
            w = T.match_buffer(b, (nb, kb), "uint8", offset_factor=1, strides=[T.int32(), 1])
            acc = T.match_buffer(c, (t, nb), "int32", offset_factor=1, strides=[T.int32(), 1])
            with T.sblock("root"):
                T.reads(acc[0:t, 0:nb], q[0:t, 0:k], w[0:nb, 0:kb])
                T.writes(acc[0:t, 0:nb])
                T.evaluate(T.call_extern("void", f"fter_tmm_tile_{fmt}", T.address_of(acc[0, 0]),
                                         T.address_of(q[0, 0]), T.address_of(w[0, 0]), k, nb,
                                         w.strides[0], t, q.strides[0], acc.strides[0]))

        return desc, impl

    return _register(f"fter_tmm_tile_t{t}_k{k}_n{nb}_{fmt}", make)


def _shape(rank: int, *dims):
    """``dims`` with leading unit dimensions up to ``rank``."""
    return (1,) * (rank - len(dims)) + tuple(dims)


def _strides(rank: int):
    return [T.int32() for _ in range(rank - 1)] + [1]


def qk_row_intrin(n: int, hd: int, rank: int = 2) -> str:
    """``s[j] += sum_r q[r] * k[j, r]`` for one query row and one head's keys. ``rank`` 2: q and
    k are [tokens, d] matrices (one head's columns); 3: [heads, tokens, hd] scratch (scores are
    always a rank-3 row)."""
    qs, ks, ss = _shape(rank, 1, hd), _shape(rank, n, hd), (1, 1, n)
    lead = (0,) * (rank - 2)

    def make():
        @T.prim_func(s_tir=True)
        def desc(q: T.Buffer(qs, "int8", offset_factor=1), k: T.Buffer(ks, "int8", offset_factor=1),
                 s: T.Buffer(ss, "int32", offset_factor=1)):
            with T.sblock("root"):
                T.reads(s[0, 0, 0:n], q[(*lead, 0, slice(0, hd))], k[(*lead, slice(0, n), slice(0, hd))])
                T.writes(s[0, 0, 0:n])
                for j, r in T.grid(n, hd):
                    with T.sblock("update"):
                        vj, vr = T.axis.remap("SR", [j, r])
                        s[0, 0, vj] = s[0, 0, vj] + T.Cast("int32", q[(*lead, 0, vr)]) * T.Cast(
                            "int32", k[(*lead, vj, vr)])

        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle):
            q = T.match_buffer(a, qs, "int8", offset_factor=1, strides=_strides(rank))
            k = T.match_buffer(b, ks, "int8", offset_factor=1, strides=_strides(rank))
            s = T.match_buffer(c, ss, "int32", offset_factor=1, strides=_strides(3))
            with T.sblock("root"):
                T.reads(s[0, 0, 0:n], q[(*lead, 0, slice(0, hd))], k[(*lead, slice(0, n), slice(0, hd))])
                T.writes(s[0, 0, 0:n])
                T.evaluate(T.call_extern("void", "fter_qk_row", T.address_of(s[0, 0, 0]),
                                         T.address_of(q[(*lead, 0, 0)]), T.address_of(k[(*lead, 0, 0)]),
                                         hd, n, k.strides[rank - 2]))

        return desc, impl

    return _register(f"fter_qk_row_n{n}_d{hd}_r{rank}", make)


def pv_row_intrin(n: int, hd: int, rank: int = 2) -> str:
    """``o[c] += sum_j p[j] * v[j, c]`` for one row's uint8 probabilities of one head; ``rank``
    of ``v`` as in :func:`qk_row_intrin` (probabilities and outputs are rank-3 rows)."""
    vs = _shape(rank, n, hd)
    lead = (0,) * (rank - 2)

    def make():
        @T.prim_func(s_tir=True)
        def desc(p: T.Buffer((1, 1, n), "uint8", offset_factor=1),
                 v: T.Buffer(vs, "int8", offset_factor=1),
                 o: T.Buffer((1, 1, hd), "int32", offset_factor=1)):
            with T.sblock("root"):
                T.reads(o[0, 0, 0:hd], p[0, 0, 0:n], v[(*lead, slice(0, n), slice(0, hd))])
                T.writes(o[0, 0, 0:hd])
                for c, j in T.grid(hd, n):
                    with T.sblock("update"):
                        vc, vj = T.axis.remap("SR", [c, j])
                        o[0, 0, vc] = o[0, 0, vc] + T.Cast("int32", p[0, 0, vj]) * T.Cast(
                            "int32", v[(*lead, vj, vc)])

        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle):
            p = T.match_buffer(a, (1, 1, n), "uint8", offset_factor=1, strides=_strides(3))
            v = T.match_buffer(b, vs, "int8", offset_factor=1, strides=_strides(rank))
            o = T.match_buffer(c, (1, 1, hd), "int32", offset_factor=1, strides=_strides(3))
            with T.sblock("root"):
                T.reads(o[0, 0, 0:hd], p[0, 0, 0:n], v[(*lead, slice(0, n), slice(0, hd))])
                T.writes(o[0, 0, 0:hd])
                T.evaluate(T.call_extern("void", "fter_pv_row", T.address_of(o[0, 0, 0]),
                                         T.address_of(p[0, 0, 0]), T.address_of(v[(*lead, 0, 0)]),
                                         n, hd, v.strides[rank - 2]))

        return desc, impl

    return _register(f"fter_pv_row_n{n}_d{hd}_r{rank}", make)


def pv_row_g16_intrin(n: int, hd: int) -> str:
    """``o[c] += sum_j p[j] * vg[c // 16, j, c % 16]``: :func:`pv_row_intrin` with the head's
    ``V`` in groups of 16 channels (``fter_pv_row_g16``)."""
    g = hd // 16

    def make():
        @T.prim_func(s_tir=True)
        def desc(p: T.Buffer((1, 1, n), "uint8", offset_factor=1),
                 v: T.Buffer((g, n, 16), "int8", offset_factor=1),
                 o: T.Buffer((1, 1, hd), "int32", offset_factor=1)):
            with T.sblock("root"):
                T.reads(o[0, 0, 0:hd], p[0, 0, 0:n], v[0:g, 0:n, 0:16])
                T.writes(o[0, 0, 0:hd])
                for c, j in T.grid(hd, n):
                    with T.sblock("update"):
                        vc, vj = T.axis.remap("SR", [c, j])
                        o[0, 0, vc] = o[0, 0, vc] + T.Cast("int32", p[0, 0, vj]) * T.Cast(
                            "int32", v[vc // 16, vj, vc % 16])

        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle):
            p = T.match_buffer(a, (1, 1, n), "uint8", offset_factor=1, strides=_strides(3))
            v = T.match_buffer(b, (g, n, 16), "int8", offset_factor=1)
            o = T.match_buffer(c, (1, 1, hd), "int32", offset_factor=1, strides=_strides(3))
            with T.sblock("root"):
                T.reads(o[0, 0, 0:hd], p[0, 0, 0:n], v[0:g, 0:n, 0:16])
                T.writes(o[0, 0, 0:hd])
                T.evaluate(T.call_extern("void", "fter_pv_row_g16", T.address_of(o[0, 0, 0]),
                                         T.address_of(p[0, 0, 0]), T.address_of(v[0, 0, 0]),
                                         n, hd))

        return desc, impl

    return _register(f"fter_pv_row_g16_n{n}_d{hd}", make)


def v_groups16_intrin(n: int, cols: int) -> str:
    """``vg[c // 16, j, c % 16] = v[j, c]`` for ``n`` rows of ``cols`` channels (a multiple of
    16): ``V`` in groups of 16 channels for :func:`pv_row_g16_intrin` (``fter_v_groups16``, one
    128-bit load and store per row of a group)."""
    g = cols // 16

    def make():
        @T.prim_func(s_tir=True)
        def desc(v: T.Buffer((n, cols), "int8", offset_factor=1),
                 vg: T.Buffer((g, n, 16), "int8", offset_factor=1)):
            with T.sblock("root"):
                T.reads(v[0:n, 0:cols])
                T.writes(vg[0:g, 0:n, 0:16])
                for j, c in T.grid(n, cols):
                    with T.sblock("copy"):
                        vj, vc = T.axis.remap("SS", [j, c])
                        vg[vc // 16, vj, vc % 16] = v[vj, vc]

        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle):
            v = T.match_buffer(a, (n, cols), "int8", offset_factor=1, strides=_strides(2))
            vg = T.match_buffer(b, (g, n, 16), "int8", offset_factor=1)
            with T.sblock("root"):
                T.reads(v[0:n, 0:cols])
                T.writes(vg[0:g, 0:n, 0:16])
                T.evaluate(T.call_extern("void", "fter_v_groups16", T.address_of(vg[0, 0, 0]),
                                         T.address_of(v[0, 0]), n, cols, v.strides[0]))

        return desc, impl

    return _register(f"fter_v_groups16_n{n}_c{cols}", make)
