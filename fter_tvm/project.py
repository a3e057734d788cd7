"""ESP-IDF project export of an esp32s3 build: the generated C as a component, a thin `main/`,
sdkconfig.defaults, a partition table, a README and the report (JSON, PNG, HTML).

Everything is rendered in memory first (sizes checked against the board before a byte is
written), written to a temporary directory beside the destination and renamed into place, so a
failed export leaves nothing behind. Output is deterministic: same artifact, same bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from runtime import cbuild
from runtime.arena import align_up

from .report_page import report_files
from .targets import BoardLimits, ModelTooLargeError

TEMPLATE_DIR = Path(cbuild.RUNTIME_DIR) / "idf_template"
COMPONENT = "components/fter_model"
# ESP-IDF's default layout puts the bootloader and partition table below 0x10000; the app
# partition must start on a 64 KiB boundary.
APP_OFFSET = 0x10000
APP_ALIGN = 0x10000
# Flash the app needs besides the weights: ESP-IDF (FreeRTOS, newlib, drivers, PSRAM support
# ~250-350 KiB) plus our kernels and runtime. Generous; `idf.py build` checks the real size.
CODE_ALLOWANCE = 768 * 1024
FLASH_SIZES_MB = (2, 4, 8, 16, 32)   # CONFIG_ESPTOOLPY_FLASHSIZE_<n>MB choices
MAIN_STACK_BYTES = 16 * 1024        # TVM's C keeps buffers < 1 KiB on the stack
PARALLEL_GLUE = "fter_parallel_freertos.c"   # fter_parallel_for on ESP-IDF (a task on core 1)
PUBLIC_HEADERS = ("fter_model.h", "fter_kernels.h", "fter_runtime.h")   # what main/ includes
_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class MemoryPlan:
    """Where the model's memory goes on the board; all sizes in bytes."""

    weights_bytes: int
    arena_bytes: int
    workspace_bytes: int
    arena_in_psram: bool
    sram_arena_budget: int
    flash_bytes: int
    flash_size_mb: int
    app_estimate_bytes: int   # weights + CODE_ALLOWANCE
    app_partition_bytes: int  # rounded up to APP_ALIGN
    workers: int = 1          # cores running the model; each has its own workspace_bytes
    tables_bytes: int = 0     # kernel tables in internal SRAM counted against the budget
    scratch_bytes: int = 0    # the micro-kernels' static scratch, per worker (internal SRAM)

    @property
    def arena_place(self) -> str:
        return "PSRAM" if self.arena_in_psram else "internal SRAM"


def plan_memory(weights_bytes: int, arena_bytes: int, workspace_bytes: int,
                board: BoardLimits, workers: int = 1, tables_bytes: int = 0,
                scratch_bytes: int = 0) -> MemoryPlan:
    """Place the arena (internal SRAM or PSRAM) and size the app partition for ``board``.

    ``workspace_bytes`` is per worker; ``workers`` (1 or 2 cores) workspaces are allocated.
    ``tables_bytes``: kernel tables the model's kernels keep in internal SRAM
    (:func:`kernel_tables_bytes`); ``scratch_bytes``: the micro-kernels' static scratch, one copy
    per worker (:func:`kernel_scratch_bytes`). The arena moves to PSRAM when arena + workspaces +
    scratch + tables exceed ``board.sram_arena_budget``; the rest always stays internal.

    Raises:
        ModelTooLargeError: the app partition, the arena or the workspace does not fit (the message
            gives the numbers).
    """
    sizes = [mb for mb in FLASH_SIZES_MB if mb * 1024 * 1024 <= board.flash_bytes]
    if not sizes:
        raise ModelTooLargeError(f"the board has {board.flash_bytes} B of flash; an ESP-IDF "
                                 f"project needs at least {FLASH_SIZES_MB[0]} MB")
    flash_mb = sizes[-1]
    estimate = weights_bytes + CODE_ALLOWANCE
    partition = align_up(estimate, APP_ALIGN)
    room = flash_mb * 1024 * 1024 - APP_OFFSET
    if partition > room:
        raise ModelTooLargeError(
            f"the app needs {partition} B of flash ({weights_bytes} B weights + {CODE_ALLOWANCE} B "
            f"code allowance, rounded to 64 KiB) but the {flash_mb} MB flash leaves {room} B "
            f"above 0x{APP_OFFSET:x}")
    per_worker, workspace_bytes = workspace_bytes, workspace_bytes * workers
    internal = workspace_bytes + scratch_bytes * workers + tables_bytes
    in_psram = arena_bytes + internal > board.sram_arena_budget
    if in_psram and arena_bytes > board.psram_bytes:
        raise ModelTooLargeError(
            f"the arena needs {arena_bytes} B: more than the internal-SRAM budget "
            f"({board.sram_arena_budget} B, with {internal} B of workspace, scratch and tables) and the "
            f"{board.psram_bytes} B of PSRAM")
    if internal > board.sram_arena_budget:
        raise ModelTooLargeError(f"the kernel workspace, scratch and tables need {internal} B of "
                                 f"internal SRAM ({workers} x {per_worker} B workspace, {workers} x "
                                 f"{scratch_bytes} B scratch, {tables_bytes} B tables), the budget "
                                 f"is {board.sram_arena_budget} B")
    return MemoryPlan(weights_bytes, arena_bytes, per_worker, in_psram,
                      board.sram_arena_budget, board.flash_bytes, flash_mb, estimate, partition,
                      workers, tables_bytes, scratch_bytes)


# The LX7 loops' tables (runtime/kernels/epilogue_int.c): GELU, FTER_GELU_LUT_SIZE int16 entries;
# softmax exp, FTER_EXP_LUT_SIZE uint16 entries
GELU_TABLE_BYTES = 2 * (1 << 14)
EXP_TABLE_BYTES = 2 * 10649
KERNEL_TABLES_BYTES = GELU_TABLE_BYTES + EXP_TABLE_BYTES


def kernel_tables_bytes(art) -> int:
    """Internal SRAM the kernels keep as tables on the chip: the GELU and the softmax exp table.
    The component builds every runtime source with FTER_PIE on the ESP32-S3 and
    fter_kernels_init fills them at boot, so they are there whatever the model's numerics or
    kernel variant (only an integer MLP or attention reads them)."""
    del art   # the same for every model today
    return KERNEL_TABLES_BYTES


def kernel_scratch_bytes(art) -> int:
    """Internal SRAM one worker's copy of the micro-kernels' static scratch takes on the chip
    (.bss; the linker keeps what the model's kernels reference): the PIE tile's decode scratch,
    x row, stage (b2's, the larger) and QACC words for K = ``art.pie_max_k`` (``ternary_matmul_pie.c``) where the
    model calls a tile, and the attention rows' buffers for n = ``art.pie_max_n``
    (``attention_pie.c``) where it calls a QK or P·V row. A test checks the sizes against the
    symbols of a built program."""
    src = Path(art.aot.kernels_c).read_text()
    total = 0
    if "fter_tmm_tile_" in src:
        kpad = (art.pie_max_k + 15) & ~15
        total += (kpad + 16) * 16 + kpad + (kpad // 4) * 16 + 64
    if "fter_qk_row" in src or "fter_pv_row" in src:
        n = (art.pie_max_n + 15) & ~15
        total += n + 2 * n + 4 * 2 * n + 4 * (n // 16) + 4 * (2 * n // 16) + 64
    return total


def render(template: str, values: dict[str, object]) -> str:
    """Replace every ``{{name}}`` in ``template``; a name without a value raises ``KeyError``."""
    def sub(m: re.Match) -> str:
        if m.group(1) not in values:
            raise KeyError(f"template placeholder {{{{{m.group(1)}}}}} has no value")
        return str(values[m.group(1)])

    return _PLACEHOLDER.sub(sub, template)


def _template(rel: str, values: dict[str, object]) -> bytes:
    return render((TEMPLATE_DIR / rel).read_text(), values).encode()


def component_runtime_sources() -> list[Path]:
    """The runtime C files an ESP-IDF build needs: kernels, TVM backend symbols, float math.

    That is the portable runtime without the simulator harness (sim/); the lx106 helpers
    (soft-float, libgcc, string functions) are only in the Xtensa simulator's list, and newlib
    provides what they stand in for on the board.
    """
    return [s for s in cbuild.runtime_sources("host")
            if "sim" not in s.relative_to(cbuild.RUNTIME_DIR).parts]


def _include_closure(sources: list[Path], search_dirs: list[Path]) -> dict[str, Path]:
    """Every header the sources include, transitively, that exists in ``search_dirs`` (or beside
    the including file): include name -> file. System headers (not found there) are left out."""
    found: dict[str, Path] = {}
    todo = list(sources)
    while todo:
        src = todo.pop()
        for kind, name in _INCLUDE.findall(src.read_text()):
            if name in found:
                continue
            dirs = ([src.parent] if kind == '"' else []) + search_dirs
            hit = next((d / name for d in dirs if (d / name).is_file()), None)
            if hit is not None:
                found[name] = hit
                todo.append(hit)
    return found


def component_files(aot) -> dict[str, Path]:
    """Files of components/fter_model (path inside the component -> source file), except its
    CMakeLists.txt: generated C in src/, runtime in runtime/, API headers in include/, the TVM
    and DLPack headers actually included in third_party/include/."""
    files = {f"src/{p.name}": p for p in (aot.model_c, aot.kernels_c, aot.weights_c)}
    files.update({f"runtime/{p.name}": p for p in component_runtime_sources()})
    files[PARALLEL_GLUE] = TEMPLATE_DIR / COMPONENT / PARALLEL_GLUE   # the second core: FreeRTOS
    fter_dirs = [cbuild.RUNTIME_DIR / "include", cbuild.RUNTIME_DIR / "kernels" / "pie", Path(aot.out_dir)]
    tvm_dirs = cbuild.tvm_include_dirs()
    headers = _include_closure([files[k] for k in sorted(files)], fter_dirs + tvm_dirs)
    for name, path in sorted(headers.items()):
        if any(path.is_relative_to(d) for d in tvm_dirs):
            files[f"third_party/include/{name}"] = path
        elif name in PUBLIC_HEADERS:
            files[f"include/{name}"] = path
        else:
            files[f"runtime/{Path(name).name}"] = path
    missing = [h for h in PUBLIC_HEADERS if f"include/{h}" not in files]
    if missing:   # main/ needs them; the component's own sources always include them today
        raise FileNotFoundError(f"public headers not found for the component: {missing}")
    return files


def libm_names_header() -> bytes:
    """fter_libm_names.h: every function of fter's math.h renamed to fter_<name> and declared so.

    Generated from runtime/libc/include/math.h, the one list of what fter_math.c and fter_round.c
    define, so a function added there is renamed in the ESP-IDF component too.
    """
    math_h = (cbuild.RUNTIME_DIR / "libc/include/math.h").read_text()
    protos = re.findall(r"^float (\w+)\(([^)]*)\);", math_h, re.M)
    return _template(f"{COMPONENT}/fter_libm_names.h", {
        "renames": "\n".join(f"#undef {n}\n#define {n} fter_{n}" for n, _ in protos),
        "prototypes": "\n".join(f"float fter_{n}({args});" for n, args in protos),
    })


def _component_cmake(files: dict[str, Path], mem: MemoryPlan, pie_max_k: int,
                     pie_max_n: int) -> bytes:
    srcs = sorted(k for k in files if k.endswith(".c"))
    if mem.arena_in_psram:
        placement = (
            f"\n# The arena ({mem.arena_bytes} B) exceeds the internal-SRAM budget "
            f"({mem.sram_arena_budget} B): it goes to PSRAM.\n"
            "# EXT_RAM_BSS_ATTR (esp_attr.h) means .ext_ram.bss when "
            "CONFIG_SPIRAM_ALLOW_BSS_SEG_EXTERNAL_MEMORY=y (sdkconfig.defaults).\n"
            'set_source_files_properties("src/fter_model.c" PROPERTIES\n'
            '    COMPILE_OPTIONS "-include;esp_attr.h"\n'
            '    COMPILE_DEFINITIONS "FTER_ARENA_ATTR=EXT_RAM_BSS_ATTR")\n')
    else:
        placement = (f"\n# The arena ({mem.arena_bytes} B) fits the internal-SRAM budget "
                     f"({mem.sram_arena_budget} B): it stays in internal SRAM (.bss).\n")
    return _template(f"{COMPONENT}/CMakeLists.txt", {
        "srcs": "\n".join(f'        "{s}"' for s in srcs),
        "workspace_bytes": max(mem.workspace_bytes, 16),
        "workers": mem.workers,
        "parallel_define": "FTER_PARALLEL_FREERTOS" if mem.workers > 1 else "",
        "worker_stack_bytes": MAIN_STACK_BYTES,
        "pie_max_k": pie_max_k, "pie_max_n": pie_max_n,
        "generated_cflags": ";".join(cbuild.GENERATED_CFLAGS),
        "arena_placement": placement,
    })


def _sdkconfig(values: dict, mem: MemoryPlan) -> bytes:
    if mem.arena_in_psram:
        block = (f"\n# The arena ({mem.arena_bytes} B) exceeds the internal-SRAM budget "
                 f"({mem.sram_arena_budget} B): octal PSRAM holds it\n"
                 "# (ESP32-S3-EYE / N8R8 modules); components/fter_model places it with EXT_RAM_BSS_ATTR.\n"
                 "CONFIG_SPIRAM=y\nCONFIG_SPIRAM_MODE_OCT=y\nCONFIG_SPIRAM_SPEED_80M=y\n"
                 "CONFIG_SPIRAM_ALLOW_BSS_SEG_EXTERNAL_MEMORY=y\n")
    else:
        block = (f"\n# The arena ({mem.arena_bytes} B) fits the internal-SRAM budget "
                 f"({mem.sram_arena_budget} B): PSRAM is not needed.\n")
    return _template("sdkconfig.defaults", {**values, "psram_block": block})


def _c_floats(values: np.ndarray) -> str:
    """Shortest round-tripping float32 literals, 8 per line (C parses `1.5f` straight to float)."""
    flat = np.asarray(values, np.float32).reshape(-1)
    if not np.isfinite(flat).all():
        raise ValueError("sample input and expected output must be finite")
    lits = [np.format_float_scientific(v, unique=True, trim="0") + "f" for v in flat]
    rows = (", ".join(lits[k:k + 8]) for k in range(0, len(lits), 8))
    return "  " + ",\n  ".join(rows)


def _sample_header(sample: np.ndarray, expected: np.ndarray | None) -> bytes:
    shape = "x".join(map(str, sample.shape))
    text = ("/* sample_input.h -- generated by fter-tvm; the input main.c runs the model on "
            f"(float32 {shape}),\n * and the logits the host simulation computed for it. */\n"
            "#ifndef FTER_SAMPLE_INPUT_H_\n#define FTER_SAMPLE_INPUT_H_\n\n"
            "#include \"fter_model.h\"\n\n"
            "static const float fter_sample_input[FTER_INPUT_SIZE] __attribute__((aligned(16))) = {\n"
            f"{_c_floats(sample)}\n}};\n\n")
    if expected is None:
        text += "/* no host C compiler at export time: no reference logits */\n#define FTER_HAVE_EXPECTED 0\n"
    else:
        text += ("#define FTER_HAVE_EXPECTED 1\n"
                 "static const float fter_expected_output[FTER_OUTPUT_SIZE] = {\n"
                 f"{_c_floats(expected)}\n}};\n")
    return (text + "\n#endif /* FTER_SAMPLE_INPUT_H_ */\n").encode()


def project_files(art, sample: np.ndarray, mem: MemoryPlan, name: str, num_runs: int
                  ) -> dict[str, bytes]:
    """Every file of the project (relative path -> bytes), rendered in memory."""
    aot = art.aot
    try:
        expected = art.run(sample)
    except cbuild.ToolMissingError:
        expected = None
    hexs = lambda n: f"0x{n:x}"  # noqa: E731
    values = {
        "project_name": name, "num_runs": num_runs, "flash_size_mb": mem.flash_size_mb,
        "main_stack_bytes": MAIN_STACK_BYTES, "app_offset": hexs(APP_OFFSET),
        "app_size": hexs(mem.app_partition_bytes), "app_size_bytes": mem.app_partition_bytes,
        "app_estimate_bytes": mem.app_estimate_bytes, "weights_bytes": mem.weights_bytes,
        "code_allowance_bytes": CODE_ALLOWANCE, "arena_bytes": mem.arena_bytes,
        "workspace_bytes": mem.workspace_bytes, "arena_place": mem.arena_place,
        "tables_bytes": mem.tables_bytes,
        "scratch_bytes": mem.scratch_bytes,
        "workers": mem.workers,
        "sram_arena_budget": mem.sram_arena_budget,
        "input_shape": "x".join(map(str, sample.shape)),
        "psram_note": ", octal PSRAM" if mem.arena_in_psram else "",
        "expected_note": "" if expected is not None else " (not embedded: no host compiler at export)",
    }
    comp = component_files(aot)
    files = {f"{COMPONENT}/{k}": v.read_bytes() for k, v in comp.items()}
    files[f"{COMPONENT}/CMakeLists.txt"] = _component_cmake(comp, mem, art.pie_max_k, art.pie_max_n)
    files[f"{COMPONENT}/runtime/fter_libm_names.h"] = libm_names_header()
    for rel in ("CMakeLists.txt", "main/CMakeLists.txt", "main/main.c", "partitions.csv", "README.md"):
        files[rel] = _template(rel, values)
    files["sdkconfig.defaults"] = _sdkconfig(values, mem)
    files["main/sample_input.h"] = _sample_header(sample, expected)
    # the compiler's captured warnings depend on what the process did before: not a project file
    report = {k: v for k, v in art.report.items() if k != "warnings"}
    report["project"] = {"name": name, **asdict(mem), "arena_place": mem.arena_place,
                         "app_offset": APP_OFFSET, "main_stack_bytes": MAIN_STACK_BYTES}
    files.update(report_files(report, aot.plan.timeline, art.last_stats, art.fused_mod))
    return dict(sorted(files.items()))


def _remove_stale_scratch(out: Path) -> None:
    """Delete the scratch directories of exports to ``out`` whose process died (SIGKILL, power
    loss) before it could clean up; those of running exports are left alone."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(\d+)\.[^.]+\.(tmp|old)")
    for p in out.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except PermissionError:   # alive, another user's
            pass


def _write_atomically(files: dict[str, bytes], out: Path) -> None:
    """Write ``files`` into a fresh temporary directory beside ``out``, then rename it to ``out``.
    An existing ``out`` is first moved aside (and put back if the rename fails), then deleted.

    A killed export leaves ``out`` as it was or absent (never a half project) and a hidden scratch
    directory named after its process, which the next export to ``out`` removes.

    Raises:
        OSError: a write failed (e.g. the disk is full); the message names ``out`` and says that
            nothing was written.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_scratch(out)
    scratch = f".{out.name}.{os.getpid()}."
    tmp = Path(tempfile.mkdtemp(prefix=scratch, suffix=".tmp", dir=out.parent))
    trash = None
    try:
        for rel, data in files.items():
            path = tmp / rel
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            except OSError as e:
                raise OSError(e.errno, f"cannot write the project {out}: {e.strerror} (writing "
                                       f"{rel}); nothing was written") from e
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)   # mkdtemp makes it 0700
        if out.exists() or out.is_symlink():
            trash = Path(tempfile.mkdtemp(prefix=scratch, suffix=".old", dir=out.parent))
            out.rename(trash / out.name)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if trash is not None and not out.exists():
            (trash / out.name).rename(out)
        raise
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)


def export_project(art, out_dir: str | os.PathLike, sample_input=None, *, name: str = "fter_app",
                   board: BoardLimits | None = None, num_runs: int = 5,
                   overwrite: bool = False, workers: int = 2) -> Path:
    """Write the ESP-IDF project of an esp32s3 artifact (see ``Esp32s3Artifact.export_project``)."""
    from .artifact import as_numpy

    out = Path(out_dir)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
        raise ValueError(f"project name {name!r}: use letters, digits, '_' and '-'")
    if num_runs < 1:
        raise ValueError(f"num_runs must be >= 1, got {num_runs}")
    if workers not in (1, 2):
        raise ValueError(f"workers must be 1 or 2 (the ESP32-S3 has two cores), got {workers}")
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True to replace it)")
    board = board or art.tgt.board
    mem = plan_memory(art.aot.weights_bytes, art.aot.arena_bytes, art.aot.workspace_bytes, board,
                      workers, kernel_tables_bytes(art), kernel_scratch_bytes(art))
    if sample_input is None:
        sample_input = art.example_input
    if sample_input is None:   # e.g. ONNX models compiled without example inputs
        sample_input = np.random.default_rng(0).standard_normal(art.input_shape).astype(np.float32)
    sample = as_numpy(sample_input, art.input_shape)
    files = project_files(art, sample, mem, name, num_runs)
    _write_atomically(files, out)
    return out

