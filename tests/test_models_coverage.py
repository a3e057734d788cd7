"""timm ViT variants a user brings (ternarize -> compile on both targets) and an independently
written BitNet-style ViT with a float patch input: everything fused, every ternary weight packed."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

import fter_tvm as fc
from bitnet_style import BitNetViT
from fter_tvm.models import fidelity, randomize_near_zero, ternarize

TINY = dict(img_size=32, patch_size=8, depth=1, num_classes=10, embed_dim=32, num_heads=2)
VARIANTS = {
    "deit_distilled": ("deit_tiny_distilled_patch16_224", {}),
    "avg_pool_fc_norm": ("vit_tiny_patch16_224",
                         {"global_pool": "avg", "class_token": False, "fc_norm": True}),
    "reg_tokens": ("vit_tiny_patch16_224", {"reg_tokens": 4}),
    "deit_tiny": ("deit_tiny_patch16_224", {}),
    "deit3_layer_scale": ("deit3_small_patch16_224", {}),
    "vit_small_patch32": ("vit_small_patch32_224", {"patch_size": 16}),
    "pre_norm": ("vit_tiny_patch16_224", {"pre_norm": True}),
    "qk_norm": ("vit_tiny_patch16_224", {"qk_norm": True}),
}


def variant(key: str, seed: int = 0) -> nn.Module:
    name, kw = VARIANTS[key]
    torch.manual_seed(seed)
    teacher = timm.create_model(name, pretrained=False, **{**TINY, **kw}).eval()
    with torch.no_grad():   # timm zero-inits cls/reg tokens and LayerScale-free biases: perturb
        for p in teacher.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    student = ternarize(teacher).eval()
    randomize_near_zero(student, seed=seed)   # LayerScale O(1): DeiT-III's blocks must count
    return student


def integer_margin(art) -> float:
    """The top-1 margin factor for ``art``: 1 (judge where PyTorch's top-2 margin exceeds max
    |Δlogit|), 2 for the integer numerics (esp32s3's default). Its fixed-point epilogues move
    logits by about as much as the float build's fp16 biases do, and a flip needs the two logits
    to move toward each other by the whole margin, so margins between 1x and 2x max |Δlogit| can
    flip within the error bound each test asserts (measured: DeiT-III variant, input 4, margin
    0.0026 against max |Δlogit| 0.0022)."""
    numerics = art.report.get("numerics", {}).get("mode")
    return 2.0 if numerics == "integer" else 1.0


def check_agreement(art, model, xs):
    with torch.no_grad():
        ref = np.concatenate([model(x).numpy() for x in xs])
    got = np.concatenate([np.asarray(art.run(x)).reshape(1, -1) for x in xs])
    f = fidelity(ref, got, margin_factor=integer_margin(art))
    assert f["top1_errors"] == [], f"top-1 differs where the margin is clear: {f['top1_errors']}"
    return f["max_abs_dlogit"]


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(5)
    return [torch.randn(1, 3, 32, 32, generator=g) for _ in range(6)]


@pytest.mark.parametrize("target", ["x86", pytest.param("esp32s3", marks=pytest.mark.cc)])
@pytest.mark.parametrize("key", list(VARIANTS))
def test_timm_variant_compiles_fused(key, target, inputs):
    model = variant(key)
    art = fc.compile(model, target, (inputs[0],))
    fused = art.report["fused"]
    assert fused["unfused"] == []
    assert fused["int8_attention"] == 1 and fused["ternary_matmul"] >= 5
    dmax = check_agreement(art, model, inputs)
    print(f"{key} {target}: {fused}, max |dlogit| {dmax:.2e}")
    assert dmax < 1e-2


@pytest.mark.cc
@pytest.mark.xtensa
def test_distilled_host_sim_equals_lx106(inputs):
    art = fc.compile(variant("deit_distilled"), "esp32s3", (inputs[0],))
    for x in inputs[:2]:
        y_sim, _ = art.simulate(x)
        assert y_sim.tobytes() == art.run(x).tobytes()


@pytest.mark.parametrize("target", ["x86", pytest.param("esp32s3", marks=pytest.mark.cc)])
def test_bitnet_style_float_patch_input_every_weight_packed(target):
    torch.manual_seed(2)
    model = BitNetViT().eval()
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(1, 1, 16, 16, generator=g) for _ in range(8)]
    art = fc.compile(model, target, (xs[0],))
    fused = art.report["fused"]
    assert fused["unfused"] == []
    assert fused["ternary_matmul_float"] == 1                 # the patch embedding, on the image
    assert fused["ternary_matmul"] == 4 * 2 + 1 and fused["int8_attention"] == 2
    assert fused["ternary_layernorm"] == 4 * 2 + 1            # the LNs inside the linears
    # no float matrix is left: outside the kernels only the position table and the conv bias
    # (added in NCHW after the patch layout) stay float
    matrices = [r for r in art.report["layers"] if r["kind"] in ("relax.matmul", "relax.nn.conv2d")]
    assert matrices == []
    assert art.report["weight_bytes"]["other_constants"] == 4 * 16 * 32 + 4 * 32
    dmax = check_agreement(art, model, xs)
    print(f"BitNet-style ViT {target}: {fused}, max |dlogit| {dmax:.2e}")
    assert dmax < 1e-2
