"""``fter-tvm compile`` and ``fter-tvm simulate``: argument checking, a project written from a
checkpoint, board limits that do not fit (nothing written), and the simulator's statistics."""

from __future__ import annotations

import json
import re

import pytest
import torch

from fter_tvm import __main__ as cli
from fter_tvm.cli.model_source import ModelSource, load_model, shape
from fter_tvm.models import save_checkpoint
from fter_tvm.models.vit import FTerViT, FTerViTConfig

TINY = FTerViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=2,
                     num_heads=2, mlp_ratio=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(FTerViT(TINY).eval(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_shape_checker():
    assert shape("1,3,224,224") == shape("1x3x224x224") == (1, 3, 224, 224)
    for bad in ("", "1,x", "1,0,2", "-1"):
        with pytest.raises(Exception, match="bad shape"):
            shape(bad)


@pytest.mark.parametrize("argv, message", [
    (["compile", "/nonexistent/m.pt", "-o", "x"], "checkpoint not found"),
    (["compile", "/nonexistent/m.onnx", "-o", "x"], "ONNX file not found"),
    (["compile", "CKPT", "--input-shape", "1,x", "-o", "x"], "bad shape"),
    (["compile", "CKPT", "--flash-mb", "0", "-o", "x"], "positive integer"),
    (["compile", "CKPT", "--name", "has space", "-o", "x"], "project name"),
])
def test_bad_arguments_are_usage_errors(checkpoint, capsys, argv, message):
    argv = [str(checkpoint) if a == "CKPT" else a for a in argv]
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_esp32s3_needs_an_output_dir(checkpoint):
    with pytest.raises(SystemExit, match="needs -o DIR"):
        cli.main(["compile", str(checkpoint)])


def test_unknown_timm_name(tmp_path):
    with pytest.raises(SystemExit, match="not a timm model"):
        cli.main(["compile", "not_a_model_name", "-o", str(tmp_path / "p")])
    assert not (tmp_path / "p").exists()


def test_checkpoint_input_shape_comes_from_its_config(checkpoint):
    model, dims = load_model(ModelSource("checkpoint", str(checkpoint)))
    assert isinstance(model, FTerViT) and dims == (1, 1, 16, 16)
    assert load_model(ModelSource("checkpoint", str(checkpoint)), (1, 1, 32, 32))[1] == (1, 1, 32, 32)


@pytest.mark.parametrize("name,dims", [("vit_tiny_patch16_224", (1, 3, 224, 224)),
                                       ("vit_small_patch16_384", (1, 3, 384, 384))])
def test_timm_name_input_shape_comes_from_its_patch_embedding(name, dims):
    model, got = load_model(ModelSource("timm", name))
    assert got == dims and not model.training
    assert load_model(ModelSource("timm", name), (1, 3, 64, 64))[1] == (1, 3, 64, 64)


def test_compile_writes_a_project(checkpoint, tmp_path, capfd):
    out = tmp_path / "proj"
    assert cli.main(["compile", str(checkpoint), "--target", "esp32s3", "-o", str(out), "--runs", "3"]) == 0
    text, err = capfd.readouterr()
    assert "ESP-IDF project" in text and "arena in internal SRAM" in text
    # TVM's warnings are summarised in one line, not printed one by one (fd 2 included)
    assert len((text + err).splitlines()) <= 10 and "Warning" not in err
    assert err == "" or err.endswith("(1 distinct; --verbose lists them)\n")
    assert (out / "main/main.c").read_text().count("#define FTER_NUM_RUNS 3") == 1
    rep = json.loads((out / "report.json").read_text())
    assert rep["target"] == "esp32s3" and rep["project"]["name"] == "fter_app"
    assert (out / "components/fter_model/CMakeLists.txt").is_file()
    with pytest.raises(SystemExit, match="not empty"):   # refuses to clobber without --overwrite
        cli.main(["compile", str(checkpoint), "-o", str(out)])


def test_board_too_small_is_an_error_and_writes_nothing(checkpoint, tmp_path):
    out = tmp_path / "proj"
    with pytest.raises(SystemExit) as e:
        cli.main(["compile", str(checkpoint), "-o", str(out), "--sram-budget-kb", "1", "--psram-mb", "0"])
    assert "arena needs" in str(e.value.code) and "1024" in str(e.value.code)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow   # 105 s; the simulator's numbers are also checked by test_compile.py
@pytest.mark.xtensa
def test_simulate_prints_instructions(checkpoint, capsys):
    assert cli.main(["simulate", str(checkpoint), "--check", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["instructions"] > 0 and res["bit_identical_to_host"] is True
    assert set(res["by_kind"]) >= {"ternary_matmul", "attention_matmul", "layernorm"}
    assert sum(res["by_kind"].values()) <= res["instructions"] and len(res["logits"]) == 10


@pytest.mark.xtensa
def test_simulate_lx106_table_has_per_mac_and_pie_columns(checkpoint, capsys):
    assert cli.main(["simulate", str(checkpoint), "--core", "lx106"]) == 0
    out = capsys.readouterr().out
    assert "Xtensa lx106" in out and "per MAC" in out and "emulated PIE" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("ternary_matmul"))
    per_mac, micro_per_mac, pie_per_mac = (float(row.split()[i]) for i in (3, 5, 7))
    assert 0 < micro_per_mac < per_mac
    # the lx106 runs the PIE kernels emulated: many lx106 instructions, few PIE ones per MAC
    assert per_mac > 1 and 0 < pie_per_mac < 1
    # two workers by default: the critical path, and the latency estimate with its assumptions
    share = float(re.search(r"critical path \(([0-9.]+) of the one-core count\)", out).group(1))
    assert 0.3 < share < 1
    assert "latency estimate on the lx106 core (1 instruction/cycle at 240 MHz" in out
    one, two = re.search(r"^\s+total\s+([0-9.]+)\s+([0-9.]+)$", out, re.M).groups()
    assert float(two) == pytest.approx(share * float(one), rel=0.01)
    assert re.search(r"flash bound: [0-9,]+ B of weights per inference", out)


@pytest.mark.slow   # 103 s: a whole compile to see that nothing is printed
def test_quiet_compile_prints_nothing(checkpoint, tmp_path, capfd):
    out = tmp_path / "x86"
    assert cli.main(["compile", str(checkpoint), "--target", "x86", "-o", str(out), "--quiet"]) == 0
    assert capfd.readouterr() == ("", "")
    assert "warnings" in json.loads((out / "report.json").read_text())
