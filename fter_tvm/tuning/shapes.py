"""Tune ternary-matmul kernels by shape, without a model: ``python -m fter_tvm.tuning.shapes``.

The measured experiment behind the README's per-shape numbers: DeiT-Tiny's matmul shapes
(t=197 tokens; qkv 192->576, proj 192->192, fc1 192->768 + GELU, fc2 768->192 + residual;
the classifier head) tuned into one database, hand schedule vs best record per shape. The
database it writes applies to any model with these kernels (records are keyed by the kernel's
computation, not by layer names).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from schedules import compute
from schedules.tuning.space import design_space
from schedules.tuning.database import open_database, tvm_target

from ..targets import get_target
from ..tune import claim_work_dir, make_measurer, measure_hand
from .compare import format_report, task_rows
from .search import tune_task
from .tasks import Task

# (t, k, n, epilogue): DeiT-Tiny's ternary matmuls
DEIT_TINY = ((197, 192, 576, "none"), (197, 192, 192, "residual"), (197, 192, 768, "gelu"),
             (197, 768, 192, "residual"), (1, 192, 1000, "none"))


def tune_shapes(shapes, target: str, trials_per_shape: int, work_dir, seed: int = 0,
                progress=print) -> dict:
    """Tune one ``ternary_matmul(t, k, n, fmt, epilogue)`` task per shape; returns (and writes to
    ``work_dir/shapes_report.json``) the hand-vs-tuned rows."""
    tgt = get_target(target)
    work_dir = Path(work_dir)
    claim_work_dir(work_dir, tgt.name)
    tasks = []
    for t, k, n, epi in shapes:
        func = compute.ternary_matmul(t, k, n, tgt.pack_format, epi)
        name = compute.kernel_name("ternary_matmul", t=t, k=k, n=n, fmt=tgt.pack_format, epi=epi)
        tasks.append(Task(name, "ternary_matmul", func, 1, [name]))
    db = open_database(work_dir, create=True)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="fter_shapes_") as scratch:
        measurer = make_measurer(tgt, Path(scratch), None, None)
        hand = measure_hand(tasks, tgt, measurer, work_dir, progress)
        for i, task in enumerate(tasks):
            space = design_space(task.kind, tgt.name, tvm_target(tgt), task.params)
            tune_task(task, space, db, measurer, trials_per_shape, work_dir=work_dir,
                      seed=seed + i, progress=progress, label=f"[shape {i + 1}/{len(tasks)}]")
    report = {"target": tgt.name, "unit": measurer.unit, "tasks":
              task_rows(tasks, hand, db, measurer.target, measurer.unit),
              "seconds": round(time.time() - started, 1)}
    (work_dir / "shapes_report.json").write_text(json.dumps(report, indent=1))
    progress(format_report(report))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("esp32s3", "x86"), default="esp32s3")
    parser.add_argument("--trials", type=int, default=16, help="measurements per shape")
    parser.add_argument("--work-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    tune_shapes(DEIT_TINY, args.target, args.trials, args.work_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
