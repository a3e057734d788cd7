"""MetaSchedule mutators of the fter search spaces (shared by the esp32s3 and x86 spaces)."""

from __future__ import annotations

import random

from tvm import s_tir
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.mutator import PyMutator


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
