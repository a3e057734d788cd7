"""Digits data, the training recipe (smoke), the shipped demo checkpoint and model sizes."""

from __future__ import annotations

import pytest
import torch

from fter_tvm.data import digits_split
from fter_tvm.models import FTerViT, FTerViTConfig, load_checkpoint, load_demo_model, model_size_bytes
from fter_tvm.models.checkpoint import DEMO_CHECKPOINT, read_checkpoint_json
from fter_tvm.train import DEMO_CONFIG, evaluate, train_demo


def test_digits_split_is_fixed_and_stratified():
    x_tr, y_tr, x_te, y_te = digits_split(seed=0)
    assert x_tr.shape == (1437, 1, 32, 32) and x_te.shape == (360, 1, 32, 32)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) >= -1.0 and float(x_tr.max()) <= 1.0
    counts = torch.bincount(y_te, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37   # ~36 per class
    again = digits_split(seed=0)
    assert torch.equal(again[2], x_te) and torch.equal(again[3], y_te)


def test_shipped_demo_checkpoint_accuracy():
    model = load_demo_model()
    assert model.cfg == DEMO_CONFIG
    *_, x_te, y_te = digits_split(seed=0)
    acc = evaluate(model, x_te, y_te)
    assert acc >= 0.93, f"demo student accuracy {acc:.4f}"
    meta = read_checkpoint_json(DEMO_CHECKPOINT)["meta"]
    assert meta["teacher_acc"] >= 0.96
    # reproduces what training recorded, up to a rounding flip or two on another CPU / thread count
    assert abs(meta["student_acc"] - acc) <= 2 / len(y_te)
    sizes = DEMO_CHECKPOINT.stat().st_size + DEMO_CHECKPOINT.with_suffix(".pt").stat().st_size
    assert sizes < 1_000_000


def test_train_demo_smoke(tmp_path):
    r = train_demo(tmp_path, progress=False, teacher_epochs=1, kd_epochs=1, qat_epochs=1)
    for key in ("teacher_acc", "student_kd_acc", "student_acc", "teacher_s", "kd_s", "qat_s", "total_s"):
        assert key in r
    assert 0.0 <= r["student_acc"] <= 1.0
    reloaded = load_checkpoint(r["checkpoint"])
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(reloaded(x), r["student"].eval()(x))


def test_model_size_bytes_counts_by_hand():
    cfg = FTerViTConfig(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=8, depth=1,
                        num_heads=2, mlp_ratio=1.0, layer_scale_init=0.1)
    s = model_size_bytes(FTerViT(cfg))
    # ternary matrices (rows x cols): patch 8x16, qkv 24x8, proj 8x8, fc1 8x8, fc2 8x8, head 3x8
    mats = [(8, 16), (24, 8), (8, 8), (8, 8), (8, 8), (3, 8)]
    rows = sum(r for r, _ in mats)
    scales_bias = 4 * rows * 2                    # one fp32 scale and one fp32 bias per row
    norms = 3 * 2                                 # 3 LayerNorms x (gamma, beta) vectors of 8
    emb = 2 * (8 + 5 * 8)                         # fp16 cls (1x8) + pos (5x8)
    two_bit = sum(r * -(-c // 4) for r, c in mats) + norms * 2 + norms * 4
    base3 = sum(r * -(-c // 5) for r, c in mats) + norms * 2 + norms * 4
    assert s["2bit"] == two_bit + scales_bias + emb            # LayerScale folded into scales
    assert s["base3"] == base3 + scales_bias + emb
    assert s["fp32"] == 4 * s["params"]
    assert s["ternary_params"] == sum(r * c for r, c in mats) + norms * 8


@pytest.mark.parametrize("per_channel", [True, False])
def test_model_size_demo_ratio(per_channel):
    s = model_size_bytes(FTerViT(FTerViTConfig(**{**DEMO_CONFIG.__dict__, "per_channel": per_channel})))
    assert s["base3"] < s["2bit"] < s["fp32"] / 8
