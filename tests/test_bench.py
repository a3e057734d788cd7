"""``fter-tvm bench`` on a tiny timm ViT: every engine runs, the table ends with the ratio line
(no timing assertions: this machine is shared)."""

from __future__ import annotations

import pytest

from fter_tvm.__main__ import main
from fter_tvm.bench import ENGINES, bench, format_table, machine_peak
from schedules import x86

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 64, "depth": 1, "num_heads": 2,
        "num_classes": 10}


def test_bench_tiny_model():
    """A DeiT-III (LayerScale): the bench randomizes LayerScale and near-zero parameters before
    comparing, so the logits are O(1) and the comparison sees the blocks."""
    r = bench("deit3_small_patch16_224", runs=2, warmup=1, model_kwargs=TINY, profile=True)
    assert set(r["ms"]) == set(ENGINES) and all(v > 0 for v in r["ms"].values())
    assert r["ratio_vs_ort_int8"] == pytest.approx(r["ms"]["fter-tvm"] / r["ms"]["ort-int8"])
    fid = r["fidelity"]
    assert fid["inputs"] == 8 and r["max_abs_dlogit"] == fid["max_abs_dlogit"]
    assert r["rel_err"] < 1e-3 and fid["top1_errors"] == []
    assert r["max_abs_dlogit"] / r["rel_err"] > 0.05    # max |logit|: not timm's ~1e-4 init
    assert r["report"]["fused"]["unfused"] == []
    assert any(row["name"].startswith("ternary_matmul") for row in r["profile"])
    matmuls = [row for row in r["profile"] if row["name"].startswith("ternary_matmul")]
    assert all(row["gmacs"] > 0 for row in matmuls)          # MACs known from the report
    assert {"fp32_fma"} <= set(r["peak"]) and all(v > 0 for v in r["peak"].values())
    table = format_table(r)
    assert "relative error" in table
    assert table.splitlines()[-1] == f"ratio_vs_ort_int8={r['ratio_vs_ort_int8']:.3f}"
    assert any(line.startswith("machine peak, 2 threads (GMAC/s): ") for line in table.splitlines())
    assert "% of the int8 peak" in table


@pytest.mark.skipif(x86.target_isa(x86.host_target()) == "generic", reason="this CPU has no AVX2")
def test_machine_peak_probe():
    """The probe runs on this machine (x86 with at least FMA and AVX2 here) and names what it
    measured; the int8 sequence moves more MACs per second than fp32 FMAs."""
    peak = machine_peak(1)
    assert {"int8_vpmaddubsw", "int16_vpmaddwd", "fp32_fma"} <= set(peak)
    assert peak["int8_vpmaddubsw"] > peak["fp32_fma"] > 0


def test_bench_cli(capsys):
    args = ["bench", "--target", "x86", "--model", "deit_tiny_patch16_224", "--runs", "2",
            "--warmup", "0"] + [f"--set={k}={v}" for k, v in TINY.items()]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("ort-int8") for line in lines)
    assert lines[-1].startswith("ratio_vs_ort_int8=") and float(lines[-1].split("=")[1]) > 0


def test_bench_rejects_other_targets():
    with pytest.raises(ValueError, match="x86"):
        bench("deit_tiny_patch16_224", target="esp32s3", model_kwargs=TINY)
