"""MetaSchedule design space of the esp32s3 kernels: the hand schedules with their choices sampled.

Every kernel whose hand schedule tiles an accumulation (``ternary_matmul``, ``ternary_mlp``, the
attention and patch-embedding kernels, ...) is a space: the hand schedule itself runs on
MetaSchedule's schedule (``schedule.design_space``), the N-block of each tile is a sampled perfect
tile (mutated by ``MutateTileSize``) and its micro-kernel variant (lane or LUT) a sampled category
(mutated by ``MutateCategorical``). Because the intrinsic's name depends on both
(``fter_tmm_k192_n64_b3_lut``), the space only *annotates* the tile loop and the postprocessor
:class:`TensorizeTernaryMatmul` tensorizes it after the sampled trace is replayed -- a
``tensorize`` inside the space would replay a stale name when a decision mutates. The space never
falls back to scalar code.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.postproc import PyPostproc

from ..tuning.mutators import MutateCategorical
from . import schedule
from .intrin import TMM_VARIANTS, ensure_intrin

TMM_ANN, TMM_VARIANT_ANN = schedule.TMM_ANN, schedule.TMM_VARIANT_ANN


@derived_object
class TensorizeTernaryMatmul(PyPostproc):
    """Tensorize every loop ``tensorize_accumulation`` annotated in a design space with the
    ``fter_tmm`` intrinsic of its (k, N-block, format, variant); runs after all compute_at steps,
    as the hand schedules' tensorize does."""

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch: s_tir.Schedule) -> bool:
        for block in _all_blocks(sch):
            for loop in sch.get_loops(block):
                ann = sch.get(loop).annotations
                if TMM_ANN not in ann:
                    continue
                k, fmt = str(ann[TMM_ANN]).split("_")
                variant = TMM_VARIANTS[int(ann[TMM_VARIANT_ANN])]
                nb = int(sch.get(loop).extent)
                sch.unannotate(loop, TMM_ANN)
                sch.unannotate(loop, TMM_VARIANT_ANN)
                sch.tensorize(loop, ensure_intrin(int(k), nb, fmt, variant))
                return self.apply(sch)   # block handles changed: start over
        return True

    def clone(self):
        return TensorizeTernaryMatmul()


def _all_blocks(sch: s_tir.Schedule) -> list:
    out, stack = [], [sch.get_sblock("root")]
    while stack:
        for child in sch.get_child_blocks(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def esp32s3_space(kind: str) -> ms.space_generator.ScheduleFn:
    """The esp32s3 hand schedule of ``kind`` as a space: its tile choices sampled."""
    hand = schedule.SCHEDULES[kind]

    def space(sch: s_tir.Schedule) -> None:
        with schedule.design_space(sch):
            hand(sch.mod["main"])

    return ms.space_generator.ScheduleFn(
        space, sch_rules=[], postprocs=[TensorizeTernaryMatmul()],
        mutator_probs={ms.mutator.MutateTileSize(): 0.6, MutateCategorical(): 0.4})


def esp32s3_design_space(kind: str):
    """The space generator of a kernel kind on esp32s3, or None when it keeps its hand schedule."""
    return esp32s3_space(kind) if kind in schedule.SCHEDULES else None
