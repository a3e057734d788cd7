"""Project export under stress: byte-identical from two processes at once, a SIGKILL mid-write
leaves the old project or nothing (never half of one), a full disk is a clear error with nothing
half-written."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fter_tvm import project
from test_project import files_of

ROOT = Path(__file__).resolve().parents[1]
FILES = {f"components/fter_model/f{i:03d}.c": bytes([i % 251]) * 4096 for i in range(300)}


def python(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                                       os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow   # two more processes importing torch and TVM and compiling
def test_two_processes_export_identical_projects(tmp_path):
    code = """
        import sys
        from fter_tvm.compile import compile
        from test_project import tiny_model_and_input
        model, x = tiny_model_and_input()
        compile(model, "esp32s3", (x,)).export_project(sys.argv[1])
    """
    procs = [python(code, tmp_path / name) for name in ("a", "b")]   # at the same time
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-2000:]
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert a == b and any(k.endswith("fter_model.c") for k in a)


KILLED_WRITER = """
    import sys, time
    from pathlib import Path
    from fter_tvm import project
    from test_export_atomic import FILES
    real, written = Path.write_bytes, []
    def slow_write(self, data):
        real(self, data)
        written.append(self)
        if len(written) == 100:
            Path(sys.argv[2]).touch()   # the parent kills us from here on
        time.sleep(0.01)
    Path.write_bytes = slow_write
    project._write_atomically(FILES, Path(sys.argv[1]))
"""


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "overwrite"])
def test_killed_export_leaves_old_project_or_nothing(tmp_path, existing):
    out, marker = tmp_path / "proj" / "app", tmp_path / "writing"
    old = {"main/main.c": b"old project\n"}
    if existing:
        project._write_atomically(old, out)
    child = python(KILLED_WRITER, out, marker)
    deadline = time.time() + 300
    while not marker.exists():
        assert child.poll() is None, child.communicate()[1].decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    if existing:
        assert files_of(out) == old
    else:
        assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "app"]
    assert leftovers and all(p.startswith(f".app.{child.pid}.") for p in leftovers)
    project._write_atomically({"a.c": b"new\n"}, out)   # the next export clears the dead scratch
    assert [p.name for p in out.parent.iterdir()] == ["app"] and files_of(out) == {"a.c": b"new\n"}


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "overwrite"])
def test_full_disk_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch, existing):
    out = tmp_path / "app"
    old = {"main/main.c": b"old project\n"}
    if existing:
        project._write_atomically(old, out)
    real, calls = Path.write_bytes, []

    def full_disk(self, data):
        calls.append(self)
        if len(calls) > 50:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError, match=r"cannot write the project .*app: No space left on device "
                                      r"\(writing components/fter_model/f050.c\); nothing was written"):
        project._write_atomically(FILES, out)
    assert [p.name for p in tmp_path.iterdir()] == (["app"] if existing else [])
    if existing:
        assert files_of(out) == old


def test_real_full_tmpfs(tmp_path):
    """The same on a 256 KiB tmpfs (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                                            str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with pytest.raises(OSError, match="No space left on device.*nothing was written"):
            project._write_atomically(FILES, mnt / "app")
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
