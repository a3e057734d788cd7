"""Tensor intrinsics of the integer projections' epilogues on the ESP32-S3
(runtime/kernels/epilogue_int.c).

The integer MLP (``schedules.integer.kernels.ternary_mlp``) dequantizes fc1's accumulators twice
per weight-stationary tile: once for the rows' largest GELU input, once for GELU and the int8
hidden codes. In the first pass the value block is inlined into the row max, one [t, nb] loop
nest over the tile, which ``fter_value_rowmax_t{T}_n{NB}_a{ABITS}`` replaces by one C call:
``vmax[i] = max(vmax[i], V[i, j])``, ``V`` the contract's ``dequant`` of ``acc[i, j]`` with the
channel tables ``cm, ce, cb`` and the token tables ``rm, re``. The description is built from the
same ``intmath`` ops as the kernel, so a change of the contract that the C does not follow stops
the tensorize instead of changing bits silently.

The second pass stays TensorIR: GELU reads its table at data-dependent indices, which tensorize
cannot match (it would have to prove two loads of different buffers equal).
"""

from __future__ import annotations

from tvm.script import tirx as T

from .pie_intrin import _register
from ..integer import intmath as im

B = im.TIR


def _value(acc, cm, ce, cb, rm, re, vi, vj, abits):
    return im.dequant(B, acc[vi, vj], abits, cm[vj], ce[vj], rm[vi], re[vi], cb[vj])


def value_rowmax_intrin(t: int, nb: int, abits: int) -> str:
    """Register (once) and return the row-max-of-values intrinsic of a [t, nb] tile."""

    def make():
        @T.prim_func(s_tir=True)
        def desc(acc: T.Buffer((t, nb), "int32", offset_factor=1),
                 cm: T.Buffer((nb,), "int32", offset_factor=1),
                 ce: T.Buffer((nb,), "int32", offset_factor=1),
                 cb: T.Buffer((nb,), "int32", offset_factor=1),
                 rm: T.Buffer((t,), "int32", offset_factor=1),
                 re: T.Buffer((t,), "int32", offset_factor=1),
                 vmax: T.Buffer((t,), "int32", offset_factor=1)):
            with T.sblock("root"):
                T.reads(vmax[0:t], acc[0:t, 0:nb], cm[0:nb], rm[0:t], ce[0:nb], re[0:t], cb[0:nb])
                T.writes(vmax[0:t])
                for i, j in T.grid(t, nb):
                    with T.sblock("update"):
                        vi, vj = T.axis.remap("SR", [i, j])
                        vmax[vi] = T.max(vmax[vi], _value(acc, cm, ce, cb, rm, re, vi, vj, abits))

        @T.prim_func(s_tir=True)
        def impl(a: T.handle, b: T.handle, c: T.handle, d: T.handle, e: T.handle, f: T.handle,
                 g: T.handle):
            acc = T.match_buffer(a, (t, nb), "int32", offset_factor=1, strides=[T.int32(), 1])
            cm = T.match_buffer(b, (nb,), "int32", offset_factor=1)
            ce = T.match_buffer(c, (nb,), "int32", offset_factor=1)
            cb = T.match_buffer(d, (nb,), "int32", offset_factor=1)
            rm = T.match_buffer(e, (t,), "int32", offset_factor=1)
            re = T.match_buffer(f, (t,), "int32", offset_factor=1)
            vmax = T.match_buffer(g, (t,), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(vmax[0:t], acc[0:t, 0:nb], cm[0:nb], rm[0:t], ce[0:nb], re[0:t], cb[0:nb])
                T.writes(vmax[0:t])
                T.evaluate(T.call_extern("void", "fter_value_rowmax_tile", T.address_of(vmax[0]),
                                         T.address_of(acc[0, 0]), T.address_of(cm[0]),
                                         T.address_of(ce[0]), T.address_of(cb[0]),
                                         T.address_of(rm[0]), T.address_of(re[0]), t, nb,
                                         acc.strides[0], abits))

        return desc, impl

    return _register(f"fter_value_rowmax_t{t}_n{nb}_a{abits}", make)
