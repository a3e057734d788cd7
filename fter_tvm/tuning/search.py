"""The search loop of one task: MetaSchedule's evolutionary search with the XGBoost cost model,
measuring only what the database does not already hold.

MetaSchedule's own task scheduler would re-measure candidates a previous run already measured (its
``EvolutionarySearch`` keeps measured workloads per run only -- a TODO in TVM), so this loop drives
the ``TuneContext`` itself: each candidate batch is split into schedules already in the database
(their recorded result is fed back to the search and the cost model, nothing is built) and new
ones (built, measured, committed). A record is committed right after its measurement, so an
interrupted run loses at most the batch in flight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import tvm
import tvm_ffi
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule import _ffi_api as ms_ffi
from tvm.s_tir.meta_schedule.database import TuningRecord
from tvm.s_tir.meta_schedule.logging import get_logger, get_logging_func
from tvm.s_tir.meta_schedule.runner import RunnerResult
from tvm.s_tir.meta_schedule.search_strategy import MeasureCandidate

from schedules.tuning.database import replay_record

from .compare import format_cost
from .measure import ERROR_COST, Measurer, cost_of
from .tasks import Task

ERRORS_FILE = "errors.jsonl"   # why candidates failed (the database keeps only their cost)
BATCH = 8                      # candidates measured per round
MAX_IDLE_ROUNDS = 3            # rounds without a new candidate before the space counts as exhausted


@dataclass
class TaskResult:
    measured: int       # records of this task in the database (valid + errors)
    new: int            # measured in this run
    errors: int         # error records in the database
    best: float | None  # best valid cost in the database


def _known_schedules(db, workload, task: Task, target_kind: str) -> dict:
    """Structural hash of every scheduled module already recorded for ``task`` -> (record, cost
    or None for an error, schedule)."""
    known = {}
    for rec in db.get_all_tuning_records():
        if not tvm_ffi.structural_equal(rec.workload.mod, workload.mod):
            continue
        if rec.target is not None and rec.target.kind.name != target_kind:
            continue
        try:
            sch = replay_record(task.func, rec)
        except Exception:  # noqa: BLE001 -- a record whose trace no longer replays is skipped
            continue
        cost = sum(float(x) for x in rec.run_secs) / len(rec.run_secs)
        known[tvm_ffi.structural_hash(sch.mod)] = (rec, None if cost >= ERROR_COST else cost, sch)
    return known


def tune_task(task: Task, space, db, measurer: Measurer, trials: int, *, work_dir: Path,
              seed: int = 0, num_threads: int = 2,
              progress: Callable[[str], None] = print, label: str = "") -> TaskResult:
    """Search ``space`` for ``task`` until the database holds ``trials`` records of it.

    Args:
        task: the workload.
        space: a MetaSchedule space generator (``schedules.tuning.space.design_space``).
        db: the JSON database (read for resuming, appended to).
        measurer: builder, runner and unit of the target.
        trials: the task's budget, counting records of earlier runs.
        work_dir: where ``errors.jsonl`` goes.
        seed: random state of the search (same seed and database: same candidates).
        num_threads: threads for the search's trace replays and the cost model.
        progress: called with one line per round.
        label: prefix of the progress lines (e.g. ``"[task 2/5]"``).
    Returns:
        the task's :class:`TaskResult`.
    """
    target = measurer.target
    workload = db.commit_workload(task.mod)
    known = _known_schedules(db, workload, task, target.kind.name)
    result = TaskResult(len(known), 0, sum(1 for _, c, _ in known.values() if c is None), None)
    result.best = min((c for _, c, _ in known.values() if c is not None), default=None)
    remaining = trials - len(known)
    if remaining <= 0:
        progress(f"{label} {task.name}: {len(known)} records already, nothing to measure")
        return result
    strategy = ms.search_strategy.EvolutionarySearch(population_size=64, init_min_unmeasured=16,
                                                     genetic_num_iters=3)
    ctx = _tune_context(task.mod, target, space, strategy, task.name, seed + 1, num_threads)
    cost_model = ms.cost_model.XGBModel(num_warmup_samples=8, adaptive_training=True)
    _warm_cost_model(ctx, cost_model, list(known.values()))
    ctx.pre_tuning(max_trials=remaining + BATCH * MAX_IDLE_ROUNDS, num_trials_per_iter=BATCH,
                   design_spaces=ctx.generate_design_space(), database=db, cost_model=cost_model)
    idle = 0
    while result.new < remaining and idle < MAX_IDLE_ROUNDS:
        candidates = ctx.generate_measure_candidates()
        if not candidates:
            break
        hashes = [tvm_ffi.structural_hash(c.sch.mod) for c in candidates]
        fresh: list[int] = []     # first candidate of each schedule not in the database yet
        for i, h in enumerate(hashes):
            if h not in known and all(hashes[j] != h for j in fresh) \
                    and len(fresh) < remaining - result.new:
                fresh.append(i)
        idle = 0 if fresh else idle + 1
        measured = measurer.measure([candidates[i].sch.mod for i in fresh],
                                    [candidates[i].args_info for i in fresh])
        for i, res in zip(fresh, measured):
            cand, cost = candidates[i], cost_of(res)
            rec = TuningRecord(cand.sch.trace, workload, [cost if cost is not None else ERROR_COST],
                               target, cand.args_info)
            db.commit_tuning_record(rec)
            known[hashes[i]] = (rec, cost, None)
            result.new += 1
            result.measured += 1
            if cost is None:
                result.errors += 1
                _log_error(work_dir, task, cand, res.error_msg)
            elif result.best is None or cost < result.best:
                result.best = cost
        # schedules measured before (earlier runs, or twice in this batch) reuse their result
        results = [_result(known.get(h)) for h in hashes]
        # the search and the cost model learn from the whole batch, reused results included
        keep = [i for i, r in enumerate(results) if r is not None]
        ctx.notify_runner_results([candidates[i] for i in keep], [results[i] for i in keep])
        cost_model.update(ctx, [candidates[i] for i in keep], [results[i] for i in keep])
        best = format_cost(result.best, measurer.unit)
        progress(f"{label} {task.name}: trials {result.measured}/{trials} (+{len(fresh)} measured, "
                 f"{len(keep) - len(fresh)} reused), errors {result.errors}, best {best}")
    ctx.post_tuning()
    return result


def _result(entry) -> RunnerResult | None:
    if entry is None:
        return None            # over this run's budget: never measured
    cost = entry[1]
    return RunnerResult([cost], None) if cost is not None else RunnerResult(None, "error (recorded)")


def _tune_context(mod, target, space, strategy, name: str, seed: int, num_threads: int):
    """``ms.TuneContext(...)`` without its ``import tvm.s_tir.tensor_intrin``: that import parses
    every TVM-bundled intrinsic (CUDA, ARM, Hexagon, ...) from TVMScript, about a minute with torch
    loaded, and our spaces use only our own intrinsics."""
    ctx = ms.TuneContext.__new__(ms.TuneContext)
    ctx.__init_handle_by_constructor__(ms_ffi.TuneContext, mod, target, space, strategy, name,
                                       num_threads, seed, get_logging_func(get_logger(__name__)))
    ms_ffi.TuneContextInitialize(ctx)
    return ctx


def _warm_cost_model(ctx, cost_model, known) -> None:
    """Train the cost model on the task's records from earlier runs, so a resumed search starts
    where the last one stopped."""
    cands, results = [], []
    for rec, cost, sch in known:
        if rec is None or sch is None:
            continue
        cands.append(MeasureCandidate(sch, rec.args_info))
        results.append(RunnerResult([cost], None) if cost is not None else RunnerResult(None, "error"))
    if cands:
        cost_model.update(ctx, cands, results)


def _log_error(work_dir: Path, task: Task, cand, message) -> None:
    line = {"task": task.name, "kernel": task.key, "error": str(message)[-4000:],
            "trace": str(cand.sch.trace)}
    with open(Path(work_dir) / ERRORS_FILE, "a") as f:
        f.write(json.dumps(line) + "\n")
