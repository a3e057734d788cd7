"""MetaSchedule design spaces of the fter kernels: our hand schedules with their choices sampled.

Every space keeps the tensor intrinsics of the hand schedules -- the search varies tile sizes and
micro-kernel variants around them, it never falls back to scalar code:

* esp32s3 ``ternary_matmul`` / ``ternary_mlp``: the N-block of each accumulation tile is a sampled
  perfect tile (mutated by ``MutateTileSize``), the micro-kernel variant (lane or LUT) a sampled
  category (mutated by :class:`MutateCategorical`). Because the intrinsic's name depends on both
  (``fter_tmm_k192_n64_b3_lut``), the space only *annotates* the tile loop and the postprocessor
  :class:`TensorizeTernaryMatmul` tensorizes it after the sampled trace is replayed -- a
  ``tensorize`` inside the design space would replay a stale name whenever a decision mutates.
* x86 ``ternary_matmul`` (``v16x4`` tiles, VNNI/AVX2): the register tile (rows x channels) of
  ``schedules.x86.schedule_ternary_matmul`` is sampled; the dot intrinsic is fixed per ISA, so it is
  tensorized inside the space.
"""

from __future__ import annotations

import random

from tvm import s_tir
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.mutator import PyMutator
from tvm.s_tir.meta_schedule.postproc import PyPostproc

from . import esp32s3

TMM_ANN = "fter.tmm"                  # on a tile loop: "<k>_<fmt>" of the accumulation
TMM_VARIANT_ANN = "fter.tmm_variant"  # on the same loop: index into esp32s3.TMM_VARIANTS


def _params(sch: s_tir.Schedule) -> dict:
    return {k: str(v) for k, v in sch.mod["main"].attrs["fter.params"].items()}


def _sampled_tile(sch: s_tir.Schedule, acc, consumer, k: int, fmt: str):
    """The hand schedule's tile_accumulation with a sampled N-block and micro-kernel variant;
    the tile loop is annotated for :class:`TensorizeTernaryMatmul`."""
    j = sch.get_loops(consumer)[-1]
    n = int(sch.get(j).extent)
    _, nb = sch.sample_perfect_tile(j, n=2, max_innermost_factor=n)
    variant = sch.sample_categorical(list(range(len(esp32s3.TMM_VARIANTS))),
                                     [1.0 / len(esp32s3.TMM_VARIANTS)] * len(esp32s3.TMM_VARIANTS))
    loop = esp32s3.tile_accumulation(sch, acc, consumer, n, nb=nb)
    sch.decompose_reduction(acc, loop)
    sch.annotate(loop, TMM_ANN, f"{k}_{fmt}")
    sch.annotate(loop, TMM_VARIANT_ANN, variant)


def esp32s3_ternary_matmul(sch: s_tir.Schedule) -> None:
    """Space of ``schedules.esp32s3._schedule_ternary_matmul``."""
    p = _params(sch)
    _sampled_tile(sch, sch.get_sblock("acc"), sch.get_sblock("epilogue"), int(p["k"]), p["fmt"])


def esp32s3_ternary_mlp(sch: s_tir.Schedule) -> None:
    """Space of ``schedules.esp32s3._schedule_mlp`` (token-streamed MLP, two tiles)."""
    p = _params(sch)
    d, hidden, fmt = int(p["d"]), int(p["hidden"]), p["fmt"]
    acc1, hid, absmax, scale, quant, acc2, out = sch.get_child_blocks(sch.get_sblock("root"))
    _sampled_tile(sch, acc2, out, hidden, fmt)
    row = sch.get_loops(out)[0]
    for block in (quant, scale, absmax, hid):
        sch.compute_at(block, row)
    _sampled_tile(sch, acc1, hid, d, fmt)


@derived_object
class TensorizeTernaryMatmul(PyPostproc):
    """Tensorize every loop annotated by :func:`_sampled_tile` with the ``fter_tmm`` intrinsic of
    its (k, N-block, format, variant); runs after compute_at decisions, as the hand schedule's
    tensorize does."""

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch: s_tir.Schedule) -> bool:
        for block in _all_blocks(sch):
            for loop in sch.get_loops(block):
                ann = sch.get(loop).annotations
                if TMM_ANN not in ann:
                    continue
                k, fmt = str(ann[TMM_ANN]).split("_")
                variant = esp32s3.TMM_VARIANTS[int(ann[TMM_VARIANT_ANN])]
                nb = int(sch.get(loop).extent)
                sch.unannotate(loop, TMM_ANN)
                sch.unannotate(loop, TMM_VARIANT_ANN)
                sch.tensorize(loop, esp32s3.ensure_intrin(int(k), nb, fmt, variant))
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


@derived_object
class MutateCategorical(PyMutator):
    """Re-draw the decision of one ``sample_categorical`` in the trace (TVM's mutators only touch
    categories that feed unroll annotations)."""

    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, trace: s_tir.Trace, rand_state: int):
        insts = [i for i in trace.insts if i.kind.name == "SampleCategorical"
                 and len(i.attrs[0]) > 1]
        if not insts:
            return None
        rng = random.Random(rand_state)
        inst = rng.choice(insts)
        current = int(trace.decisions[inst])
        choice = rng.choice([c for c in range(len(inst.attrs[0])) if c != current])
        return trace.with_decision(inst, choice, remove_postproc=True)

    def clone(self):
        return MutateCategorical()


def _esp32s3_space(fn) -> ms.space_generator.ScheduleFn:
    return ms.space_generator.ScheduleFn(
        fn, sch_rules=[], postprocs=[TensorizeTernaryMatmul()],
        mutator_probs={ms.mutator.MutateTileSize(): 0.6, MutateCategorical(): 0.4})


ESP32S3_SPACES = {"ternary_matmul": esp32s3_ternary_matmul, "ternary_mlp": esp32s3_ternary_mlp}


def design_space(kind: str, target_name: str, tvm_target=None, params: dict | None = None):
    """The space generator of a kernel (``kind`` and its ``fter.params``) on ``target_name``
    ("esp32s3" / "x86"), or None when the kernel keeps its hand schedule untuned."""
    if target_name == "esp32s3":
        fn = ESP32S3_SPACES.get(kind)
        return None if fn is None else _esp32s3_space(fn)
    if target_name == "x86":
        from .x86_space import x86_design_space

        return x86_design_space(kind, tvm_target, params or {})
    raise ValueError(f"no design spaces for target {target_name!r}")
