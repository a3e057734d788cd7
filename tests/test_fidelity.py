"""The fidelity helpers (``fter_tvm.models.fidelity``): after ``randomize_near_zero`` a DeiT-III's
blocks change its logits materially, and top-1 is judged only where the reference margin is clear."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import timm
import torch

from fter_tvm.models import fidelity, format_fidelity, randomize_near_zero, ternarize

TINY = dict(img_size=32, patch_size=8, depth=2, num_classes=10, embed_dim=32, num_heads=2)


def _deit3(seed=0):
    torch.manual_seed(seed)
    return ternarize(timm.create_model("deit3_small_patch16_224", pretrained=False, **TINY)).eval()


def _without_blocks(model):
    stripped = copy.deepcopy(model)
    stripped.blocks = torch.nn.Identity()
    return stripped


@torch.no_grad()
def _block_effect(model, x) -> tuple[float, float]:
    """max |logit change| when every block is removed, and the same relative to max |logit|."""
    full, stripped = model(x).numpy(), _without_blocks(model)(x).numpy()
    change = float(np.abs(full - stripped).max())
    return change, change / float(np.abs(full).max())


def test_randomize_near_zero_makes_deit3_blocks_matter():
    model = _deit3()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    gammas = {n for n, _ in model.named_parameters() if n.endswith(("ls1.gamma", "ls2.gamma"))}
    assert len(gammas) == 4 and all(p.detach().abs().max().item() < 1e-4 for n, p in
                                    model.named_parameters() if n in gammas)   # timm's 1e-5
    before, _ = _block_effect(model, x)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()
               if p.detach().abs().max().item() >= 1e-3}

    changed = randomize_near_zero(model, seed=0)

    after, relative = _block_effect(model, x)
    assert before < 1e-5                  # at timm's init the blocks are invisible
    assert after > 1e-2 and relative > 0.3, (after, relative)
    assert gammas <= set(changed) and {"cls_token", "head.bias", "blocks.0.attn.qkv.bias"} <= set(changed)
    params = {n: p.detach() for n, p in model.named_parameters()}
    assert all(0.5 <= params[n].min().item() and params[n].max().item() <= 1.5 for n in gammas)
    assert all(torch.equal(params[n], w) for n, w in weights.items())   # the rest is untouched
    again = _deit3()
    randomize_near_zero(again, seed=0)
    assert all(torch.equal(p, params[n]) for n, p in again.named_parameters())   # seeded


def test_fidelity_judges_top1_only_where_the_margin_is_clear():
    ref = np.array([[1.0, 0.95, 0.0],    # margin 0.05
                    [1.0, 0.3, 0.0],     # margin 0.7
                    [0.0, 0.0, 1.0]])    # margin 1.0
    got = np.array([[0.95, 1.0, 0.0],    # flipped, but the margin is below max |dlogit|
                    [1.0, 0.3, 0.0],
                    [0.3, 0.0, 1.0]])    # max |dlogit| 0.3, top-1 kept
    f = fidelity(ref, got)
    assert f["max_abs_dlogit"] == pytest.approx(0.3) and f["rel_err"] == pytest.approx(0.3)
    assert f["judged"] == 2 and f["top1_agree"] == 1.0 and f["top1_errors"] == []
    assert f["top1_agree_all"] == pytest.approx(2 / 3)
    # a flip where the margin (0.7) exceeds max |dlogit| (0.4) counts
    got[1] = [0.6, 0.7, 0.0]
    f = fidelity(ref, got)
    assert f["max_abs_dlogit"] == pytest.approx(0.4)
    assert f["judged"] == 2 and f["top1_errors"] == [1] and f["top1_agree"] == 0.5
    assert "top-1 0.500 on the 2 of 3 inputs" in format_fidelity(f)
    # nothing clear: top-1 not judged, and the line says so
    f = fidelity(ref[:1], got[:1])
    assert f["judged"] == 0 and f["top1_agree"] is None and "not judged" in format_fidelity(f)
    with pytest.raises(ValueError, match="shapes differ"):
        fidelity(ref, got[:2])
