"""Build and run fter C programs on the host ("host-sim").

The program's main() uses runtime/sim/harness.h: it reads its input from
``fter_input.bin`` and writes its output to ``fter_output.bin`` in its working
directory, and reports ``FTER_COUNT <name> <value>`` lines (nanoseconds here).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from runtime import cbuild

INPUT_FILE = "fter_input.bin"
OUTPUT_FILE = "fter_output.bin"


class ProgramError(RuntimeError):
    """The program exited non-zero, crashed or timed out; the message has its output."""

    def __init__(self, message: str, returncode: int | None = None, stdout: str = "", stderr: str = ""):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        super().__init__(message)


class RunResult(tuple):
    """(output_bytes, stdout) or, for the simulator, (output_bytes, stdout, instructions).

    Unpacks like a plain tuple; ``.counters`` maps every ``FTER_COUNT`` name
    to its value (instructions on the simulator, nanoseconds on the host).
    """

    def __new__(cls, fields: tuple, counters: dict[str, int]):
        self = super().__new__(cls, fields)
        self.counters = counters
        return self

    @property
    def output(self) -> bytes:
        return self[0]

    @property
    def stdout(self) -> str:
        return self[1]


def parse_counters(stdout: str, scale: int = 1) -> dict[str, int]:
    """Collects ``FTER_COUNT <name> <value>`` lines, each value times ``scale``."""
    counters = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "FTER_COUNT" and parts[2].isdigit():
            counters[parts[1]] = int(parts[2]) * scale
    return counters


def describe_failure(what: str, proc_rc: int | None, stdout: str, stderr: str) -> str:
    """One message with the exit status and the tail of both streams."""
    tail = lambda s: "\n".join(s.strip().splitlines()[-30:])  # noqa: E731
    return f"{what}\n--- stdout (tail) ---\n{tail(stdout)}\n--- stderr (tail) ---\n{tail(stderr)}"


SANITIZE_ENV = "FTER_SANITIZE"
# Sanitizer runtime settings: stop at the first finding, leaks included, with a stack trace.
SANITIZER_OPTIONS = {"ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
                     "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                     "TSAN_OPTIONS": "halt_on_error=1:exitcode=66:second_deadlock_stack=1"}
SANITIZERS = {"address": cbuild.HOST_SANITIZE, "thread": cbuild.HOST_TSAN}


def sanitize_requested() -> str | None:
    """The sanitizer the environment asks for: ``FTER_SANITIZE=1`` (or ``address``) -> "address"
    (ASan + UBSan), ``FTER_SANITIZE=thread`` -> "thread" (TSan); None when unset or 0."""
    value = os.environ.get(SANITIZE_ENV, "")
    if value in ("", "0"):
        return None
    if value == "thread":
        return "thread"
    if value in ("1", "address"):
        return "address"
    raise ValueError(f"{SANITIZE_ENV}={value!r}: expected 1, address or thread")


def build_host(
    sources: Sequence[Path | str],
    out_dir: Path | str,
    defines: Mapping[str, object] | None = None,
    *,
    sanitize: bool | str | None = None,
    **kwargs,
) -> Path:
    """Compiles ``sources`` with the runtime for the host; returns the executable.

    ``sanitize``: True or "address" builds with AddressSanitizer and UndefinedBehaviorSanitizer
    (`cbuild.HOST_SANITIZE`), "thread" with ThreadSanitizer (`cbuild.HOST_TSAN`; run a
    two-worker build, ``FTER_WORKERS=2``, to check the split kernels); None means "as
    ``FTER_SANITIZE`` says".
    Other keyword arguments are those of `runtime.cbuild.build` (``generated``,
    ``extra_include_dirs``, ``with_runtime``, ``name``).
    Raises cbuild.ToolMissingError / cbuild.CBuildError.
    """
    if sanitize is None:
        sanitize = sanitize_requested()
    if sanitize is True:
        sanitize = "address"
    if sanitize and sanitize not in SANITIZERS:
        raise ValueError(f"unknown sanitizer {sanitize!r}; expected one of {sorted(SANITIZERS)}")
    return cbuild.build(SANITIZERS[sanitize] if sanitize else cbuild.HOST, sources, out_dir,
                        defines, **kwargs)


def run_host(exe: Path | str, input_bytes: bytes = b"", timeout: float = 600.0,
             cwd: Path | str | None = None, launcher: Sequence[str] = ()) -> RunResult:
    """Runs a host build in a fresh temporary directory (or ``cwd``).

    ``launcher`` prefixes the command line (e.g. ``("valgrind", "--error-exitcode=1")``).
    Returns RunResult (output_bytes, stdout) with ``.counters``.  Raises
    ProgramError on a non-zero exit (a sanitizer finding included), a signal or a timeout.
    """
    exe = Path(exe).resolve()
    with tempfile.TemporaryDirectory(prefix="fter_host_") as tmp:
        work = Path(cwd) if cwd is not None else Path(tmp)
        (work / INPUT_FILE).write_bytes(input_bytes)
        out_path = work / OUTPUT_FILE
        out_path.unlink(missing_ok=True)
        try:
            proc = subprocess.run([*launcher, str(exe)], cwd=work, capture_output=True,
                                  timeout=timeout, env={**SANITIZER_OPTIONS, **os.environ})
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            err = (e.stderr or b"").decode(errors="replace")
            raise ProgramError(describe_failure(f"{exe.name} timed out after {timeout} s", None, out, err),
                               None, out, err) from None
        stdout = proc.stdout.decode(errors="replace")
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise ProgramError(
                describe_failure(f"{exe.name} exited with status {proc.returncode}", proc.returncode,
                                 stdout, stderr), proc.returncode, stdout, stderr)
        output = out_path.read_bytes() if out_path.exists() else b""
    return RunResult((output, stdout), parse_counters(stdout))
