"""Both cores: the kernel split (`runtime.split_workers`), the two-worker host run (pthreads), the
ThreadSanitizer build, the edge splits of every range parameter, and the serial simulator's
two-core critical path.

Two-worker outputs must equal one-worker outputs bit for bit: the halves of a split stage write
disjoint ranges, and every micro-kernel keeps its scratch per worker.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import tvm
from tvm.script import tirx as T

import fter_tvm as fc
from fter_tvm.data import digits_split
from fter_tvm.models import load_demo_model
from runtime import split_workers
from runtime.host_sim import SANITIZE_ENV, ProgramError, build_host, run_host
from test_kernels_c import require
from test_sanitize import tiny_vit

EDGE_SPLITS = {"empty first half": "0", "one iteration first": "1",
               "one iteration last": "(e)-1", "empty second half": "(e)"}


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


# -- the pass, on hand-written kernels --------------------------------------------------------------
@T.prim_func(s_tir=True)
def independent(a: T.Buffer((8, 4), "float32"), b: T.Buffer((8, 4), "float32")):
    for i, j in T.grid(8, 4):
        with T.sblock("scale"):
            vi, vj = T.axis.remap("SS", [i, j])
            b[vi, vj] = a[vi, vj] * T.float32(2.0)


@T.prim_func(s_tir=True)
def reduces_over_outer(a: T.Buffer((8, 4), "float32"), b: T.Buffer((4,), "float32")):
    for i, j in T.grid(8, 4):
        with T.sblock("sum"):
            vi, vj = T.axis.remap("RS", [i, j])
            with T.init():
                b[vj] = T.float32(0.0)
            b[vj] = b[vj] + a[vi, vj]


@T.prim_func(s_tir=True)
def reads_previous_iteration(a: T.Buffer((8,), "float32"), b: T.Buffer((8,), "float32")):
    for i in range(7):
        with T.sblock("scan"):
            vi = T.axis.spatial(7, i)
            b[vi + 1] = b[vi] + a[vi]


@T.prim_func(s_tir=True)
def writes_one_place(a: T.Buffer((8,), "float32"), b: T.Buffer((1,), "float32")):
    for i in range(8):
        with T.sblock("last"):
            vi = T.axis.spatial(8, i)
            b[0] = a[vi]


@T.prim_func(s_tir=True)
def two_stages(a: T.Buffer((8, 4), "float32"), c: T.Buffer((8, 4), "float32")):
    s = T.sblock_alloc_buffer((8, 4))
    for j, i in T.grid(4, 8):          # stage 0 by columns
        with T.sblock("first"):
            vi, vj = T.axis.remap("SS", [i, j])
            s[vi, vj] = a[vi, vj] + T.float32(1.0)
    for i, j in T.grid(8, 4):          # stage 1 by rows reads what other columns wrote
        with T.sblock("second"):
            vi, vj = T.axis.remap("SS", [i, j])
            c[vi, vj] = s[vi, 3 - vj]


@T.prim_func(s_tir=True)
def folds_max_into_an_argument(a: T.Buffer((4, 8), "float32"), m: T.Buffer((8,), "float32")):
    for j, i in T.grid(4, 8):   # a copy per worker is only made of kernel-internal scratch
        with T.sblock("fold"):
            vj, vi = T.axis.remap("RS", [j, i])
            m[vi] = T.max(m[vi], a[vj, vi])


@T.prim_func(s_tir=True)
def folds_max(a: T.Buffer((4, 8), "float32"), c: T.Buffer((8,), "float32")):
    m = T.sblock_alloc_buffer((8,))
    for i in range(8):
        with T.sblock("init"):
            vi = T.axis.spatial(8, i)
            m[vi] = T.float32(0.0)
    for j, i in T.grid(4, 8):          # over row blocks j: a max-reduction into m
        with T.sblock("fold"):
            vj, vi = T.axis.remap("RS", [j, i])
            m[vi] = T.max(m[vi], a[vj, vi])
    for i in range(8):
        with T.sblock("use"):
            vi = T.axis.spatial(8, i)
            c[vi] = m[vi] * T.float32(2.0)


def test_split_independent_loop():
    out, plans = split_workers.split_kernel(independent)
    assert [p.extent for p in plans] == [8]
    assert [str(p.name) for p in out.params[-3:]] == list(split_workers.RANGE_PARAMS)
    assert [int(e) for e in out.attrs[split_workers.STAGES_ATTR]] == [8]
    assert int(out.attrs[split_workers.SCRATCH_ATTR]) == 0


@pytest.mark.parametrize("func, reason", [
    (reduces_over_outer, "reduces over i"),
    (reads_previous_iteration, "share the writes to b"),
    (writes_one_place, "share the writes to b"),
    (folds_max_into_an_argument, "reduces over j"),
])
def test_no_split_where_iterations_depend(func, reason):
    out, plans = split_workers.split_kernel(func)
    assert out.same_as(func)   # untouched: runs whole on one worker
    assert [p.extent for p in plans] == [0] and reason in plans[0].reason, plans


def test_stages_split_apart_and_shared_scratch_becomes_a_parameter():
    out, plans = split_workers.split_kernel(two_stages)
    assert [p.extent for p in plans] == [4, 8]
    assert int(out.attrs[split_workers.SCRATCH_ATTR]) == 1   # s, used by both stages
    assert len(out.params) == 2 + 1 + 3
    assert not out.body.block.alloc_buffers


def test_split_kernel_runs_by_stage_and_range():
    """The rewritten two-stage kernel, built with TVM for the CPU: stage by stage, in halves,
    it computes what stage -1 (everything) does."""
    out, _ = split_workers.split_kernel(two_stages)
    lib = tvm.compile(tvm.IRModule({"main": out.with_attr("global_symbol", "main")}),
                      target={"kind": "llvm"})
    a = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    dev = tvm.cpu()
    ta, s, whole, halves = (tvm.runtime.tensor(np.zeros((8, 4), "float32"), dev) for _ in range(4))
    ta.copyfrom(a)
    lib["main"](ta, whole, s, -1, 0, 2**31 - 1)
    for stage, extent, split in ((0, 4, 1), (1, 8, 5)):
        lib["main"](ta, halves, s, stage, 0, split)
        lib["main"](ta, halves, s, stage, split, extent)
    np.testing.assert_array_equal(halves.numpy(), whole.numpy())
    np.testing.assert_array_equal(whole.numpy(), (a + 1)[:, ::-1])


def run_by_stages(func, arrays, splits):
    """Build `func` (split) for the CPU; run it once whole (stage -1) and once stage by stage,
    each split stage as two halves at `splits[stage]`; returns both results (copies)."""
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                      target={"kind": "llvm"})
    stages = [int(e) for e in func.attrs[split_workers.STAGES_ATTR]]
    results = []
    for by_stage in (False, True):
        ts = [tvm.runtime.tensor(a.copy(), tvm.cpu()) for a in arrays]
        if not by_stage:
            lib["main"](*ts, -1, 0, 2**31 - 1)
        for k, extent in enumerate(stages if by_stage else []):
            if extent:
                lib["main"](*ts, k, 0, splits[k])
                lib["main"](*ts, k, splits[k], extent)
            else:
                lib["main"](*ts, k, 0, 2**31 - 1)
        results.append([t.numpy() for t in ts])
    return results


@pytest.mark.parametrize("split", [0, 1, 3, 4])
def test_max_reduction_over_the_split_loop_folds_per_worker(split):
    out, plans = split_workers.split_kernel(folds_max)
    assert [p.extent for p in plans] == [8, 4, 0, 8]
    assert plans[2].merge and [b.name for b in plans[1].private] == ["m"]
    a = np.random.default_rng(1).standard_normal((4, 8)).astype("float32")
    zeros = [np.zeros(8, "float32")] * 3
    whole, staged = run_by_stages(out, [a, *zeros], {0: 4, 1: split, 3: 4})
    np.testing.assert_array_equal(staged[1], whole[1])
    np.testing.assert_array_equal(whole[1], 2 * np.maximum(a.max(axis=0), 0))


# -- whole models on the host -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    x = digits_split()[2][:3]
    return fc.compile(load_demo_model(), "esp32s3", (x[:1],)), [x[i:i + 1] for i in range(len(x))]


@pytest.fixture(scope="module")
def tiny():
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(1, 1, 16, 16, generator=g) for _ in range(2)]
    return fc.compile(tiny_vit(), "esp32s3", (xs[0],)), xs


def split_kinds(art) -> set[str]:
    return {c["name"].split("_")[0] for c in art.report["kernel_calls"] if any(c["stages"])}


@pytest.mark.parametrize("model", ["digits", "tiny"])
def test_two_workers_bit_identical(model, request):
    require("host")
    art, xs = request.getfixturevalue(model)
    # the heavy kernels are split (the attention block, the MLP, the projections, LayerNorm)
    assert {"int8", "ternary", "patch"} <= split_kinds(art), art.report["kernel_calls"]
    for x in xs:
        np.testing.assert_array_equal(bits(art.run(x, workers=2)), bits(art.run(x)))


@pytest.mark.parametrize("where", EDGE_SPLITS.values(), ids=EDGE_SPLITS.keys())
def test_edge_splits(tiny, where):
    """Every split stage of every kernel with its halves at the edges: an empty half
    (begin = end) and a half of a single iteration."""
    require("host")
    art, xs = tiny
    exe = art._binary("host", 2, {"FTER_SPLIT_POINT(e)": where})
    out = np.frombuffer(run_host(exe, xs[0].numpy().tobytes()).output, np.float32)
    np.testing.assert_array_equal(bits(out), bits(art.run(xs[0])).reshape(-1))


def test_thread_sanitizer_clean_on_demo_model(digits, monkeypatch):
    require("host")
    art, xs = digits
    monkeypatch.setenv(SANITIZE_ENV, "thread")
    tsan = art.run(xs[0], workers=2)
    monkeypatch.delenv(SANITIZE_ENV)
    np.testing.assert_array_equal(bits(tsan), bits(art.run(xs[0])))


# Worker 0 waits before its write so that worker 1's lands while both halves are running (TSan
# reports the races of the interleaving it observes; with no wait the caller would finish first and
# its later mutex hand-over would order the two writes).
RACY = r"""
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>
#include "fter_parallel.h"
#include "harness.h"
static int32_t shared;
static void bump(int32_t w, void *ctx) {
  (void)ctx;
  struct timespec wait = {0, 200000000};
  if (w == 0) nanosleep(&wait, 0);
  shared += w + 1;
}
int main(void) { fter_parallel_for(bump, 0); fter_count("shared", (uint32_t)shared); return 0; }
"""


def test_thread_sanitizer_catches_a_race(tmp_path):
    """The control: both workers writing one variable is a finding (so a clean run means something)."""
    require("host")
    (tmp_path / "racy.c").write_text(RACY)
    defines = {"FTER_WORKERS": 2}
    assert run_host(build_host([tmp_path / "racy.c"], tmp_path / "plain", defines)).counters == \
        {"shared": 3}
    exe = build_host([tmp_path / "racy.c"], tmp_path / "tsan", defines, sanitize="thread")
    with pytest.raises(ProgramError, match="data race"):
        run_host(exe)


# -- the serial simulator counts the halves ----------------------------------------------------------
@pytest.mark.xtensa
def test_lx106_critical_path(digits):
    art, xs = digits
    y1, one = art.simulate(xs[0], core="lx106", workers=1)
    y2, two = art.simulate(xs[0], core="lx106", workers=2)
    np.testing.assert_array_equal(bits(y2), bits(y1))
    assert one["critical_path_instructions"] == one["instructions"]
    assert two["critical_path_instructions"] < 0.55 * one["instructions"]   # 0.506 measured
    # the split costs little: two calls per split stage instead of one call per kernel
    assert two["instructions"] < 1.01 * one["instructions"]
    for call in two["per_call"]:
        assert 0 < call["critical_path_instructions"] <= call["instructions"]
