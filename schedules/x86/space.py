"""MetaSchedule design space of the x86 ternary matmul: ``schedule.schedule_ternary_matmul``
with its register tile (rows x channels) sampled instead of taken from ``MATMUL_TILE``.

The steps mirror that hand schedule one for one (split the epilogue into row and channel tiles,
accumulate each tile over the whole K in registers, the 4 x lanes step as the ISA's dot
intrinsic); the two tile sizes are decisions and the loop order (channel blocks or row tiles
outermost, each in parallel) two design spaces, so every candidate keeps the VNNI / AVX2
tensorization. Kinds other than the tiled (``v16x4``) ternary
matmul have no x86 space: their hand schedules swap in other computations, which a MetaSchedule
space over the original workload cannot express.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.s_tir import meta_schedule as ms

from ..formats import get_format
from .forms import ROW_PAD
from .intrin import DOT_INTRINSICS
from .schedule import register_tile, target_isa

ROW_CHOICES = (1, 2, 3, 4, 5, 6, 7, 8)
MAX_CHANNELS = 128


def _params(sch: s_tir.Schedule) -> dict:
    return {k: str(v) for k, v in sch.mod["main"].attrs["fter.params"].items()}


def _uniform(sch: s_tir.Schedule, choices):
    return sch.sample_categorical(list(choices), [1.0 / len(choices)] * len(choices))


def _tiled_matmul(sch: s_tir.Schedule, isa: str, channels_outer: bool) -> None:
    p = _params(sch)
    t, k, n = int(p["t"]), int(p["k"]), int(p["n"])
    tn, tk = get_format(p["fmt"]).tile
    intrin, lanes = DOT_INTRINSICS.get(isa, {}).get("s8u8", (None, tn))
    if k % tk:
        intrin = None            # a partial 4-group: the intrinsic would read past the row
    npad = -(-n // tn) * tn
    rows = _uniform(sch, [r for r in ROW_CHOICES if r <= min(t, ROW_PAD)])
    cols = _uniform(sch, [c for c in range(lanes, min(npad, MAX_CHANNELS) + 1, lanes)
                          if npad % c == 0])
    acc, ep, qsum = sch.get_sblock("acc"), sch.get_sblock("epilogue"), sch.get_sblock("qsum")
    i, j = sch.get_loops(ep)
    io, ii = sch.split(i, [None, rows])
    jo, ji = sch.split(j, [None, cols])
    if channels_outer:           # the hand schedule's order: a block's weights stay cached
        sch.reorder(jo, io, ii, ji)
        sch.compute_at(acc, io, preserve_unit_loops=True)
        sch.parallel(sch.get_loops(qsum)[0])
        sch.parallel(jo)
    else:                        # row tiles outer: a tile's activations stay cached
        sch.reorder(io, jo, ii, ji)
        sch.compute_at(acc, jo, preserve_unit_loops=True)
        sch.compute_at(qsum, io, preserve_unit_loops=True)
        sch.parallel(io)
    register_tile(sch, acc, ii, ji, lanes, tk, intrin)


def ternary_matmul_space(isa: str):
    """Schedule function of the tiled ternary matmul for ``isa`` ("avx512_vnni", "avx2", ...):
    two design spaces (channel blocks or row tiles outermost), each with sampled tile sizes."""

    def space(sch: s_tir.Schedule) -> list:
        out = []
        for channels_outer in (True, False):
            s = sch.copy()
            _tiled_matmul(s, isa, channels_outer)
            out.append(s)
        return out

    return space


def x86_design_space(kind: str, tvm_target, params: dict):
    """Space generator for a kernel (``kind``, ``fter.params``) on the llvm ``tvm_target``, or None
    when it keeps its hand schedule (other kinds, packed formats)."""
    from ..tuning.mutators import MutateCategorical

    if kind != "ternary_matmul" or get_format(params["fmt"]).tile is None:
        return None
    return ms.space_generator.ScheduleFn(
        ternary_matmul_space(target_isa(tvm_target)), sch_rules=[], postprocs=[],
        mutator_probs={MutateCategorical(): 1.0})
