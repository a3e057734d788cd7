"""The fter-tvm CLI: lazy dispatch, --help, and the demo command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fter_tvm import __main__ as cli


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "fter_tvm", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in ("compile", "tune", "simulate", "bench", "demo"):
        assert name in out


def test_help_does_not_import_commands():
    code = ("import sys; from fter_tvm.__main__ import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('fter_tvm.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_missing_command_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "nope", ("fter_tvm.cli.nope_not_written", "placeholder"))
    with pytest.raises(SystemExit, match="not available yet"):
        cli.main(["nope"])
    assert cli.main(["demo", "--json", "--no-compile"]) == 0   # other commands unaffected


def test_demo_prints_accuracy_and_sizes(capsys):
    assert cli.main(["demo", "--no-compile"]) == 0
    out = capsys.readouterr().out
    assert "student ternary test accuracy" in out and "2-bit" in out and "base-3" in out


@pytest.mark.slow   # 286 s in the default tier's last timing (2 loaded cores): make demo's path
@pytest.mark.cc
@pytest.mark.xtensa
def test_demo_compiles_simulates_and_exports(capsys, tmp_path):
    """The whole `make demo` path: both targets, the ISS, the ESP-IDF project."""
    assert cli.main(["demo", "--json", "--project", str(tmp_path / "proj"), "--sim", "2"]) == 0
    res = json.loads(capsys.readouterr().out)["compiled"]
    assert res["x86_agree"] >= 0.99 and res["esp32s3_agree"] >= 0.99
    # both numerics modes are reported; the default (integer) one holds the fidelity bar
    assert res["esp32s3_numerics"] == "integer"
    assert res["esp32s3_acc"] >= res["torch_acc"] - 0.003
    assert res["esp32s3_float_agree"] >= 0.99
    assert res["sim_bit_identical"] == res["sim_images"] == 2
    assert res["instructions"] > 0 and res["fused"]["unfused"] == []
    assert (tmp_path / "proj" / "CMakeLists.txt").exists()
    assert (tmp_path / "proj" / "report.json").exists()


def test_demo_json(capsys):
    assert cli.main(["demo", "--json", "--no-compile"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["student_acc"] >= 0.93 and res["sizes"]["2bit"] < res["sizes"]["fp32"]


def test_demo_rejects_missing_checkpoint(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--checkpoint", "/nonexistent/ckpt.pt"])
    assert "checkpoint not found" in capsys.readouterr().err
