"""The host and Xtensa runners, and TVM-generated C linked with fter's runtime.

Host tests are marked ``cc``, simulator tests ``xtensa``; missing tools skip,
except under CI=true where they fail.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from runtime import cbuild, host_sim, packing, xtensa_sim
from runtime.cbuild import CBuildError, ToolMissingError
from runtime.host_sim import ProgramError, build_host, run_host
from runtime.xtensa_sim import build_xtensa, run_xtensa


def require(target: str) -> None:
    missing = cbuild.missing_tools(target)
    if missing:
        msg = f"{target} tests need {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


RUNNERS = {
    "host": (build_host, run_host),
    "xtensa": (build_xtensa, lambda exe, data=b"", **kw: run_xtensa(exe, data, **kw)),
}
TARGETS = [pytest.param("host", marks=pytest.mark.cc), pytest.param("xtensa", marks=pytest.mark.xtensa)]

ECHO_C = r"""
#include <stdint.h>
#include "harness.h"
int main(int argc, char **argv) {
  (void)argc; (void)argv;
  uint8_t buf[5];
  if (fter_read_input(buf, 5) != 0) return 7;
  for (int i = 0; i < 5; ++i) buf[i] = (uint8_t)(buf[i] + 1);
  fter_write_output(buf, 3);
  fter_write_output(buf + 3, 2);
  fter_log("echo ");
  fter_log_int(-42);
  fter_log("\n");
  fter_count("mark", 4);
  return buf[0] == 100 ? 3 : 0;  /* input 99 asks for a failing exit */
}
"""


# ---------------------------------------------------------------- protocol and errors

@pytest.mark.parametrize("target", TARGETS)
def test_io_protocol(tmp_path, target):
    require(target)
    build, run = RUNNERS[target]
    exe = build([write(tmp_path / "echo.c", ECHO_C)], tmp_path / "b")
    res = run(exe, bytes([1, 2, 3, 4, 5]))
    assert res.output == bytes([2, 3, 4, 5, 6])
    assert "echo -42" in res.stdout
    scale = xtensa_sim.INSTRUCTIONS_PER_CCOUNT if target == "xtensa" else 1
    assert res.counters["mark"] == 4 * scale


@pytest.mark.parametrize("target", TARGETS)
def test_nonzero_exit_raises_with_output(tmp_path, target):
    require(target)
    build, run = RUNNERS[target]
    exe = build([write(tmp_path / "echo.c", ECHO_C)], tmp_path / "b")
    with pytest.raises(ProgramError) as err:
        run(exe, bytes([99, 0, 0, 0, 0]))
    assert err.value.returncode == 3
    assert "status 3" in str(err.value) and "echo -42" in str(err.value)
    with pytest.raises(ProgramError) as err:  # missing input: the program's own error code
        run(exe, b"")
    assert err.value.returncode == 7


@pytest.mark.parametrize("target", TARGETS)
def test_compile_error_names_file(tmp_path, target):
    require(target)
    build, _ = RUNNERS[target]
    bad = write(tmp_path / "bad.c", "int main(void) { return undefined_thing; }\n")
    with pytest.raises(CBuildError) as err:
        build([bad], tmp_path / "b")
    assert err.value.file == bad.resolve()
    assert "undefined_thing" in err.value.stderr and "bad.c" in str(err.value)


def test_missing_tools_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    with pytest.raises(ToolMissingError, match="gcc-xtensa-lx106"):
        build_xtensa([tmp_path / "x.c"], tmp_path / "b")
    with pytest.raises(ToolMissingError, match="'cc'.*apt-get install gcc"):
        build_host([tmp_path / "x.c"], tmp_path / "b")
    with pytest.raises(ToolMissingError, match="qemu-system-xtensa.*qemu-system-misc"):
        run_xtensa(tmp_path / "x.elf", b"")
    assert set(cbuild.missing_tools("xtensa")) == {"xtensa-lx106-elf-gcc", "qemu-system-xtensa"}


def test_parse_counters():
    text = "hello\nFTER_COUNT a 3\nFTER_COUNT b x\nFTER_COUNT c 10\n"
    assert host_sim.parse_counters(text, 25) == {"a": 75, "c": 250}


LOOP_C = r"""
#include <stdint.h>
#include "harness.h"
/* A loop of exactly 2 instructions per iteration (addi, bnez) on Xtensa. */
static void spin(int32_t n) {
#ifdef __XTENSA__
  __asm__ volatile("1: addi %0, %0, -1\n bnez %0, 1b" : "+r"(n));
#else
  for (volatile int32_t i = 0; i < n; ++i) {
  }
#endif
}
int main(int argc, char **argv) {
  (void)argc; (void)argv;
  uint32_t t0 = fter_cycles();
  spin(1000000);
  fter_count("spin", fter_cycles() - t0);
  return 0;
}
"""


@pytest.mark.xtensa
def test_instruction_count_calibrated(tmp_path):
    require("xtensa")
    elf = build_xtensa([write(tmp_path / "loop.c", LOOP_C)], tmp_path / "b")
    res = run_xtensa(elf, b"")
    assert abs(res.counters["spin"] - 2_000_000) <= 20_000  # within 1 %
    assert res[2] == res.counters["total"] >= res.counters["spin"]


@pytest.mark.xtensa
def test_exception_and_timeout(tmp_path):
    require("xtensa")
    crash = write(tmp_path / "crash.c", r"""
#include <stdint.h>
int main(int argc, char **argv) {
  (void)argc; (void)argv;
  __asm__ volatile("ill");  /* illegal instruction exception */
  return 0;
}
""")
    with pytest.raises(ProgramError, match="FTER_EXCEPTION") as err:
        run_xtensa(build_xtensa([crash], tmp_path / "c"), b"")
    assert err.value.returncode == 128  # 128 + EXCCAUSE 0 (IllegalInstruction)
    hang = write(tmp_path / "hang.c", "int main(int c, char **v) { (void)c; (void)v; for (;;) {} }\n")
    with pytest.raises(ProgramError, match="timed out"):
        run_xtensa(build_xtensa([hang], tmp_path / "h"), b"", timeout=2)


# ---------------------------------------------------------------- TVM-generated C

TVM_MAIN_C = r"""
/* Calls TVM's packed entry points the way the AOT executor does. */
#include <stdint.h>
#include "fter_ffi.h"
#include "fter_runtime.h"
#include "harness.h"

FTER_DECLARE_PACKED(f);
FTER_DECLARE_PACKED(g);

static float a[64 * 300], b[64 * 300];
static int8_t x[64];
static uint8_t w[16 * 16];
static int32_t acc[16];
static int64_t shape_ab[2] = {64, 300}, shape_x[1] = {64}, shape_w[2] = {16, 16}, shape_acc[1] = {16};

int main(int argc, char **argv) {
  (void)argc; (void)argv;
  if (fter_read_input(a, sizeof a) || fter_read_input(x, sizeof x) || fter_read_input(w, sizeof w)) return 2;
  DLTensor ta = FTER_DLTENSOR(a, 2, shape_ab, kDLFloat, 32);
  DLTensor tb = FTER_DLTENSOR(b, 2, shape_ab, kDLFloat, 32);
  static DLTensor tx = FTER_DLTENSOR(x, 1, shape_x, kDLInt, 8);
  static DLTensor tw = FTER_DLTENSOR(w, 2, shape_w, kDLUInt, 8);
  static DLTensor tacc = FTER_DLTENSOR(acc, 1, shape_acc, kDLInt, 32);
  TVMFFIAny args_f[2];
  fter_ffi_set_tensor(&args_f[0], &ta);
  fter_ffi_set_tensor(&args_f[1], &tb);
  static TVMFFIAny args_g[3] = {FTER_FFI_TENSOR_ARG(&tx), FTER_FFI_TENSOR_ARG(&tw), FTER_FFI_TENSOR_ARG(&tacc)};
  uint32_t t0 = fter_cycles();
  if (FTER_CALL_PACKED(__tvm_ffi_f, args_f) != 0) {
    fter_log(fter_last_error());
    fter_log("\n");
    return 1;
  }
  fter_count("f", fter_cycles() - t0);
  if (FTER_CALL_PACKED(__tvm_ffi_g, args_g) != 0) return 1;
  if (fter_workspace_used() != 0) return 4;
  fter_write_output(b, sizeof b);
  fter_write_output(acc, sizeof acc);
  return 0;
}
"""


def tvm_generated_c() -> str:
    """C for f (exp/erf/sqrt/round/tanh/floor + a 75 KiB workspace) and g (calls fter_tmm_b3)."""
    tvm = pytest.importorskip("tvm")
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def f(a: T.Buffer((64, 300), "float32"), b: T.Buffer((64, 300), "float32")):
        T.func_attr({"global_symbol": "f"})
        tmp = T.alloc_buffer((64, 300), "float32")
        for i, j in T.grid(64, 300):
            with T.sblock("t"):
                vi, vj = T.axis.remap("SS", [i, j])
                tmp[vi, vj] = (T.exp(a[vi, vj]) + T.erf(a[vi, vj]) + T.sqrt(T.max(a[vi, vj], T.float32(0)))
                               + T.round(a[vi, vj] * T.float32(3)) + T.tanh(a[vi, vj])
                               + T.floor(a[vi, vj] * T.float32(2)))
        for i, j in T.grid(64, 300):
            with T.sblock("u"):
                vi, vj = T.axis.remap("SS", [i, j])
                b[vi, vj] = tmp[vi, vj]

    @T.prim_func(s_tir=True)
    def g(x: T.Buffer((64,), "int8"), w: T.Buffer((16, 16), "uint8"), acc: T.Buffer((16,), "int32")):
        T.func_attr({"global_symbol": "g"})
        T.evaluate(T.call_extern("void", "fter_tmm_b3", acc.data, x.data, w.data, 64, 16, 16))

    with tvm.transform.PassContext(config={"tirx.disable_assert": True}):
        ex = tvm.compile(tvm.IRModule({"f": f, "g": g}), target=tvm.target.Target({"kind": "c"}))
    return ex.mod.inspect_source()


@pytest.fixture(scope="module")
def tvm_program(tmp_path_factory):
    d = tmp_path_factory.mktemp("tvm_c")
    rng = np.random.default_rng(0)
    a = rng.uniform(-3, 3, (64, 300)).astype(np.float32)
    a[0, :6] = [0.5, 1.5, -0.5, -2.5, 1 / 6, 0.0]
    x = rng.integers(-128, 128, 64).astype(np.int8)
    wt = rng.integers(-1, 2, (16, 64)).astype(np.int8)
    w = np.zeros((16, 16), np.uint8)
    w[:, :13] = packing.pack_b3(wt)
    blob = a.tobytes() + x.tobytes() + w.tobytes()
    want_acc = packing.ternary_matmul_ref(x[None], wt)[0]
    return d, write(d / "kernels.c", tvm_generated_c()), write(d / "main.c", TVM_MAIN_C), blob, a, want_acc


def check_tvm_output(output: bytes, a: np.ndarray, want_acc: np.ndarray) -> None:
    from math import erf
    b = np.frombuffer(output[: a.nbytes], np.float32).reshape(a.shape)
    acc = np.frombuffer(output[a.nbytes:], np.int32)
    ad = a.astype(np.float64)
    ref = (np.exp(ad) + np.vectorize(erf)(ad) + np.sqrt(np.maximum(ad, 0))
           + np.rint((a * np.float32(3)).astype(np.float64)) + np.tanh(ad) + np.floor((a * np.float32(2))))
    np.testing.assert_allclose(b, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(acc, want_acc)


@pytest.mark.parametrize("target", TARGETS)
def test_tvm_generated_c_runs(tvm_program, target):
    require(target)
    d, kernels, main, blob, a, want_acc = tvm_program
    build, run = RUNNERS[target]
    exe = build([main, kernels], d / target, {"FTER_WORKSPACE_BYTES": 128 * 1024}, generated=[kernels])
    res = run(exe, blob)
    check_tvm_output(res.output, a, want_acc)
    (d / f"{target}.out").write_bytes(res.output)


@pytest.mark.xtensa
def test_tvm_generated_c_identical_on_host_and_xtensa(tvm_program):
    require("host")
    require("xtensa")
    d, kernels, main, blob, a, _ = tvm_program
    outs = []
    for target in ("host", "xtensa"):
        build, run = RUNNERS[target]
        exe = build([main, kernels], d / f"{target}_same", {"FTER_WORKSPACE_BYTES": 128 * 1024},
                    generated=[kernels])
        outs.append(run(exe, blob).output)
    assert outs[0] == outs[1]


@pytest.mark.cc
def test_workspace_exhaustion_reports_error(tvm_program):
    require("host")
    d, kernels, main, blob, _, _ = tvm_program
    exe = build_host([main, kernels], d / "small_ws", {"FTER_WORKSPACE_BYTES": 4096}, generated=[kernels])
    with pytest.raises(ProgramError, match="MemoryError: workspace exhausted") as err:
        run_host(exe, blob)
    assert err.value.returncode == 1
