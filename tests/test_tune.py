"""Autotuning: databases written by fter_tvm.tune, applied by compile, resumed, measured over RPC,
failures recorded as errors. A tiny FTerViT and a handful of trials; Xtensa tests are marked."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
import tvm
import tvm_ffi

from fter_tvm.compile import compile as fter_compile
from fter_tvm.compile import fuse_model
from fter_tvm.models.vit import FTerViT, FTerViTConfig
from fter_tvm.tune import tune
from fter_tvm.tuning.measure import esp32s3_measurer, x86_measurer
from fter_tvm.tuning.tasks import allocate_trials, extract_tasks
from schedules import compute
from schedules.tuning.space import design_space, has_choices
from schedules.tuning.database import (BASELINE_FILE, DB_RECORD_FILE, DB_WORKLOAD_FILE, called_kernels,
                             open_database, replay_record, task_module)

MATMUL = ["ternary_matmul"]     # tests tune the plain matmuls only: fewer tasks, same machinery
TINY = dict(img_size=16, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=1,
            num_heads=2, mlp_ratio=2)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FTerViT(FTerViTConfig(**TINY)).eval()


@pytest.fixture(scope="module")
def x():
    return torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def tune_tiny(model, x, target, trials, work_dir, **kw) -> dict:
    return tune(model, target, trials=trials, work_dir=work_dir, example_inputs=(x,), compare=False,
                kinds=MATMUL, **kw)


def records(work_dir) -> list[tuple[int, str]]:
    """(workload index, trace JSON) of every record line in the database."""
    out = []
    for line in (work_dir / DB_RECORD_FILE).read_text().splitlines():
        wl, rec = json.loads(line)
        out.append((wl, json.dumps(rec[0])))
    return out


def force_records(work_dir) -> None:
    # compile keeps the hand schedule unless a record beats it; a handful of trials need not
    # find one, so tests of the "records are used" path drop the measured baseline
    (work_dir / BASELINE_FILE).unlink()


# ---------------------------------------------------------------- pure Python

def test_allocate_trials_split_and_floor():
    assert allocate_trials(10, [1, 1]) == [5, 5]
    assert sum(allocate_trials(17, [5, 1, 1, 3])) == 17
    assert min(allocate_trials(20, [100, 1, 1])) == 2          # every task gets a couple
    assert allocate_trials(3, [1, 1, 1, 1, 1]) == [1, 1, 1, 0, 0]


def test_tasks_are_distinct_kernels_weighted_by_calls(model, x):
    fused, _ = fuse_model(model, "esp32s3", (x,))
    tasks, others = extract_tasks(fused)
    assert tasks and not others
    assert sum(t.weight for t in tasks) == sum(called_kernels(fused).values())
    for i, a in enumerate(tasks):
        assert all(not tvm_ffi.structural_equal(a.func, b.func) for b in tasks[i + 1:])
    only_mm, others = extract_tasks(fused, kinds=["ternary_matmul"])
    assert {t.kind for t in only_mm} == {"ternary_matmul"} and others


def test_esp32s3_spaces_are_the_hand_schedules_with_choices(model, x):
    fused, _ = fuse_model(model, "esp32s3", (x,))
    tasks, _ = extract_tasks(fused)
    tunable = [t for t in tasks if has_choices(design_space(t.kind, "esp32s3"), t.mod)]
    assert any(t.kind == "ternary_matmul" for t in tunable)
    assert all(t.kind != "ternary_layernorm" for t in tunable)     # nothing to choose there


def test_tune_refuses_a_directory_of_another_target(model, x, tmp_path):
    (tmp_path / "target.json").write_text('{"target": "x86"}')
    with pytest.raises(ValueError, match="x86 tuning database"):
        tune_tiny(model, x, "esp32s3", 1, tmp_path)


# ---------------------------------------------------------------- esp32s3 (Xtensa ISS)

@pytest.mark.xtensa
def test_esp32s3_database_applied_bit_identical(model, x, tmp_path):
    rep = tune_tiny(model, x, "esp32s3", 6, tmp_path)
    assert (tmp_path / DB_WORKLOAD_FILE).is_file() and len(records(tmp_path)) == 6
    assert rep["unit"] == "instructions" and all(r["hand"] > 0 for r in rep["tasks"])
    untuned = fter_compile(model, "esp32s3", (x,))
    force_records(tmp_path)
    art = fter_compile(model, "esp32s3", (x,), tuning_db=tmp_path)
    applied = art.report["tuning"]["applied"]
    assert applied and set(applied) <= {n for r in rep["tasks"] if r["tuned"] for n in [r["task"]]}
    y = art.run(x)
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(y - ref).max() < 1e-2
    assert y.tobytes() == untuned.run(x).tobytes()      # same numerics, other loop nest
    y_sim, stats = art.simulate(x)
    assert y_sim.tobytes() == y.tobytes()


@pytest.mark.xtensa
def test_esp32s3_resume_keeps_records_and_measures_nothing_twice(model, x, tmp_path):
    tune_tiny(model, x, "esp32s3", 3, tmp_path)
    first = records(tmp_path)
    rep = tune_tiny(model, x, "esp32s3", 6, tmp_path)
    second = records(tmp_path)
    assert second[:len(first)] == first and len(second) > len(first)
    assert sum(t["new"] for t in rep["trials"].values()) == len(second) - len(first)
    # no schedule was measured twice: every record replays to a different module
    db = open_database(tmp_path)
    fused, _ = fuse_model(model, "esp32s3", (x,))
    tasks, _ = extract_tasks(fused)
    seen = set()
    for task in tasks:
        for rec in db.get_all_tuning_records():
            if tvm_ffi.structural_equal(rec.workload.mod, task.mod):
                h = tvm_ffi.structural_hash(replay_record(task.func, rec).mod)
                assert h not in seen
                seen.add(h)
    assert len(seen) == len(second)


@pytest.mark.xtensa
def test_esp32s3_failing_candidates_are_error_results(tmp_path):
    m = esp32s3_measurer(tmp_path / "b")
    good = task_module(compute.ternary_matmul(3, 16, 8, "b3", "none"))
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def unlinkable(a: T.Buffer((4,), "int32")):
        T.evaluate(T.call_extern("void", "fter_no_such_kernel", a.data))

    results = m.measure([good, task_module(unlinkable)])
    assert results[0].error_msg is None and results[0].run_secs[0] > 0
    assert "fter_no_such_kernel" in results[1].error_msg
    # a candidate computing something else than the hand schedule is an error too
    from schedules.tuning.database import kernel_key

    m.references[kernel_key(good["main"])] = 12345
    assert "wrong result" in m.measure([good])[0].error_msg


# ---------------------------------------------------------------- x86

def test_x86_database_applied_matches_torch(model, x, tmp_path):
    rep = tune_tiny(model, x, "x86", 2, tmp_path)
    assert rep["unit"] == "s" and len(records(tmp_path)) == 2
    force_records(tmp_path)
    art = fter_compile(model, "x86", (x,), tuning_db=tmp_path)
    assert art.report["tuning"]["applied"]
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(art.run(x) - ref).max() < 1e-2


def test_x86_failing_candidates_are_error_results():
    m = x86_measurer(tvm.target.Target({"kind": "llvm"}), timeout=30)
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def unlinkable(a: T.Buffer((4,), "float32")):       # builds; fails when loaded and run
        T.evaluate(T.call_extern("void", "fter_no_such_function", a.data))

    @T.prim_func(s_tir=True)
    def unbuildable(a: T.Buffer((4,), "float32")):      # LLVM rejects the intrinsic's types
        a[0] = T.call_llvm_pure_intrin("float32", "llvm.sqrt", T.int32(1))

    results = m.measure([task_module(unlinkable), task_module(unbuildable)])
    assert all(r.error_msg and r.run_secs is None for r in results)
    assert "llvm.sqrt" in results[1].error_msg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_x86_rpc_tracker_loopback(model, x, tmp_path):
    from tvm.rpc.server import Server
    from tvm.rpc.tracker import Tracker

    port = _free_port()
    tracker = Tracker("127.0.0.1", port=port, port_end=port + 50, silent=True)
    server = Server("127.0.0.1", port=tracker.port + 51, port_end=tracker.port + 100, key="fter-test",
                    tracker_addr=("127.0.0.1", tracker.port), silent=True)
    try:
        rep = tune_tiny(model, x, "x86", 2, tmp_path, rpc_tracker=f"127.0.0.1:{tracker.port}",
                        rpc_key="fter-test")
        measured = [r for r in rep["tasks"] if r["tuned"] is not None]
        assert measured and all(r["hand"] > 0 for r in rep["tasks"])
        assert len(records(tmp_path)) == 2
    finally:
        server.terminate()
        tracker.terminate()


# ---------------------------------------------------------------- CLI

@pytest.mark.xtensa
def test_cli_tunes_the_demo_checkpoint(tmp_path, capsys):
    from pathlib import Path

    from fter_tvm.__main__ import main

    ckpt = Path(__file__).resolve().parents[1] / "fter_tvm" / "checkpoints" / "digits_fter_vit.pt"
    args = ["tune", str(ckpt), "--target", "esp32s3", "--trials", "2", "--work-dir", str(tmp_path),
            "--kinds", "ternary_matmul", "--no-compare"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "hand schedules:" in out and "tuned vs untuned" in out and str(tmp_path) in out
    assert len(records(tmp_path)) == 2
    with pytest.raises(SystemExit):
        main(["tune", str(ckpt), "--target", "x86", "--rpc-tracker", "localhost:9190"])
