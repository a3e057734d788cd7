"""Tuning tasks of a fused module: one per distinct fter kernel ``main`` calls, weighted by calls."""

from __future__ import annotations

from dataclasses import dataclass, field

import tvm
import tvm_ffi
from tvm import tirx

from schedules.tuning.database import called_kernels, fter_kernels, kernel_key, task_module

@dataclass
class Task:
    """One workload: an unscheduled kernel and every layer that calls it."""

    name: str                   # the first kernel name (layers with the same shape share it)
    kind: str
    func: tirx.PrimFunc
    weight: int                 # call sites in main
    names: list[str] = field(default_factory=list)

    @property
    def mod(self) -> tvm.IRModule:
        return task_module(self.func)

    @property
    def params(self) -> dict:
        return {str(k): str(v) for k, v in self.func.attrs["fter.params"].items()}

    @property
    def key(self) -> str:
        return kernel_key(self.func)


def extract_tasks(fused: tvm.IRModule, kinds=None) -> tuple[list[Task], list[str]]:
    """Tuning tasks of ``fused``: one per distinct fter kernel ``main`` calls.

    Kernels that are structurally equal (same computation under different names) become one task
    whose weight is their total number of calls.

    Args:
        fused: the module after ``relay_passes.pipeline.fter_pipeline``.
        kinds: kernel kinds to consider (default: all).
    Returns:
        ``(tasks, others)``: tasks by decreasing weight, and the names of called kernels of other
        kinds.
    """
    calls = called_kernels(fused)
    funcs = {gv.name_hint: f for gv, f in fter_kernels(fused)}
    tasks: list[Task] = []
    untuned = []
    for name, count in calls.items():
        func = funcs[name]
        kind = str(func.attrs["fter.kind"])
        if kinds is not None and kind not in kinds:
            untuned.append(name)
            continue
        same = next((t for t in tasks if tvm_ffi.structural_equal(t.func, func)), None)
        if same is None:
            tasks.append(Task(name, kind, func, count, [name]))
        else:
            same.weight += count
            same.names.append(name)
    tasks.sort(key=lambda t: (-t.weight, t.name))
    return tasks, untuned


def allocate_trials(total: int, shares: list[float], minimum: int = 2) -> list[int]:
    """Split ``total`` trials over tasks in proportion to ``shares`` (largest remainders), each
    task getting at least ``min(minimum, total // len(shares))``."""
    if not shares:
        return []
    floor = min(minimum, total // len(shares))
    rest = total - floor * len(shares)
    s = sum(shares) or 1.0
    exact = [rest * x / s for x in shares]
    alloc = [int(e) for e in exact]
    order = sorted(range(len(shares)), key=lambda i: exact[i] - alloc[i], reverse=True)
    for i in order[: rest - sum(alloc)]:
        alloc[i] += 1
    return [a + floor for a in alloc]
