"""AOT C executor (runtime/lower.py, program.py, aot.py): torch models -> standalone C.

The generated C is built with host gcc (marker ``cc``) and in the Xtensa simulator (marker
``xtensa``) and compared with PyTorch and with TVM's Relax VM. Missing tools skip, except under
CI=true where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import tvm
from tvm import relax
from tvm.relax.frontend.torch import from_exported_program
from tvm.script import ir as I
from tvm.script import relax as R
from tvm.script import tirx as T

from runtime import aot, cbuild, lower
from runtime.program import AotProgram, extract_program
from runtime.host_sim import ProgramError, build_host, run_host
from runtime.xtensa_sim import build_xtensa, run_xtensa

TOL = 1e-4

MAIN_C = r"""
#include "harness.h"
#include "fter_runtime.h"
#include "fter_model.h"

static float in[FTER_INPUT_SIZE], out[FTER_OUTPUT_SIZE];

#ifdef FTER_PROFILE
static int begun, ended;
void fter_profile_begin(int idx) { (void)idx; ++begun; }
void fter_profile_end(int idx, int kind) {
  ++ended;
  fter_log(fter_kernel_names[idx]);
  fter_log(kind == FTER_KIND_KERNEL ? " kernel\n" : " copy\n");
}
#endif

int main(void) {
  int rc;
  if (fter_read_input(in, sizeof in) != 0) return 2;
  rc = fter_model_run(in, out);
  if (rc != 0) {
    fter_log("FAILED ");
    fter_log(fter_model_last_error());
    fter_log(" ");
    fter_log(fter_last_error());
    fter_log("\n");
    return 3;
  }
  if (fter_write_output(out, sizeof out) != 0) return 4;
  fter_count("workspace_peak", (uint32_t)fter_workspace_peak());
#ifdef FTER_PROFILE
  fter_count("profiled_calls", (uint32_t)(begun == ended ? begun : -1));
#endif
  return 0;
}
"""


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = f"needs {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


# ----------------------------------------------------------------------------- test models

class Mlp(torch.nn.Module):
    """Linear -> LayerNorm -> GELU -> reshape/permute -> Linear -> softmax."""

    def __init__(self):
        super().__init__()
        self.l1, self.ln, self.l2 = torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 8)

    def forward(self, x):
        y = torch.nn.functional.gelu(self.ln(self.l1(x)))
        y = y.reshape(1, 4, 4, 8).permute(0, 2, 1, 3).reshape(1, 4, 32)
        return torch.softmax(self.l2(y), -1)


class Residual(torch.nn.Module):
    """Two residual branches of different widths: buffers live across several kernels."""

    def __init__(self, d=32):
        super().__init__()
        self.ln1, self.f1, self.f2 = torch.nn.LayerNorm(d), torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
        self.ln2, self.g1, self.g2 = torch.nn.LayerNorm(d), torch.nn.Linear(d, 2 * d), torch.nn.Linear(2 * d, d)
        self.head = torch.nn.Linear(d, 10)

    def forward(self, x):
        x = x + self.f2(torch.nn.functional.gelu(self.f1(self.ln1(x))))
        x = x + self.g2(torch.relu(self.g1(self.ln2(x))))
        return self.head(x.mean(1))


class Attention(torch.nn.Module):
    """cls-token concat, qkv unbind, softmax attention, int64 `take`, output reshaped."""

    def __init__(self, d=32, heads=2):
        super().__init__()
        self.h, self.qkv, self.proj = heads, torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.ln, self.cls = torch.nn.LayerNorm(d), torch.nn.Parameter(torch.randn(1, 1, d))

    def forward(self, x):
        b, n, c = x.shape
        x = torch.cat([self.cls.expand(b, -1, -1), x], 1)
        q, k, v = self.qkv(self.ln(x)).reshape(b, n + 1, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4).unbind(0)
        a = ((q @ k.transpose(-2, -1)) * (c // self.h) ** -0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, n + 1, c))
        return x[:, 0].reshape(4, 8)


class Split(torch.nn.Module):
    """One kernel with two outputs: a Relax tuple and TupleGetItem in the lowered main."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

    def forward(self, x):
        a, b = x.chunk(2, -1)
        return self.a(a) + self.b(b)


class ViewOfInput(torch.nn.Module):
    """No kernel at all: the output is a view of the input and is copied out."""

    def forward(self, x):
        return x.reshape(-1)


MODELS = {
    "mlp": (Mlp, (1, 4, 16)),
    "residual": (Residual, (1, 8, 32)),
    "attention": (Attention, (1, 6, 32)),
    "split": (Split, (3, 8)),
    "view_of_input": (ViewOfInput, (2, 3)),
}


class Built:
    """One model: torch module, example input, imported Relax module and generated C."""

    def __init__(self, name: str, out_dir: Path, split: bool = True):
        factory, shape = MODELS[name]
        torch.manual_seed(0)
        self.model = factory().eval()
        self.x = torch.randn(*shape)
        ep = torch.export.export(self.model, (self.x,))
        self.mod = from_exported_program(ep, keep_params_as_input=False)
        self.lowered = lower.lower_for_aot(self.mod, split=split)
        self.kernel_c = lower.build_kernels_c(self.lowered)
        self.result = aot.generate_aot(self.lowered, self.kernel_c, out_dir / "gen")
        self.dir = out_dir

    def expected(self) -> np.ndarray:
        with torch.no_grad():
            return self.model(self.x).numpy()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache: dict[str, Built] = {}

    def get(name: str, split: bool = True) -> Built:
        """`split=False`: kernels without the two-worker stage ranges (runtime.split_workers)."""
        if (name, split) not in cache:
            cache[name, split] = Built(name, tmp_path_factory.mktemp(name), split)
        return cache[name, split]

    return get


def build_and_run(b: Built, target: str = "host", defines=None, tag: str = "build"):
    res = b.result
    main = b.dir / "main.c"
    main.write_text(MAIN_C)
    defs = {"FTER_WORKSPACE_BYTES": max(res.workspace_bytes, 16), **(defines or {})}
    build, run = (build_host, run_host) if target == "host" else (build_xtensa, run_xtensa)
    exe = build([res.model_c, res.weights_c, main], b.dir / f"{tag}_{target}", defs,
                generated=[res.kernels_c], extra_include_dirs=[res.out_dir])
    run_result = run(exe, b.x.numpy().astype(np.float32).tobytes())
    y = np.frombuffer(run_result.output, np.float32).reshape(res.output_shape)
    return y, run_result


# ------------------------------------------------------------------ structure (no compiler)

@pytest.mark.parametrize("name", list(MODELS))
def test_kernel_symbols_and_calling_convention(built, name):
    b = built(name)
    for gv, func in b.lowered.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc):
            assert re.fullmatch(r"[A-Za-z_]\w*", str(func.attrs["global_symbol"]))
    for call in b.result.calls:
        assert call.symbol.startswith("__tvm_ffi_")
        assert (f"int32_t {call.symbol}(void* self_handle, void* args, int32_t num_args, "
                "void* result) {") in b.kernel_c
    assert b.result.kernels_c.read_text() == b.kernel_c  # TVM's C, untouched


def test_call_list_and_sizes(built):
    res = built("mlp").result
    assert [c.name for c in res.calls][0] == "fused_matmul_add"
    # the matmul and the bias add are two stages split by rows between workers, so the product
    # they share is one more argument: scratch in the arena, live for this call only
    assert res.calls[0].arg_shapes == ((4, 16), (16, 32), (32,), (4, 32), (4, 32))
    assert res.calls[0].outputs == (3, 4) and res.calls[0].stages == (4, 4)
    assert res.input_shape == (1, 4, 16) and res.output_shape == (1, 4, 8)
    header = res.header.read_text()
    assert "#define FTER_INPUT_SIZE 64 " in header and "#define FTER_OUTPUT_SIZE 32 " in header
    assert f"#define FTER_ARENA_BYTES {res.arena_bytes}\n" in header
    assert res.weights_bytes == sum(p.numel() * 4 for p in built("mlp").model.parameters())


def test_arena_smaller_than_storages(built):
    for name in ("residual", "attention"):
        program = extract_program(built(name).lowered)
        res = built(name).result
        assert res.arena_bytes == res.plan.peak_live_bytes < aot.storage_bytes(program)


def test_generation_is_deterministic(built, tmp_path):
    b = built("attention")
    again = aot.build_aot(b.mod, tmp_path / "again")
    for first, second in zip(b.result.sources + [b.result.header], again.sources + [again.header]):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_global_symbols_sanitised():
    @T.prim_func(private=True, s_tir=True)
    def relu(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
        for i in range(4):
            with T.sblock("b"):
                vi = T.axis.spatial(4, i)
                b[vi] = T.max(a[vi], T.float32(0))

    x = relax.Var("x", relax.TensorType((4,), "float32"))
    bb = relax.BlockBuilder()
    gv = bb.add_func(relu, "my.relu-1")
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.call_tir(gv, [x], relax.TensorType((4,), "float32")))
        bb.emit_func_output(y)
    lowered = lower.lower_for_aot(bb.get())
    (kernel,) = [f for f in lowered.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert str(kernel.attrs["global_symbol"]) == "my_relu_1"
    assert "__tvm_ffi_my_relu_1(" in lower.build_kernels_c(lowered)


@I.ir_module
class PackedCall:
    @R.function
    def main(x: R.Tensor((2, 4), "float32")):
        y = R.call_pure_packed("my_func", x, ty_args=R.Tensor((2, 4), "float32"))
        return y


@I.ir_module
class TwoOutputs:
    @R.function
    def main(x: R.Tensor((2, 4), "float32")):
        with R.dataflow():
            a = R.nn.relu(x)
            b = R.exp(x)
            R.output(a, b)
        return (a, b)


@I.ir_module
class IntInput:
    @R.function
    def main(x: R.Tensor((2, 4), "int8")):
        with R.dataflow():
            y = R.astype(x, "float32")
            R.output(y)
        return y


@pytest.mark.parametrize("mod,message", [
    (PackedCall, r"binding `y`: call of .*my_func.* not supported"),
    (TwoOutputs, r"main must return one tensor"),
    (IntInput, r"input must be float32, got int8"),
])
def test_unsupported_forms_fail_loudly(mod, message):
    with pytest.raises(lower.AotLoweringError, match=message):
        extract_program(lower.lower_for_aot(mod))


# ----------------------------------------------------------------------- host C (needs cc)

@pytest.fixture(scope="module")
def vm_outputs(built):
    def run(name: str) -> np.ndarray:
        b = built(name)
        ex = tvm.compile(b.mod, target=tvm.target.Target({"kind": "llvm"}))
        out = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(b.x.numpy()))
        return (out[0] if not hasattr(out, "numpy") else out).numpy()

    return run


@pytest.mark.cc
@pytest.mark.parametrize("name", list(MODELS))
def test_host_c_matches_torch_and_relax_vm(built, vm_outputs, name):
    require("cc")
    b = built(name)
    y, run = build_and_run(b)
    assert np.abs(y - b.expected()).max() <= TOL
    assert np.abs(y - vm_outputs(name)).max() <= TOL
    assert run.counters["workspace_peak"] <= b.result.workspace_bytes
    # TVM's own kernels split between two threads compute the same bits
    y2, _ = build_and_run(b, defines={"FTER_WORKERS": 2}, tag="two_workers")
    np.testing.assert_array_equal(y2.view(np.uint32), y.view(np.uint32))


@pytest.mark.cc
def test_workspace_bound_is_tight_and_failures_are_reported(built):
    require("cc")
    # unsplit: the attention's intermediates are workspace (split, the ones its stages share
    # become arena scratch and nothing is left to allocate)
    b = built("attention", split=False)
    _, run = build_and_run(b)
    assert 0 < run.counters["workspace_peak"] == b.result.workspace_bytes
    with pytest.raises(ProgramError) as err:
        build_and_run(b, defines={"FTER_WORKSPACE_BYTES": 64}, tag="small_ws")
    assert err.value.returncode == 3
    failing = next(c.name for c in b.result.calls if c.workspace_bytes > 0)
    assert f"FAILED {failing} MemoryError: workspace exhausted" in err.value.stdout


@pytest.mark.cc
@pytest.mark.parametrize("name", ["mlp", "view_of_input"])
def test_profile_hooks_see_every_call(built, name):
    require("cc")
    b = built(name)
    y, run = build_and_run(b, defines={"FTER_PROFILE": None}, tag="profile")
    kinds = [line.rsplit(" ", 1) for line in run.stdout.splitlines()
             if line.endswith((" kernel", " copy"))]
    expected = [[c.name, "kernel"] for c in b.result.calls]
    expected += [["copy_output", "copy"]] if b.result.copies_output else []
    assert kinds == expected
    assert run.counters["profiled_calls"] == len(expected)
    assert np.abs(y - b.expected()).max() <= TOL


WEIGHT_CASES = [
    np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38, 0.1], np.float32),
    np.array([[1, -2], [3.5, 65504]], np.float16),
    np.array([-128, -1, 0, 127], np.int8),
    np.array([0, 255, 7], np.uint8),
    np.array([-(2**31), 2**31 - 1], np.int32),
    np.array([-(2**63), 2**63 - 1, 0], np.int64),
    np.array([2**32 - 1, 5], np.uint32),
    np.array([True, False, True]),
    np.array([np.pi, -1e-300], np.float64),
    np.arange(100, dtype=np.float32).reshape(10, 10) / 7,
]


@pytest.mark.cc
def test_weights_are_bit_exact(tmp_path):
    require("cc")
    program = AotProgram(constants=WEIGHT_CASES)
    src = tmp_path / "fter_weights.c"
    src.write_text(aot.emit_weights(program))
    decls = "".join(f"extern const {aot.c_array_type(w)} fter_w{i}[{w.size}];\n"
                    for i, w in enumerate(WEIGHT_CASES))
    writes = "".join(f"  fter_write_output(fter_w{i}, sizeof fter_w{i});\n"
                     for i in range(len(WEIGHT_CASES)))
    main = tmp_path / "main.c"
    main.write_text(f'#include <stdint.h>\n#include "harness.h"\n{decls}'
                    f"int main(void) {{\n{writes}  return 0;\n}}\n")
    exe = build_host([src, main], tmp_path / "build")
    assert run_host(exe).output == b"".join(w.tobytes() for w in WEIGHT_CASES)


def _compile_only(cc: str, flags: list[str], res: aot.AotResult, includes: list[Path]) -> None:
    for src in res.sources:
        extra = list(res.kernel_cflags) if src == res.kernels_c else []
        cmd = [cc, *flags, *extra, *[f"-I{d}" for d in includes], "-c", str(src), "-o", os.devnull]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


@pytest.mark.cc
def test_strict_flags_host(built):
    require("cc")
    res = built("attention").result
    includes = [res.out_dir, *(cbuild.RUNTIME_DIR / d for d in ("include", "libc/include")),
                *cbuild.tvm_include_dirs()]
    _compile_only("cc", ["-std=c99", "-O2", "-Wall", "-Werror", "-ffp-contract=off"], res, includes)


# ------------------------------------------------------------------------- Xtensa simulator

@pytest.mark.xtensa
def test_strict_flags_xtensa(built):
    require("xtensa-lx106-elf-gcc")
    res = built("attention").result
    includes = [res.out_dir, *(cbuild.RUNTIME_DIR / d for d in ("include", "libc/include")),
                *cbuild.tvm_include_dirs()]
    flags = ["-std=c99", "-O2", "-Wall", "-Werror", "-mtext-section-literals", "-ffreestanding"]
    _compile_only("xtensa-lx106-elf-gcc", flags, res, includes)


@pytest.mark.xtensa
@pytest.mark.parametrize("name", ["mlp", "attention"])
def test_xtensa_simulator_matches_host(built, name):
    require("xtensa-lx106-elf-gcc", "qemu-system-xtensa")
    b = built(name)
    y_host, _ = build_and_run(b)
    y_sim, run = build_and_run(b, target="xtensa")
    assert np.abs(y_sim - b.expected()).max() <= TOL
    assert np.abs(y_sim - y_host).max() <= 1e-6
    assert run.counters["total"] > 0
