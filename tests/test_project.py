"""ESP-IDF project export: layout, CMake/sdkconfig/partitions contents, PSRAM placement, the board
check (nothing written on failure), determinism, the report files, and the component's C compiled
with the Xtensa and host compilers (main.c run on the host against stub ESP-IDF headers)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fter_tvm.compile import compile as fter_compile
from fter_tvm.esp32s3 import ModelTooLargeError
from fter_tvm.models.vit import FTerViT, FTerViTConfig
from fter_tvm.project import (APP_OFFSET, COMPONENT, KERNEL_TABLES_BYTES, TEMPLATE_DIR,
                               kernel_scratch_bytes, kernel_tables_bytes, libm_names_header)
from fter_tvm.targets import BoardLimits
from runtime import cbuild

TINY = FTerViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=2,
                     num_heads=2, mlp_ratio=2)


def tiny_model_and_input():
    torch.manual_seed(0)
    return FTerViT(TINY).eval(), torch.randn(1, 1, 16, 16)


@pytest.fixture(scope="module")
def art():
    model, x = tiny_model_and_input()
    return fter_compile(model, target="esp32s3", example_inputs=(x,))


def psram_board(art) -> BoardLimits:
    """A budget that holds the two workspaces, the two copies of the kernel scratch and the
    kernel tables but not the arena too."""
    internal = 2 * (art.aot.workspace_bytes + kernel_scratch_bytes(art)) + kernel_tables_bytes(art)
    return BoardLimits(sram_arena_budget=internal + art.aot.arena_bytes - 1)


@pytest.fixture(scope="module")
def project(art, tmp_path_factory) -> Path:
    return art.export_project(tmp_path_factory.mktemp("export") / "proj")


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cmake_list(text: str, keyword: str) -> list[str]:
    """The quoted arguments after ``keyword`` in a CMake call, up to the next keyword."""
    m = re.search(rf"\b{keyword}\b(.*?)(?:\b[A-Z_]{{4,}}\b|\))", text, re.S)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def sdkconfig(project: Path) -> dict[str, str]:
    lines = (project / "sdkconfig.defaults").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.startswith("CONFIG_"))


# -- layout and build files ------------------------------------------------------------------------
def test_layout(project):
    for rel in ("CMakeLists.txt", "main/CMakeLists.txt", "main/main.c", "main/sample_input.h",
                "sdkconfig.defaults", "partitions.csv", "README.md", "report.json", "report.html",
                "report.png", f"{COMPONENT}/CMakeLists.txt", f"{COMPONENT}/include/fter_model.h",
                f"{COMPONENT}/src/fter_kernels.c", f"{COMPONENT}/src/fter_weights.c",
                f"{COMPONENT}/third_party/include/dlpack/dlpack.h",
                f"{COMPONENT}/third_party/include/tvm/ffi/c_api.h"):
        assert (project / rel).is_file(), rel
    top = (project / "CMakeLists.txt").read_text()
    assert "cmake_minimum_required(VERSION 3.16)" in top
    assert "include($ENV{IDF_PATH}/tools/cmake/project.cmake)" in top and "project(fter_app)" in top
    main = (project / "main/CMakeLists.txt").read_text()
    assert cmake_list(main, "SRCS") == ["main.c"]
    assert re.search(r"REQUIRES fter_model esp_timer", main)
    # the simulator harness, soft-float and libgcc stand-ins stay out: newlib provides those
    names = {p.name for p in (project / COMPONENT).rglob("*")}
    assert not names & {"softfloat.c", "libgcc_lx106.c", "fter_string.c", "harness.h", "math.h", "string.h"}
    templated = [t.relative_to(TEMPLATE_DIR) for t in TEMPLATE_DIR.rglob("*") if t.is_file()]
    assert len(templated) >= 8
    for rel in templated:   # every placeholder filled (fter_libm_names.h lands in runtime/)
        path = project / rel if (project / rel).exists() else project / COMPONENT / "runtime" / rel.name
        assert "{{" not in path.read_text(), rel


def test_component_cmake_registers_every_source(project):
    comp = project / COMPONENT
    text = (comp / "CMakeLists.txt").read_text()
    srcs = cmake_list(text, "SRCS")
    assert sorted(srcs) == sorted(str(p.relative_to(comp)) for p in comp.rglob("*.c"))
    for d in cmake_list(text, "INCLUDE_DIRS") + cmake_list(text, "PRIV_INCLUDE_DIRS"):
        assert (comp / d).is_dir(), d
    assert "-ffp-contract=off" in text and "fter_libm_names.h" in text
    assert f'COMPILE_OPTIONS "{";".join(cbuild.GENERATED_CFLAGS)}"' in text
    assert re.search(r"FTER_WORKSPACE_BYTES=\d+", text)


def test_sdkconfig_and_partitions(art, project):
    cfg = sdkconfig(project)
    assert cfg["CONFIG_IDF_TARGET"] == '"esp32s3"'
    assert cfg["CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240"] == "y"
    assert cfg["CONFIG_ESPTOOLPY_FLASHSIZE_8MB"] == "y"
    assert cfg["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"] == '"partitions.csv"'
    assert int(cfg["CONFIG_ESP_MAIN_TASK_STACK_SIZE"]) >= 8192
    assert "CONFIG_SPIRAM" not in cfg   # the tiny arena fits internal SRAM
    rows = [r for r in csv.reader((project / "partitions.csv").read_text().splitlines())
            if r and not r[0].startswith("#")]
    parts = {r[0].strip(): (int(r[3], 16), int(r[4], 16)) for r in rows}
    offset, size = parts["factory"]
    assert offset == APP_OFFSET and offset % 0x10000 == 0 and size % 0x10000 == 0
    assert size >= art.aot.weights_bytes + 256 * 1024 and offset + size <= 8 * 1024 * 1024
    spans = sorted(parts.values())
    assert all(a[0] + a[1] <= b[0] for a, b in zip(spans, spans[1:]))   # no overlap


def test_psram_placement_when_arena_exceeds_sram_budget(art, tmp_path):
    out = art.export_project(tmp_path / "p", board=psram_board(art))
    cfg = sdkconfig(out)
    for key in ("CONFIG_SPIRAM", "CONFIG_SPIRAM_MODE_OCT", "CONFIG_SPIRAM_ALLOW_BSS_SEG_EXTERNAL_MEMORY"):
        assert cfg[key] == "y"
    cmake = (out / COMPONENT / "CMakeLists.txt").read_text()
    assert '"FTER_ARENA_ATTR=EXT_RAM_BSS_ATTR"' in cmake and "esp_attr.h" in cmake
    assert "FTER_ARENA_ATTR static uint8_t fter_arena" in (out / COMPONENT / "src/fter_model.c").read_text()
    assert json.loads((out / "report.json").read_text())["project"]["arena_in_psram"] is True


@pytest.mark.cc
def test_kernel_scratch_bytes_are_the_built_programs(art):
    """kernel_scratch_bytes is what the C declares: the sizes of the PIE tile's and the attention
    rows' static scratch in the model's program (host build, one worker, the model's
    FTER_PIE_MAX_K and FTER_PIE_MAX_N), read from its symbol table; the component is built with
    the same sizes."""
    import subprocess

    src = Path(art.aot.kernels_c).read_text()
    assert "fter_tmm_tile_" in src and "fter_qk_row" in src   # both counted for this model
    exe = art._binary("host", 1)
    sizes = {}
    for line in subprocess.run(["nm", "-S", str(exe)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    names = ("per_worker", "main_vals", "fix_vals", "fix_offs", "main_sums", "fix_sums", "qacc_bufs")
    assert all(n in sizes for n in names), sorted(sizes)[:40]
    assert sum(sizes[n] for n in names) == kernel_scratch_bytes(art)
    cmake = (TEMPLATE_DIR / COMPONENT / "CMakeLists.txt").read_text()
    assert "FTER_PIE_MAX_K={{pie_max_k}} FTER_PIE_MAX_N={{pie_max_n}}" in cmake
    assert art.pie_max_n == 64   # the tiny model's 5 tokens, raised to the word-wise path's 64


def test_kernel_table_sizes_are_the_runtime_headers():
    """project.py counts the tables at the sizes the C declares them."""
    from fter_tvm.project import EXP_TABLE_BYTES, GELU_TABLE_BYTES
    from runtime import cbuild
    header = (cbuild.RUNTIME_DIR / "include" / "fter_kernels.h").read_text()
    assert f"#define FTER_EXP_LUT_SIZE {EXP_TABLE_BYTES // 2}\n" in header
    assert GELU_TABLE_BYTES == 2 * (1 << 14) and "#define FTER_GELU_LUT_SIZE (1 << 14)\n" in header


def test_kernel_tables_count_against_the_sram_budget(art, tmp_path):
    """The integer model's GELU and exp tables (internal SRAM on the chip) are in the budget: an
    arena that fits beside the workspaces alone moves to PSRAM once the tables are counted, and
    the README's memory table lists them."""
    assert art.report["numerics"]["mode"] == "integer"
    assert kernel_tables_bytes(art) == KERNEL_TABLES_BYTES == 32768 + 21298
    budget = psram_board(art).sram_arena_budget   # tables - 1 B above arena + workspaces
    for extra, in_psram in ((0, True), (1, False)):
        out = art.export_project(tmp_path / f"p{extra}",
                                 board=BoardLimits(sram_arena_budget=budget + extra))
        assert json.loads((out / "report.json").read_text())["project"]["arena_in_psram"] is in_psram
    readme = (out / "README.md").read_text()
    assert re.search(r"kernel tables .*\| 54066 \| internal SRAM", readme)
    assert re.search(rf"kernel scratch .*per core \| {kernel_scratch_bytes(art)} \| internal SRAM", readme)
    small = BoardLimits(sram_arena_budget=KERNEL_TABLES_BYTES)   # the tables alone fill it
    with pytest.raises(ModelTooLargeError, match="54066 B tables"):
        art.export_project(tmp_path / "q", board=small)
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("board, numbers", [
    (BoardLimits(sram_arena_budget=4096, psram_bytes=2048), ("2048", "4096")),   # arena fits nowhere
    (BoardLimits(flash_bytes=1024 * 1024), ("1048576",)),                       # flash below 2 MB
])
def test_too_large_for_board_writes_nothing(art, tmp_path, board, numbers):
    target = tmp_path / "new" / "proj"
    with pytest.raises(ModelTooLargeError) as e:
        art.export_project(target, board=board)
    assert all(n in str(e.value) for n in numbers), str(e.value)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ModelTooLargeError):
        art.export_project(existing, board=board, overwrite=True)
    assert files_of(existing) == {"keep.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]   # no temp dirs left behind


def test_refuses_non_empty_dir_unless_overwrite(art, project, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_text("x")
    with pytest.raises(FileExistsError):
        art.export_project(d)
    art.export_project(d, overwrite=True)
    assert files_of(d) == files_of(project)


def test_deterministic_across_exports_and_compiles(art, project, tmp_path):
    assert files_of(art.export_project(tmp_path / "again")) == files_of(project)
    model, x = tiny_model_and_input()
    art2 = fter_compile(model, target="esp32s3", example_inputs=(x,))
    assert files_of(art2.export_project(tmp_path / "recompiled")) == files_of(project)


def test_sample_input_round_trips(art, project):
    text = (project / "main/sample_input.h").read_text()
    arrays = re.findall(r"static const float (\w+)\[\w+\][^=]*= \{(.*?)\};", text, re.S)
    values = {name: np.array([float(v.strip().rstrip("f")) for v in body.split(",")], np.float32)
              for name, body in arrays}
    _, x = tiny_model_and_input()
    assert np.array_equal(values["fter_sample_input"].view(np.uint32), x.numpy().reshape(-1).view(np.uint32))
    assert np.array_equal(values["fter_expected_output"], art.run(x).reshape(-1))


def test_rename_header_covers_every_math_function():
    defined = set()
    for src in ("libc/fter_math.c", "libc/fter_round.c"):
        defined |= set(re.findall(r"^float (\w+)\(", (cbuild.RUNTIME_DIR / src).read_text(), re.M))
    header = libm_names_header().decode()
    renamed = set(re.findall(r"^#define (\w+) fter_\1$", header, re.M))
    assert defined and defined == renamed


# -- report ----------------------------------------------------------------------------------------
def test_report_files(art, project):
    rep = json.loads((project / "report.json").read_text())
    for key in ("flash_bytes", "weight_bytes", "arena_bytes", "workspace_bytes", "macs", "fused",
                "layers", "kernel_calls", "arena_timeline", "project"):
        assert key in rep, key
    assert rep["arena_bytes"] == art.aot.arena_bytes and max(rep["arena_timeline"]) <= rep["arena_bytes"]
    assert len(rep["arena_timeline"]) >= len(rep["kernel_calls"])
    fused_layers = [l for l in rep["layers"] if l["kind"].startswith("ternary_matmul")]
    assert all(l["weight_bytes"]["packed_ternary"] > 0 for l in fused_layers)
    assert rep["project"]["app_partition_bytes"] > rep["c_weights_bytes"]
    png = (project / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"tIME" not in png
    page = (project / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    assert fused_layers[0]["kernel"] in page and "live arena B" in page


@pytest.mark.xtensa
def test_report_has_simulated_instructions(art, tmp_path):
    _, x = tiny_model_and_input()
    _, stats = art.simulate(x)
    out = art.export_project(tmp_path / "p")
    rep = json.loads((out / "report.json").read_text())
    assert rep["simulation"]["instructions"] == stats["instructions"] > 0
    page = (out / "report.html").read_text()
    assert "instructions" in page and f"{stats['per_call'][0]['instructions']:,}" in page


# -- the C compiles --------------------------------------------------------------------------------
def component_compile_commands(project: Path, cc: str, base_flags: list[str], libc_includes: list[Path]):
    """One compile command per component source, with the flags its CMakeLists.txt gives."""
    comp = project / COMPONENT
    text = (comp / "CMakeLists.txt").read_text()
    incs = [f"-I{comp / d}" for d in cmake_list(text, "INCLUDE_DIRS") + cmake_list(text, "PRIV_INCLUDE_DIRS")]
    block = re.search(r"target_compile_definitions\(\$\{COMPONENT_LIB\} PRIVATE ([^)]*)\)", text)
    defs = ["-D" + d for d in block.group(1).split()]
    common = ["-ffp-contract=off", "-include", str(comp / "runtime/fter_libm_names.h")]
    props = re.findall(r'set_source_files_properties\("([^"]+)" PROPERTIES COMPILE_OPTIONS "([^"]+)"', text)
    per_file = {src: opts.split(";") for src, opts in props}
    for src in cmake_list(text, "SRCS"):
        extra = per_file.get(src, [])
        yield src, [cc, *base_flags, *common, *defs, *extra, *incs,
                    *[f"-I{d}" for d in libc_includes], "-c", str(comp / src)]


def compile_all(commands, out_dir: Path) -> list[Path]:
    objs = []
    for src, cmd in commands:
        obj = out_dir / (src.replace("/", "_") + ".o")
        proc = subprocess.run(cmd + ["-o", str(obj)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{src}:\n{proc.stderr}"
        objs.append(obj)
    return objs


@pytest.mark.xtensa
def test_component_compiles_for_xtensa(project, tmp_path):
    # -std=c99 -Wall -Werror as in the simulator build; runtime/libc/include's math.h stands in for
    # newlib's (the lx106 toolchain has no libc headers)
    flags = list(cbuild.XTENSA.cflags)
    assert {"-std=c99", "-Wall", "-Werror"} <= set(flags)
    # the FreeRTOS glue of the second core compiles against the task.h/FreeRTOS.h stubs
    objs = compile_all(component_compile_commands(
        project, cbuild.XTENSA.cc, flags,
        [cbuild.RUNTIME_DIR / "libc/include", FAKE_IDF / "components/freertos/include"]), tmp_path)
    assert len(objs) == len(list((project / COMPONENT).rglob("*.c")))


FAKE_IDF = Path(__file__).parent / "fake_idf"
needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")


def fake_idf_build(project: Path, build: Path, target: str | None = None,
                   flags: str | None = None) -> Path:
    """Configure and build ``project`` with its own CMake files against tests/fake_idf (host cc,
    ESP-IDF's warning flags unless ``flags`` replaces them, the host libc's real <math.h>)."""
    env = {**os.environ, "IDF_PATH": str(FAKE_IDF)}
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    gen += [f"-DFAKE_IDF_FLAGS={flags}"] if flags else []
    for cmd in (["cmake", "-S", str(project), "-B", str(build), *gen],
                ["cmake", "--build", str(build), *(["--target", target] if target else [])]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return build


@pytest.mark.cc
@needs_cmake
def test_project_builds_and_runs_with_its_cmake_files(art, project, tmp_path):
    build = fake_idf_build(project, tmp_path / "build")
    out = subprocess.run([str(build / "app")], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    _, x = tiny_model_and_input()
    best = int(np.argmax(art.run(x)))
    assert re.search(rf"#1\s+class\s+{best}:", out), out
    assert len(re.findall(r"inference \d: \d+ us", out)) == 5 and "latency: best" in out
    assert "(internal SRAM)" in out
    assert "bit-identical" in out, out   # same C, our binary32 math: the host-sim's exact logits


# ESP-IDF v5 builds with -std=gnu17, v6 with gnu23 (gcc 12 here calls it gnu2x); the sources
# stay C99 (the simulator builds use -std=c99)
@pytest.mark.cc
@needs_cmake
@pytest.mark.parametrize("std", ["gnu99", "gnu11", "gnu2x"])
def test_project_compiles_under_each_c_standard(project, tmp_path, std):
    flags = f"-std={std} -O2 -Wall -Werror=all -Wextra -Wno-unused-parameter -Wno-sign-compare -Werror"
    build = fake_idf_build(project, tmp_path / "build", flags=flags)
    assert (build / "app").exists()


@pytest.mark.cc
@needs_cmake
def test_psram_arena_lands_in_ext_ram_bss(art, tmp_path):
    out = art.export_project(tmp_path / "p", board=psram_board(art))
    build = fake_idf_build(out, tmp_path / "build", target="__idf_fter_model")
    obj = next(build.rglob("fter_model.c.o"))
    table = subprocess.run(["objdump", "-t", str(obj)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"\.ext_ram\.bss\S*\s+\S+\s+fter_arena$", table, re.M), table


def test_readme_and_partition_mention_sizes(art, project):
    readme = (project / "README.md").read_text()
    assert "idf.py set-target esp32s3 build flash monitor" in readme
    assert str(art.aot.weights_bytes) in readme and str(art.aot.arena_bytes) in readme
