"""The scalar Xtensa tensor intrinsics of the ternary matmul: one token row against a block of
``NB`` output channels over the whole K, ``fter_tmm_k{K}_n{NB}_{fmt}[_{variant}]`` -> the C
micro-kernel ``fter_tmm_{fmt}[_{variant}]`` (runtime/kernels). Registered per shape on demand;
tuning records name them, so ``tuning.database`` asks :func:`ensure_intrin_by_name` when it
replays one.
"""

from __future__ import annotations

import re
import threading

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from ..compute.kernel_base import _trit
from ..formats import get_format
from ..tuning import database

# Micro-kernel variants with the same contract: "" is the lane kernel (runtime/kernels/
# ternary_matmul_xtensa.c), "lut" builds a table of partial sums per token and K block and so
# pays off only when one call covers many output channels, "pie" is the PIE tile kernel
# (ternary_matmul_pie.c) called for one token. The tuner picks per shape; the hand schedules use
# the target's default (``Esp32s3Target.kernel_variant``). Indices are stored in tuning records:
# append only.
TMM_VARIANTS = ("", "lut", "pie")
_REGISTER_LOCK = threading.Lock()
_INTRIN_RE = re.compile(r"fter_tmm_k(\d+)_n(\d+)_([a-z0-9]+?)(?:_(lut|pie))?")


def intrin_name(k: int, nb: int, fmt: str, variant: str = "") -> str:
    """Name of the tensor intrinsic for one specialization, e.g. ``fter_tmm_k64_n16_b3`` or
    ``fter_tmm_k64_n576_b3_lut``."""
    return f"fter_tmm_k{k}_n{nb}_{fmt}" + (f"_{variant}" if variant else "")


def _make_intrin(k: int, nb: int, fmt: str, variant: str = ""):
    kb = get_format(fmt).row_bytes(k)
    extern = f"fter_tmm_{fmt}" + (f"_{variant}" if variant else "")
    if variant == "pie":   # the tile kernel for one token row: (t, x_stride, acc_stride) = (1, k, nb)
        extern, tail = f"fter_tmm_tile_{fmt}", (1, k, nb)
    else:
        tail = ()

    @T.macro
    def update(q, w, acc):
        for j, r in T.grid(nb, k):
            with T.sblock("update"):
                vj, vr = T.axis.remap("SR", [j, r])
                acc[0, vj] = acc[0, vj] + T.Cast("int32", q[0, vr]) * _trit(w, vj, vr, fmt)

    @T.macro
    def call(q, w, acc):
        # address_of, not access_ptr: StorageRewrite may retype a reused scratch buffer and
        # then rejects tvm_access_ptr on it (seen with the MLP kernel's int32/f32 tiles)
        T.evaluate(T.call_extern("void", extern, T.address_of(acc[0, 0]), T.address_of(q[0, 0]),
                                 T.address_of(w[0, 0]), k, nb, kb, *tail))

    return _row_tile("desc", k, nb, kb, update), _row_tile("impl", k, nb, kb, call)


def _row_tile(name: str, k: int, nb: int, kb: int, body):
    """The intrinsic's ``name`` ("desc" or "impl": one signature, one region for both) around
    the ``T.macro`` ``body(q, w, acc)``: one token row ``q[1, k]`` against ``nb`` packed weight
    rows ``w[nb, kb]`` into ``acc[1, nb]``."""

    @T.prim_func(s_tir=True)
    def func(q: T.Buffer((1, k), "int8", offset_factor=1),
             w: T.Buffer((nb, kb), "uint8", offset_factor=1),
             acc: T.Buffer((1, nb), "int32", offset_factor=1)):
        with T.sblock("root"):
            T.reads(acc[0, 0:nb], q[0, 0:k], w[0:nb, 0:kb])
            T.writes(acc[0, 0:nb])
            body(q, w, acc)

    return func.with_attr("global_symbol", name)


def ensure_intrin(k: int, nb: int, fmt: str, variant: str = "") -> str:
    """Register (once) and return the intrinsic for this specialization."""
    if variant not in TMM_VARIANTS:
        raise ValueError(f"unknown micro-kernel variant {variant!r}; choose one of {TMM_VARIANTS}")
    name = intrin_name(k, nb, fmt, variant)
    with _REGISTER_LOCK:   # MetaSchedule runs postprocessors (which tensorize) on several threads
        if TensorIntrin.get(name, allow_missing=True) is None:
            TensorIntrin.register(name, *_make_intrin(k, nb, fmt, variant))
    return name


def ensure_intrin_by_name(name: str) -> bool:
    """Register the intrinsic ``name`` if it is one of ours (``fter_tmm_k.._n.._<fmt>[_<variant>]``);
    tuning records replay ``tensorize`` by name, in processes that never scheduled that shape."""
    m = _INTRIN_RE.fullmatch(name)
    if m is None:
        return False
    ensure_intrin(int(m[1]), int(m[2]), m[3], m[4] or "")
    return True


database.INTRIN_REGISTRARS.append(ensure_intrin_by_name)
