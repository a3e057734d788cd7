"""Build fter C programs for the lx106 and run them in QEMU ("xtensa-sim").

Instruction counts come from CCOUNT: under ``-icount shift=0`` QEMU advances it
once per INSTRUCTIONS_PER_CCOUNT executed instructions (SPEC §5).  The start
code reports the whole run of main() as the counter ``total``; programs add
their own with fter_count() (runtime/sim/harness.h).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from runtime import cbuild
from runtime.host_sim import INPUT_FILE, OUTPUT_FILE, ProgramError, RunResult, describe_failure, parse_counters

QEMU = "qemu-system-xtensa"
QEMU_APT_PACKAGE = "qemu-system-misc"
INSTRUCTIONS_PER_CCOUNT = 25
QEMU_ARGS = ("-M", "sim", "-cpu", "lx106", "-m", "64M", "-semihosting", "-nographic",
             "-monitor", "none", "-icount", "shift=0")


def build_xtensa(
    sources: Sequence[Path | str],
    out_dir: Path | str,
    defines: Mapping[str, object] | None = None,
    **kwargs,
) -> Path:
    """Cross-compiles ``sources`` with the runtime for the lx106; returns the ELF.

    Keyword arguments are those of `runtime.cbuild.build`.  Raises
    cbuild.ToolMissingError (naming the apt package) or cbuild.CBuildError.
    """
    return cbuild.build("xtensa", sources, out_dir, defines, **kwargs)


def run_xtensa(elf: Path | str, input_bytes: bytes = b"", timeout: float = 600.0) -> RunResult:
    """Runs an ELF from build_xtensa in QEMU inside a fresh temporary directory.

    Returns RunResult (output_bytes, stdout, instructions) where instructions
    is the count for main() (granularity 25); ``.counters`` holds every
    FTER_COUNT line converted to instructions.  Raises
    cbuild.ToolMissingError if QEMU is missing and ProgramError on a non-zero
    exit code (an exception inside the program exits with 128 + EXCCAUSE) or a
    timeout.
    """
    qemu = cbuild.require_tool(QEMU, QEMU_APT_PACKAGE)
    return run_qemu([qemu, *QEMU_ARGS], elf, input_bytes, timeout)


def run_qemu(qemu_cmd: Sequence[str], elf: Path | str, input_bytes: bytes = b"",
             timeout: float = 600.0) -> RunResult:
    """Runs ``qemu_cmd -kernel elf`` (a semihosting harness program) in a fresh temporary
    directory holding the input file; see :func:`run_xtensa`."""
    elf = Path(elf).resolve()
    cmd = [*qemu_cmd, "-kernel", str(elf)]
    qemu = Path(qemu_cmd[0]).name
    with tempfile.TemporaryDirectory(prefix="fter_xtensa_") as tmp:
        work = Path(tmp)  # semihosting opens files relative to QEMU's cwd
        (work / INPUT_FILE).write_bytes(input_bytes)
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            err = (e.stderr or b"").decode(errors="replace")
            raise ProgramError(describe_failure(f"{elf.name} timed out after {timeout} s in {qemu}",
                                                None, out, err), None, out, err) from None
        stdout = proc.stdout.decode(errors="replace")
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise ProgramError(
                describe_failure(f"{elf.name} exited with status {proc.returncode} in {qemu}",
                                 proc.returncode, stdout, stderr), proc.returncode, stdout, stderr)
        out_path = work / OUTPUT_FILE
        output = out_path.read_bytes() if out_path.exists() else b""
    counters = parse_counters(stdout, INSTRUCTIONS_PER_CCOUNT)
    return RunResult((output, stdout, counters.get("total", 0)), counters)
