"""Tuning records -> schedules: apply a MetaSchedule database (written by ``fter_tvm.tune``) to the
fter kernels of a module. Both targets' ``schedule_module`` call :func:`apply_database` first and
hand-schedule only what it did not cover.

A kernel's workload is :func:`task_module` of its unscheduled PrimFunc, so the database is keyed by
the kernel's computation (shape, format, epilogue), not by layer names: every layer with the same
kernel shares one record, and a record tuned on one model applies to any model with that shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import tvm
from tvm import tirx
from tvm.s_tir import meta_schedule as ms

DB_WORKLOAD_FILE = "database_workload.json"
DB_RECORD_FILE = "database_tuning_record.json"
BASELINE_FILE = "baseline.json"   # hand-schedule costs, written by the tuning run
TUNED_ATTR = "fter.tuned"    # set on kernels scheduled from a record (value: the record's cost)
TOP_K = 64                   # records looked at per workload to find one of the right target


def fter_kernels(mod: tvm.IRModule) -> list[tuple[tvm.ir.GlobalVar, tirx.PrimFunc]]:
    """The PrimFuncs of ``mod`` tagged ``fter.kind`` (our kernels), in name order."""
    out = [(gv, f) for gv, f in mod.functions_items()
           if isinstance(f, tirx.PrimFunc) and f.attrs is not None and "fter.kind" in f.attrs]
    return sorted(out, key=lambda item: item[0].name_hint)


def task_module(func: tirx.PrimFunc) -> tvm.IRModule:
    """The MetaSchedule workload of an unscheduled kernel: ``{"main": func}`` normalized the way
    MetaSchedule normalizes PrimFuncs (``global_symbol`` "main", ``tirx.noalias``). The body is a
    fresh copy: TensorIR schedules mutate statements they hold the only reference to, and a
    schedule over nodes shared with ``func`` corrupted ``func`` when a replay failed midway."""
    func = tvm.s_tir.renew_defs(func).with_attr("global_symbol", "main").with_attr("tirx.noalias", True)
    return tvm.IRModule({"main": func})


def kernel_key(func: tirx.PrimFunc) -> str:
    """Which fter kernel a PrimFunc is (scheduled or not): its kind and parameters, e.g.
    ``ternary_matmul(epilogue=none, fmt=b3, k=192, n=576, t=197)``; "" for other functions."""
    if func.attrs is None or "fter.kind" not in func.attrs:
        return ""
    params = sorted((str(k), str(v)) for k, v in func.attrs["fter.params"].items())
    return str(func.attrs["fter.kind"]) + "(" + ", ".join(f"{k}={v}" for k, v in params) + ")"


def tvm_target(target) -> tvm.target.Target:
    """A ``tvm.target.Target`` from ours (``fter_tvm.targets.Target``), a dict or a Target."""
    if isinstance(target, tvm.target.Target):
        return target
    return tvm.target.Target(getattr(target, "tvm_target", target))


def open_database(work_dir: str | Path, create: bool = False) -> ms.database.JSONDatabase:
    """The JSON database in ``work_dir``.

    Raises:
        FileNotFoundError: ``work_dir`` holds no database and ``create`` is False.
    """
    work_dir = Path(work_dir)
    wl, rec = work_dir / DB_WORKLOAD_FILE, work_dir / DB_RECORD_FILE
    if not create and not (wl.is_file() and rec.is_file()):
        raise FileNotFoundError(f"no tuning database in {work_dir} (expected {DB_WORKLOAD_FILE} and "
                                f"{DB_RECORD_FILE}; run fter-tvm tune first)")
    work_dir.mkdir(parents=True, exist_ok=True)
    if rec.is_file():
        _register_intrinsics_named_in(rec.read_text())
    return ms.database.JSONDatabase(path_workload=str(wl), path_tuning_record=str(rec),
                                    allow_missing=create)


# Registrars of tensor intrinsics created per shape on demand: each takes an intrinsic's name and
# returns whether it knew (and registered) it. A target's schedule module adds its own at import
# (schedules.esp32s3), so this module, which both targets' schedules import, imports no target.
INTRIN_REGISTRARS: list = []


def _ensure_intrin(name: str) -> None:
    for register in INTRIN_REGISTRARS:
        if register(name):
            return


def _register_intrinsics_named_in(text: str) -> None:
    # loading a JSON database replays every trace, and tensorize needs its intrinsic registered:
    # ours are registered per shape on demand, the x86 ones when x86.intrin is imported
    from ..x86 import intrin  # noqa: F401

    for name in set(re.findall(r'"(fter_tmm_k\d+_n\d+_[a-z0-9_]+?)"', text)):
        _ensure_intrin(name)


def _register_intrinsics(trace) -> None:
    # tensor intrinsics are registered lazily per shape; a replayed trace names them
    for inst in trace.insts:
        if inst.kind.name == "Tensorize":
            _ensure_intrin(str(inst.attrs[0]))


def best_record(db: ms.database.Database, func: tirx.PrimFunc, target):
    """The fastest valid record of ``func``'s workload for ``target``'s kind, or None (errors never
    count; a directory tuned for another target contributes nothing)."""
    mod = task_module(func)
    if not db.has_workload(mod):
        return None
    kind = tvm_target(target).kind.name
    for record in db.get_top_k(db.commit_workload(mod), TOP_K):
        if record.target is None or record.target.kind.name == kind:
            return record
    return None


def replay_record(func: tirx.PrimFunc, record) -> tvm.s_tir.Schedule:
    """``record``'s trace replayed on the workload of ``func`` (postprocessing included)."""
    _register_intrinsics(record.trace)
    sch = tvm.s_tir.Schedule(task_module(func))
    record.trace.apply_to_schedule(sch, remove_postproc=False)
    return sch


def schedule_from_record(func: tirx.PrimFunc, record) -> tirx.PrimFunc:
    """Replay ``record``'s trace on ``func``; the result keeps ``func``'s attributes (plus
    ``tirx.noalias``, under which it was measured, and :data:`TUNED_ATTR`)."""
    scheduled = replay_record(func, record).mod["main"].without_attr("global_symbol")
    return scheduled.with_attr(TUNED_ATTR, tvm.tirx.FloatImm("float64", record_cost(record)))


def load_baseline(work_dir: str | Path) -> dict[str, float]:
    """Kernel key -> cost of its hand schedule, as measured by the tuning run (``baseline.json``;
    empty if absent)."""
    path = Path(work_dir) / BASELINE_FILE
    if not path.is_file():
        return {}
    return {key: float(row["hand"]) for key, row in json.loads(path.read_text()).items()}


def apply_database(mod: tvm.IRModule, target, db) -> tuple[tvm.IRModule, list[str]]:
    """Schedule every fter kernel of ``mod`` that has a record in ``db``.

    A record is used only if it beats the hand schedule the tuning run measured next to it
    (``baseline.json`` in the database directory): a short search may not have found one.

    Args:
        mod: the fused module (unscheduled kernels).
        target: ``fter_tvm.targets.Target`` (or a TVM target) the records were tuned for.
        db: a database directory, a ``ms.database.Database``, or None (nothing applied).
    Returns:
        ``(mod, applied)``: a copy of ``mod`` with the recorded schedules in place and the names
        of the kernels that got one; the others are left unscheduled for the hand schedules.
    Raises:
        FileNotFoundError: ``db`` is a directory without a database.
    """
    if db is None:
        return mod, []
    baseline = {}
    if not isinstance(db, ms.database.Database):
        baseline = load_baseline(db)
        db = open_database(db)
    out = tvm.IRModule(dict(mod.functions_items()), attrs=mod.attrs)
    applied = []
    for gv, func in fter_kernels(mod):
        record = best_record(db, func, target)
        if record is None or record_cost(record) >= baseline.get(kernel_key(func), float("inf")):
            continue
        out[gv] = schedule_from_record(func, record)
        applied.append(gv.name_hint)
    return out, applied


def record_cost(record) -> float:
    """Mean measured cost of a record (seconds on x86, instructions on esp32s3)."""
    return sum(float(x) for x in record.run_secs) / len(record.run_secs)


def is_tuned(func) -> bool:
    """True for a kernel :func:`apply_database` scheduled (hand schedules must leave it alone)."""
    return func.attrs is not None and TUNED_ATTR in func.attrs


def tuning_summary(mod: tvm.IRModule, target, db) -> dict:
    """``{"database": dir, "applied": [...], "fallback": [...]}`` for the fter kernels ``main``
    calls: which get a record and which keep their hand schedule."""
    called = called_kernels(mod)
    _, applied = apply_database(tvm.IRModule({gv: f for gv, f in mod.functions_items()
                                              if gv.name_hint in called}), target, db)
    return {"database": str(db), "applied": sorted(applied),
            "fallback": sorted(set(called) - set(applied))}


def called_kernels(mod: tvm.IRModule) -> dict[str, int]:
    """Name -> number of ``call_tir`` sites in ``main`` for every fter kernel ``main`` calls."""
    # in-place kernels (the streamed MLP and attention update the residual) use call_tir_inplace
    call_tir = [tvm.ir.Op.get(op) for op in ("relax.call_tir", "relax.call_tir_inplace")]
    kernels = {gv.name_hint for gv, _ in fter_kernels(mod)}
    counts: dict[str, int] = {}

    def visit(expr):
        if isinstance(expr, tvm.relax.Call) and any(expr.op.same_as(op) for op in call_tir):
            name = expr.args[0].name_hint
            if name in kernels:
                counts[name] = counts.get(name, 0) + 1

    tvm.relax.analysis.post_order_visit(mod["main"], visit)
    return dict(sorted(counts.items()))
