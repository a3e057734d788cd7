"""Build fter C programs for the ESP32-S3's LX7 core and run them in an Xtensa QEMU that has it.

Upstream QEMU has no esp32s3 core; Espressif's fork (and trees derived from it) do, with the PIE
instructions. Nothing here builds such tools: they are found, as an ESP-IDF user's machine has
them, through

* ``FTER_QEMU_XTENSA`` -- a ``qemu-system-xtensa`` whose ``-M esp32s3`` machine exists;
* ``FTER_XTENSA_ESP32S3_CONFIG`` (or ``XTENSA_GNU_CONFIG``) -- the esp32s3 core-config shared
  object that Debian's binutils for the lx106 loads to assemble LX7 FPU and PIE instructions.

The C is compiled by Debian's ``xtensa-lx106-elf-gcc`` with ``-mabi=call0`` (it emits base-ISA
code, which the LX7 runs) and ``-DFTER_PIE``, so the PIE micro-kernels use their inline-asm forms;
the runtime's float helpers (``__addsf3`` & co., which gcc calls for every float operation) run on
the LX7's FPU and its divider (runtime/sim/esp32s3/lx7_helpers.S), as the hard-float code ESP-IDF's
compiler emits inline would (plus a call and a return each). Instruction counts come from CCOUNT under ``-icount shift=0`` (25 instructions per
count, SPEC §5), as on the lx106.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from runtime import cbuild
from runtime.host_sim import RunResult
from runtime.xtensa_sim import run_qemu

QEMU_ENV = "FTER_QEMU_XTENSA"
CONFIG_ENVS = ("FTER_XTENSA_ESP32S3_CONFIG", "XTENSA_GNU_CONFIG")
CPU1_PARK = 0x40370400   # _cpu1_park in sim/esp32s3/start.S (IRAM base + 0x400)
QEMU_ARGS = ("-M", "esp32s3", "-display", "none", "-monitor", "none", "-serial", "none",
             "-semihosting", "-device", f"loader,addr={CPU1_PARK:#x},cpu-num=1",
             "-icount", "shift=0")
SIM_DIR = cbuild.RUNTIME_DIR / "sim" / "esp32s3"


def _qemu() -> str | None:
    path = os.environ.get(QEMU_ENV)
    return path if path and Path(path).is_file() and os.access(path, os.X_OK) else None


def _core_config() -> str | None:
    for name in CONFIG_ENVS:
        path = os.environ.get(name)
        if path and Path(path).is_file():
            return path
    return None


def missing() -> list[str]:
    """What is missing to build and run for the esp32s3 core (empty when everything is there)."""
    out = []
    if _qemu() is None:
        out.append(f"an Xtensa QEMU with the esp32s3 machine (set {QEMU_ENV} to its "
                   "qemu-system-xtensa)")
    if _core_config() is None:
        out.append(f"the esp32s3 core config for binutils (set {CONFIG_ENVS[0]} or "
                   f"{CONFIG_ENVS[1]} to xtensa_esp32s3.so)")
    if shutil.which(cbuild.XTENSA.cc) is None:
        out.append(f"{cbuild.XTENSA.cc} (apt-get install {cbuild.XTENSA.apt_package})")
    return out


def available() -> bool:
    """Whether programs can be built for and run on the esp32s3 core here."""
    return not missing()


def require() -> None:
    """Raises cbuild.ToolMissingError naming every missing piece."""
    gone = missing()
    if gone:
        raise cbuild.ToolMissingError("the esp32s3 core needs " + "; ".join(gone))


def toolchain() -> cbuild.Toolchain:
    """The lx106 toolchain retargeted at the LX7: call0 ABI, PIE in inline asm, the esp32s3 start
    code, memory map and FPU-backed float helpers."""
    require()
    base = cbuild.XTENSA
    lx106_only = ("sim/start.S", "libc/softfloat.c", "libc/libgcc_lx106.c")
    soft = tuple(s for s in base.sources if s not in lx106_only)
    return cbuild.Toolchain(
        name="esp32s3",
        cc=base.cc,
        apt_package=base.apt_package,
        cflags=base.cflags + ("-mabi=call0", "-DFTER_PIE",
                              '-DFTER_WEIGHTS_ATTR=__attribute__((section(".extrodata")))'),
        ldflags=("-nostdlib", "-Wl,--no-warn-rwx-segments",
                 "-T", str(SIM_DIR / "esp32s3.ld"), "-lgcc"),
        sources=soft + ("sim/esp32s3/start.S", "sim/esp32s3/lx7_helpers.S",
                        "sim/esp32s3/lx7_divsf3.c"),
        include_dirs=base.include_dirs,
        exe_suffix=".elf",
        env=(("XTENSA_GNU_CONFIG", _core_config()),),
    )


def build_esp32s3(sources: Sequence[Path | str], out_dir: Path | str,
                  defines: Mapping[str, object] | None = None, **kwargs) -> Path:
    """Cross-compiles ``sources`` with the runtime for the esp32s3 core; returns the ELF.

    Keyword arguments are those of `runtime.cbuild.build`. Raises cbuild.ToolMissingError
    (naming what is missing) or cbuild.CBuildError.
    """
    return cbuild.build(toolchain(), sources, out_dir, defines, **kwargs)


def run_esp32s3(elf: Path | str, input_bytes: bytes = b"", timeout: float = 900.0) -> RunResult:
    """Runs an ELF from build_esp32s3 on QEMU's esp32s3 machine in a fresh temporary directory.

    Same result and errors as `runtime.xtensa_sim.run_xtensa`; cbuild.ToolMissingError names
    what is missing.
    """
    require()
    with tempfile.TemporaryDirectory(prefix="fter_flash_") as tmp:
        flash = Path(tmp) / "flash.bin"
        write_flash_image(elf, flash)
        return run_qemu([_qemu(), *QEMU_ARGS, "-drive", f"file={flash},if=mtd,format=raw"],
                        elf, input_bytes, timeout)


def write_flash_image(elf: Path | str, out: Path) -> None:
    """The ELF's ``.extrodata`` (the weights, linked at the flash window) as an SPI flash image of
    a size QEMU's flash model accepts (2, 4, 8 or 16 MiB)."""
    objcopy = cbuild.require_tool("xtensa-lx106-elf-objcopy", "binutils-xtensa-lx106")
    proc = subprocess.run([objcopy, "-O", "binary", "-j", ".extrodata", str(elf), str(out)],
                          capture_output=True, text=True,
                          env={**os.environ, "XTENSA_GNU_CONFIG": _core_config()})
    if proc.returncode != 0:
        raise cbuild.CBuildError(Path(elf), proc.stderr, [objcopy])
    size = out.stat().st_size if out.exists() else 0
    mib = next((m for m in (2, 4, 8, 16) if size <= m << 20), None)
    if mib is None:
        raise ValueError(f"{elf}: {size} B of weights exceed the simulator's 16 MiB flash")
    with open(out, "ab") as f:
        f.truncate(mib << 20)
