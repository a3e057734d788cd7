"""Compile and link C programs against fter's portable runtime for one toolchain.

A toolchain is a small bundle of settings (compiler, flags, runtime sources,
the apt package that provides it); `build` compiles every source on its own,
so a failure names the file, and links the objects into one executable.
Used by `runtime.host_sim`, `runtime.xtensa_sim` and the AOT generator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

RUNTIME_DIR = Path(__file__).resolve().parent

# Deterministic float code: no contraction into FMA, no builtin replacements of
# expf & co, C99 so the same sources build with ESP-IDF's gcc.
COMMON_CFLAGS = ("-O2", "-std=c99", "-Wall", "-Werror", "-ffp-contract=off", "-fno-builtin")
# TVM's C codegen leaves unused shape/stride locals behind.
# TVM's StorageRewrite reuses one scratch buffer for tiles of different types (an f32 row later
# holds int32 accumulators), which C's strict-aliasing rule forbids: -fno-strict-aliasing makes
# that reuse well defined.
GENERATED_CFLAGS = ("-Wno-unused-variable", "-Wno-unused-but-set-variable", "-fno-strict-aliasing")

# Runtime sources shared by every target (relative to runtime/).
_COMMON_SOURCES = (
    "libc/fter_math.c",
    "libc/fter_round.c",
    "libc/fter_tvm_backend.c",
    "libc/fter_parallel.c",
    "kernels/ternary_matmul_ref.c",
    "kernels/ternary_matmul_xtensa.c",
    "kernels/ternary_matmul_lut.c",
    "kernels/int8_dot_ref.c",
    "kernels/int8_dot_xtensa.c",
    "kernels/ternary_matmul_pie.c",
    "kernels/attention_ref.c",
    "kernels/attention_pie.c",
    "kernels/layernorm_int.c",
    "kernels/epilogue_int.c",
    "kernels/pie/fter_pie.c",
    "kernels/pie/fter_pie_emu.c",
    "kernels/kernel_dispatch.c",
    "sim/harness_common.c",
)


class CBuildError(RuntimeError):
    """A compiler or linker run failed.

    Attributes: ``file`` (the source being compiled, or the output being
    linked), ``stderr`` (the tool's diagnostics) and ``cmd`` (argv).
    """

    def __init__(self, file: Path, stderr: str, cmd: Sequence[str]):
        self.file, self.stderr, self.cmd = Path(file), stderr, list(cmd)
        super().__init__(f"{self.cmd[0]} failed on {self.file}:\n{stderr.strip()}")


class ToolMissingError(RuntimeError):
    """A required executable is not on PATH; the message names its apt package."""


@dataclass(frozen=True)
class Toolchain:
    """Settings of one C target.

    ``sources`` and ``include_dirs`` are relative to runtime/;
    ``ldflags`` come after the objects on the link line.
    """

    name: str
    cc: str
    apt_package: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    sources: tuple[str, ...] = _COMMON_SOURCES
    include_dirs: tuple[str, ...] = ("include", "kernels/pie", "sim", "libc/include")
    exe_suffix: str = ""
    run_tools: tuple[tuple[str, str], ...] = ()  # (executable, apt package) needed to run
    env: tuple[tuple[str, str], ...] = ()  # extra environment of the compiler and linker


# The host runs a two-worker build's second worker as a POSIX thread (runtime/libc/fter_parallel.c).
HOST = Toolchain(
    name="host",
    cc="cc",
    apt_package="gcc",
    cflags=COMMON_CFLAGS + ("-pthread", "-DFTER_PARALLEL_PTHREAD"),
    ldflags=("-pthread",),
    sources=_COMMON_SOURCES + ("sim/harness_host.c",),
)

XTENSA = Toolchain(
    name="xtensa",
    cc="xtensa-lx106-elf-gcc",
    apt_package="gcc-xtensa-lx106",
    # -mtext-section-literals: literals next to their code (SPEC §5);
    # no loop-to-memset rewriting, or memset would call itself.
    cflags=COMMON_CFLAGS
    + ("-ffreestanding", "-mtext-section-literals", "-mlongcalls", "-fno-tree-loop-distribute-patterns"),
    ldflags=("-nostdlib", "-Wl,--no-warn-rwx-segments", "-T", str(RUNTIME_DIR / "sim" / "xtensa.ld"), "-lgcc"),
    sources=_COMMON_SOURCES
    + (
        "sim/start.S",
        "sim/harness_xtensa.c",
        "libc/fter_string.c",
        "libc/softfloat.c",
        "libc/libgcc_lx106.c",
        "libc/libgcc_divdi.c",
    ),
    include_dirs=("include", "kernels/pie", "sim", "libc/include", "libc/include_freestanding"),
    exe_suffix=".elf",
    run_tools=(("qemu-system-xtensa", "qemu-system-misc"),),
)

# host-sim under AddressSanitizer + UndefinedBehaviorSanitizer: the first finding ends the program
# with a non-zero status (runtime.host_sim.build_host(sanitize=True) or FTER_SANITIZE=1).
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g")
HOST_SANITIZE = replace(HOST, name="host-sanitize", cflags=HOST.cflags + SANITIZE_FLAGS,
                        ldflags=HOST.ldflags + SANITIZE_FLAGS)
# host-sim under ThreadSanitizer (FTER_SANITIZE=thread): data races between the two workers of a
# split kernel end the program with a report (halt_on_error, see runtime.host_sim).
TSAN_FLAGS = ("-fsanitize=thread", "-fno-omit-frame-pointer", "-g")
HOST_TSAN = replace(HOST, name="host-tsan", cflags=HOST.cflags + TSAN_FLAGS,
                    ldflags=HOST.ldflags + TSAN_FLAGS)

TOOLCHAINS = {"host": HOST, "host-sanitize": HOST_SANITIZE, "host-tsan": HOST_TSAN,
              "xtensa": XTENSA}


def toolchain(target: str | Toolchain) -> Toolchain:
    """Returns the Toolchain for "host" or "xtensa" (a Toolchain passes through)."""
    if isinstance(target, Toolchain):
        return target
    try:
        return TOOLCHAINS[target]
    except KeyError:
        raise ValueError(f"unknown C target {target!r}; expected one of {sorted(TOOLCHAINS)}") from None


def require_tool(tool: str, apt_package: str) -> str:
    """Returns the full path of ``tool``; raises ToolMissingError naming the package."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissingError(
            f"'{tool}' not found on PATH; install it with: apt-get install {apt_package}"
        )
    return path


def missing_tools(target: str | Toolchain) -> list[str]:
    """Executables needed to build and run for ``target`` that are not on PATH."""
    tc = toolchain(target)
    return [t for t, _ in ((tc.cc, tc.apt_package), *tc.run_tools) if shutil.which(t) is None]


def tvm_include_dirs() -> list[Path]:
    """Header dirs shipped in the TVM wheels that TVM-generated C includes.

    tvm_ffi/include (tvm/ffi/c_api.h), tvm/include (tvm/runtime/c_backend_api.h)
    and dlpack.  Located from the installed packages without importing TVM
    itself (which is slow to import).
    """
    import importlib.util

    dirs = []
    for pkg, subdirs in (("tvm_ffi", ("include", "3rdparty/dlpack/include")), ("tvm", ("include",))):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise ToolMissingError(f"Python package '{pkg}' is not installed (pip install apache-tvm)")
        root = Path(list(spec.submodule_search_locations)[0])
        dirs += [root / s for s in subdirs if (root / s).is_dir()]
    return dirs


def runtime_sources(target: str | Toolchain) -> list[Path]:
    """The runtime library sources (libc, kernels, harness, start code) for a target."""
    return [RUNTIME_DIR / s for s in toolchain(target).sources]


def include_dirs(target: str | Toolchain) -> list[Path]:
    """Include path for a target: fter's headers first, then TVM's."""
    return [RUNTIME_DIR / d for d in toolchain(target).include_dirs] + tvm_include_dirs()


def _define_flags(defines: Mapping[str, object] | None) -> list[str]:
    flags = []
    for key, value in (defines or {}).items():
        flags.append(f"-D{key}" if value is None or value is True else f"-D{key}={value}")
    return flags


def _run(cmd: list[str], file: Path, env: Mapping[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)
    if proc.returncode != 0:
        raise CBuildError(file, proc.stderr or proc.stdout, cmd)


def build(
    target: str | Toolchain,
    sources: Sequence[Path | str],
    out_dir: Path | str,
    defines: Mapping[str, object] | None = None,
    *,
    generated: Sequence[Path | str] = (),
    extra_include_dirs: Sequence[Path | str] = (),
    with_runtime: bool = True,
    name: str = "prog",
) -> Path:
    """Compiles ``sources`` (+ the runtime library) and links one executable.

    Args:
      target: "host", "xtensa" or a Toolchain.
      sources: the program's C files (one of them defines main()).
      out_dir: where objects and the executable go (created if missing).
      defines: preprocessor macros, e.g. {"FTER_KERNELS_REF": None,
        "FTER_WORKSPACE_BYTES": 1 << 20}; None/True mean a bare -DNAME.
      generated: sources written by TVM; compiled with GENERATED_CFLAGS
        (they leave unused locals) and may also appear in ``sources``.
      extra_include_dirs: searched before the runtime's headers.
      with_runtime: link runtime_sources(target) too.
      name: executable base name.
    Returns:
      Path of the executable (``name`` + the toolchain's suffix).
    Raises:
      ToolMissingError: the compiler is not installed.
      CBuildError: a compile or the link failed (carries file and stderr).
    """
    tc = toolchain(target)
    cc = require_tool(tc.cc, tc.apt_package)
    out_dir = Path(out_dir)
    obj_dir = out_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    gen = {Path(g).resolve() for g in generated}
    srcs = list(dict.fromkeys([Path(s).resolve() for s in sources] + sorted(gen)))
    if with_runtime:
        srcs += [s for s in runtime_sources(tc) if s not in srcs]
    incs = [f"-I{d}" for d in list(extra_include_dirs) + include_dirs(tc)]
    base = [cc, *tc.cflags, *_define_flags(defines), *incs]

    def compile_one(idx_src: tuple[int, Path]) -> Path:
        idx, src = idx_src
        obj = obj_dir / f"{idx:03d}_{src.stem}.o"
        extra = list(GENERATED_CFLAGS) if src in gen else []
        _run(base + extra + ["-c", str(src), "-o", str(obj)], src, dict(tc.env))
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs = list(pool.map(compile_one, enumerate(srcs)))
    exe = out_dir / (name + tc.exe_suffix)
    _run([cc, *tc.cflags, *map(str, objs), "-o", str(exe), *tc.ldflags], exe, dict(tc.env))
    return exe
