"""``fter_tvm.tune``: search schedules of a model's ternary kernels and store them in a database that
``fter_tvm.compile(..., tuning_db=DIR)`` applies.

Steps: the fused module (as ``compile`` builds it) -> one task per distinct kernel, weighted by its
calls (``tuning.tasks``) -> the hand schedule of each task measured as the baseline -> trials
split by each task's share of the hand-scheduled total -> MetaSchedule's evolutionary search with
the XGBoost cost model over spaces that keep our tensor intrinsics (``schedules.tuning.space``),
measured locally, through an RPC tracker (x86), or in the Xtensa ISS (esp32s3) -> tuned vs untuned
per task and end to end, printed and written to ``DIR/tuning_report.json``.

``DIR`` holds MetaSchedule's JSON database (``database_workload.json``,
``database_tuning_record.json``), ``baseline.json`` (hand-schedule costs), ``errors.jsonl`` (why
candidates failed) and the report. Re-running with the same ``DIR`` resumes: records already
there count towards ``trials`` and are never measured again.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import tvm

from schedules.tuning.space import design_space, has_choices
from schedules.tuning.database import BASELINE_FILE, open_database, task_module, tvm_target

from .compile import build_fused, fuse_model
from .targets import get_target
from .tuning.compare import end_to_end, format_cost, format_report, task_rows, weighted_total
from .tuning.measure import Measurer, cost_of, esp32s3_measurer, x86_measurer
from .tuning.search import tune_task
from .tuning.tasks import Task, allocate_trials, extract_tasks

REPORT_FILE = "tuning_report.json"
TARGET_FILE = "target.json"


def tune(model, target="x86", trials: int = 64, work_dir: str | Path = "fter_tuning",
         example_inputs=None, *, pack_format: str | None = None, kinds=None,
         rpc_tracker: str | None = None, rpc_key: str | None = None, seed: int = 0,
         compare: bool = True, progress: Callable[[str], None] = print) -> dict:
    """Tune the fter kernels of ``model`` for ``target`` into the database in ``work_dir``.

    Args:
        model: as for :func:`fter_tvm.compile`.
        target: "x86", "esp32s3" or a :class:`fter_tvm.targets.Target`.
        trials: total measurements over all tasks, counting those already in ``work_dir``.
        work_dir: database directory (created; reused to resume).
        example_inputs: tuple of example tensors (required for ``nn.Module``).
        pack_format: as for :func:`fter_tvm.compile` (tune and compile with the same one).
        kinds: kernel kinds to tune (default: every kind with a design space that has choices).
        rpc_tracker: ``"host:port"`` of a TVM RPC tracker measuring x86 candidates.
        rpc_key: device key the RPC servers registered with.
        seed: random state of the search.
        compare: also compile the model with and without the database and measure both.
        progress: called with each progress line.
    Returns:
        the report written to ``work_dir/tuning_report.json``: ``tasks`` (tuned vs hand per task),
        ``tasks_total``, ``end_to_end`` (if ``compare``), ``trials``, ``database``.
    Raises:
        ValueError: ``work_dir`` was tuned for another target, or bad RPC settings.
        the errors of :func:`fter_tvm.compile` for models it cannot import.
    """
    tgt = get_target(target)
    if rpc_tracker is not None and tgt.name != "x86":
        raise ValueError("RPC measurement is for x86; esp32s3 candidates run in the Xtensa ISS")
    work_dir = Path(work_dir)
    claim_work_dir(work_dir, tgt.name)
    started = time.time()
    fused, fused_report = fuse_model(model, tgt, example_inputs, pack_format=pack_format)
    tasks, spaces, untuned = tunable_tasks(fused, tgt, kinds)
    progress(f"{len(tasks)} tuning tasks ({sum(t.weight for t in tasks)} kernel calls); "
             f"hand schedules only: {', '.join(untuned) or 'none'}")
    db = open_database(work_dir, create=True)
    with tempfile.TemporaryDirectory(prefix="fter_tune_") as scratch:
        measurer = make_measurer(tgt, Path(scratch), rpc_tracker, rpc_key)
        hand = measure_hand(tasks, tgt, measurer, work_dir, progress)
        shares = [t.weight * (hand.get(t.key) or 1.0) for t in tasks]
        budget = allocate_trials(trials, shares)
        results = {}
        for i, (task, n) in enumerate(zip(tasks, budget)):
            res = tune_task(task, spaces[task.name], db, measurer, n, work_dir=work_dir, seed=seed + i,
                            progress=progress, label=f"[task {i + 1}/{len(tasks)}]")
            results[task.name] = {"budget": n, "records": res.measured, "new": res.new,
                                  "errors": res.errors}
    rows = task_rows(tasks, hand, db, measurer.target, measurer.unit)
    report = {"target": tgt.name, "unit": measurer.unit, "database": str(work_dir),
              "trials": results, "tasks": rows, "untuned_kernels": untuned,
              "tasks_total": {"hand": weighted_total(rows, "hand"),
                              "best": weighted_total(rows, "best")}}
    if compare:
        x = example_inputs[0] if example_inputs else _random_input(fused)
        report["end_to_end"] = end_to_end(
            lambda db_: build_fused(fused, fused_report, tgt, example_inputs=example_inputs,
                                    tuning_db=work_dir if db_ else None), tgt.name, x)
    report["seconds"] = round(time.time() - started, 1)
    (work_dir / REPORT_FILE).write_text(json.dumps(report, indent=1, default=str))
    progress(format_report(report))
    return report


def tunable_tasks(fused: tvm.IRModule, tgt, kinds=None):
    """``(tasks, spaces, untuned)``: the tasks of ``fused`` that have a design space with choices
    on ``tgt``, their spaces by task name, and the names of the kernels left to hand schedules
    (per-token glue has nothing to choose, x86 spaces need a tiled weight format)."""
    tasks, untuned = extract_tasks(fused, kinds)
    spaces = {t.name: design_space(t.kind, tgt.name, tvm_target(tgt), t.params) for t in tasks}
    keep = [t for t in tasks if spaces[t.name] is not None and has_choices(spaces[t.name], t.mod)]
    untuned += [n for t in tasks if not any(t is k for k in keep) for n in t.names]
    return keep, spaces, untuned


def _random_input(fused: tvm.IRModule):
    import numpy as np

    shape = [int(d) for d in fused["main"].params[0].ty.shape.values]
    return np.random.default_rng(0).standard_normal(shape).astype("float32")


def claim_work_dir(work_dir: Path, target_name: str) -> None:
    """One target per database directory: its records are not comparable across targets."""
    path = work_dir / TARGET_FILE
    if path.is_file():
        have = json.loads(path.read_text())["target"]
        if have != target_name:
            raise ValueError(f"{work_dir} holds a {have} tuning database; use another directory "
                             f"for {target_name}")
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"target": target_name}) + "\n")


def make_measurer(tgt, scratch: Path, rpc_tracker, rpc_key) -> Measurer:
    if tgt.name == "esp32s3":
        return esp32s3_measurer(scratch)
    return x86_measurer(tvm_target(tgt), rpc_tracker, rpc_key)


def hand_schedule(func, tgt):
    """``func`` with the target's hand schedule (the untuned baseline)."""
    if tgt.name == "esp32s3":
        from schedules.esp32s3 import schedule_module
    else:
        from schedules.x86 import schedule_module
    gv = tvm.ir.GlobalVar("kernel")
    return schedule_module(tvm.IRModule({gv: func}), tgt)[gv]


def measure_hand(tasks: list[Task], tgt, measurer: Measurer, work_dir: Path,
                  progress) -> dict[str, float | None]:
    """Cost of every task's hand schedule (also the reference output hash on esp32s3); written to
    ``baseline.json`` so that compile keeps the hand schedule where the search found nothing
    better."""
    mods = [task_module(hand_schedule(t.func, tgt)) for t in tasks]
    if measurer.references is not None:
        measurer.references.clear()   # the hand schedule defines what is correct
    results = measurer.measure(mods)
    hand, baseline = {}, {}
    for task, mod, res in zip(tasks, mods, results):
        cost = cost_of(res)
        if cost is None:
            progress(f"hand schedule of {task.name} failed to measure: {res.error_msg}")
        hand[task.key] = cost
        baseline[task.key] = {"kernel": task.name, "hand": cost if cost is not None else float("inf"),
                              "unit": measurer.unit}
    if measurer.references is not None:
        checksums = measurer.runner.checksums
        measurer.references.update({t.key: checksums[t.key] for t in tasks if t.key in checksums})
    (work_dir / BASELINE_FILE).write_text(json.dumps(baseline, indent=1) + "\n")
    total = sum(t.weight * hand[t.key] for t in tasks if hand[t.key] is not None)
    progress(f"hand schedules: {format_cost(total, measurer.unit)} over all tuned calls")
    return hand
