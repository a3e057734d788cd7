"""Tuned vs untuned: per task (the database's best against the hand schedule, measured by the same
runner) and end to end (the model compiled with and without the database)."""

from __future__ import annotations

import statistics
import time

import numpy as np

from schedules.tuning.database import best_record, record_cost

from .tasks import Task


def task_rows(tasks: list[Task], hand: dict[str, float | None], db, target, unit: str) -> list[dict]:
    """One row per task: hand and best tuned cost, speedup, and whether compile will use the
    record (only if it beats the hand schedule)."""
    rows = []
    for task in tasks:
        rec = best_record(db, task.func, target)
        tuned = None if rec is None else record_cost(rec)
        h = hand.get(task.key)
        used = tuned is not None and (h is None or tuned < h)
        rows.append({"task": task.name, "kernel": task.key, "calls": task.weight, "unit": unit,
                     "hand": h, "tuned": tuned, "used": used,
                     "speedup": (h / tuned) if used and h else 1.0,
                     "best": tuned if used else h})
    return rows


def weighted_total(rows: list[dict], key: str) -> float | None:
    """Sum over tasks of calls x cost (``key`` "hand" or "best"); None if a cost is missing."""
    if any(r[key] is None for r in rows):
        return None
    return sum(r["calls"] * r[key] for r in rows)


def end_to_end(compile_fn, target_name: str, x, runs: int = 20) -> dict:
    """Compile twice (hand schedules, then with the database) and measure both on input ``x``.

    Args:
        compile_fn: ``compile_fn(tuning_db_or_None) -> artifact``.
        target_name: "x86" (median wall time of ``runs`` calls of ``run``) or "esp32s3"
            (instructions of one ``simulate``; deterministic).
        x: the example input.
    Returns:
        ``{"unit", "untuned", "tuned", "speedup", "outputs_identical", "tuning"}``.
    """
    untuned, tuned = compile_fn(None), compile_fn(True)
    if target_name == "esp32s3":
        y0, s0 = untuned.simulate(x)
        y1, s1 = tuned.simulate(x)
        cost0, cost1, unit = s0["instructions"], s1["instructions"], "instructions"
        by_kind = {"untuned": s0["by_kind"], "tuned": s1["by_kind"]}
    else:
        cost0, y0 = _time_ms(untuned, x, runs)
        cost1, y1 = _time_ms(tuned, x, runs)
        unit, by_kind = "ms", None
    out = {"unit": unit, "untuned": cost0, "tuned": cost1, "speedup": cost0 / cost1,
           "outputs_identical": bool(np.array_equal(y0, y1)),
           "max_abs_diff": float(np.abs(np.asarray(y0) - np.asarray(y1)).max()),
           "tuning": tuned.report.get("tuning")}
    if by_kind is not None:
        out["by_kind"] = by_kind
    return out


def _time_ms(art, x, runs: int) -> tuple[float, np.ndarray]:
    y = art.run(x)      # warm-up (first call pays allocation and page faults)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        art.run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), y


def format_cost(v: float | None, unit: str) -> str:
    """A cost for people: seconds as ms, instruction counts with separators."""
    if v is None:
        return "-"
    return f"{v * 1e3:.4f} ms" if unit == "s" else f"{int(v):,} instr"


def format_report(report: dict) -> str:
    """The comparison as a text table."""
    unit = report["unit"]
    fmt = lambda v: format_cost(v, unit)  # noqa: E731
    lines = [f"tuned vs untuned ({report['target']}, per call)",
             f"  {'task':44s} {'calls':>5s} {'hand':>18s} {'tuned':>18s} {'speedup':>8s}"]
    for r in report["tasks"]:
        mark = "" if r["used"] else "  (hand kept)"
        lines.append(f"  {r['task'][:44]:44s} {r['calls']:5d} {fmt(r['hand']):>18s} "
                     f"{fmt(r['tuned']):>18s} {r['speedup']:7.2f}x{mark}")
    tot = report.get("tasks_total")
    if tot and tot["hand"] and tot["best"]:
        lines.append(f"  {'all tuned tasks (x calls)':44s} {'':5s} {fmt(tot['hand']):>18s} "
                     f"{fmt(tot['best']):>18s} {tot['hand'] / tot['best']:7.2f}x")
    e2e = report.get("end_to_end")
    if e2e:
        v = (lambda c: f"{c:.2f} ms") if e2e["unit"] == "ms" else (lambda c: f"{int(c):,} instr")
        lines.append(f"  end to end: untuned {v(e2e['untuned'])}, tuned {v(e2e['tuned'])} "
                     f"({e2e['speedup']:.2f}x); outputs identical: {e2e['outputs_identical']}")
    return "\n".join(lines)
