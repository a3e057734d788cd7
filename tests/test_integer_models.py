"""``integer_logits`` on ternarize()d timm models: the PyTorch-side integer mode gives the very bits
``compile(..., Esp32s3Target(numerics="integer", fp16_rounded=()))`` computes, for DeiT and for
DeiT-III (LayerScale, no position embedding on the class token); the variants it does not cover
are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import fter_tvm
from fter_tvm.models import integer_logits, ternarize
from fter_tvm.targets import Esp32s3Target

TINY = dict(img_size=32, patch_size=8, depth=2, num_classes=10, embed_dim=32, num_heads=2)


def ternary_timm(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, **{**TINY, **kw}).eval()
    with torch.no_grad():   # timm zero-inits tokens and near-zero LayerScale: make them matter
        for name_, p in model.named_parameters():
            p.copy_(torch.empty_like(p).uniform_(0.5, 1.5) if name_.endswith(".gamma")
                    else p + torch.randn_like(p) * 0.02)
    return ternarize(model).eval()


@pytest.mark.cc
@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "deit3_small_patch16_224"])
def test_integer_logits_equal_the_compiled_integer_mode(name):
    model = ternary_timm(name)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 32, 32, generator=g)
    art = fter_tvm.compile(model, Esp32s3Target(numerics="integer", fp16_rounded=()), (x[:1],))
    got = np.concatenate([art.run(x[i:i + 1]) for i in range(len(x))])
    torch_int = integer_logits(model, x).numpy()
    np.testing.assert_array_equal(torch_int.view(np.uint32), got.view(np.uint32))
    # the MLP reads its weights once per half of its token blocks: the flash bound counts both
    calls = art.aot.calls
    mlps = [c for c in calls if c.name.startswith("ternary_mlp")]
    assert mlps and all(c.weight_reads == 2 for c in mlps)
    assert all(c.weight_reads == 1 for c in calls if c not in mlps)
    assert art.weight_bytes_read == sum(c.const_bytes for c in calls) + sum(
        c.const_bytes for c in mlps)
    with torch.no_grad():
        float_ = model(x).numpy()
    assert np.abs(torch_int - float_).max() < 0.05 * (1 + np.abs(float_).max())


@pytest.mark.parametrize("kw, named", [
    (dict(reg_tokens=4), "a prefix other than one class token"),
    (dict(global_pool="avg", class_token=False, fc_norm=True), "global_pool='avg'"),
    (dict(pre_norm=True), "pre_norm"),
    (dict(qk_norm=True), "qk_norm"),
])
def test_integer_logits_refuses_what_it_does_not_cover(kw, named):
    model = ternary_timm("vit_tiny_patch16_224", **kw)
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace("[", r"\[")):
        integer_logits(model, torch.randn(1, 3, 32, 32))


def test_integer_logits_refuses_a_distilled_model():
    model = ternary_timm("deit_tiny_distilled_patch16_224")
    with pytest.raises(ValueError, match="distillation"):
        integer_logits(model, torch.randn(1, 3, 32, 32))
