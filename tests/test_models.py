"""FTerViT, ternarize(), checkpoints: structure and numerics on random-init models."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn

import fter_tvm
from fter_tvm.models import (FTerViT, FTerViTConfig, Int8Attention, TernaryBitConv2d, TernaryLayerNorm,
                             TernaryLinear, load_checkpoint, save_checkpoint, ternarize)
from fter_tvm.models import layers as layers_mod
from fter_tvm.models.quant import fake_ternary

TINY = FTerViTConfig(img_size=32, patch_size=8, in_chans=1, num_classes=10, embed_dim=32,
                     depth=2, num_heads=2, mlp_ratio=2.0)


def tiny_timm(**kw) -> VisionTransformer:
    args = dict(img_size=32, patch_size=8, in_chans=1, num_classes=10, embed_dim=32, depth=2,
                num_heads=2, mlp_ratio=2.0)
    return VisionTransformer(**{**args, **kw})


def _quantized_params(model: nn.Module):
    """(name, effective weight, per_channel) for every ternary tensor, through its quantizer."""
    for name, m in model.named_modules():
        if isinstance(m, (TernaryLinear, TernaryBitConv2d)):
            yield f"{name}.weight", fake_ternary(m.weight, m.per_channel), m.per_channel
        elif isinstance(m, TernaryLayerNorm):
            yield f"{name}.weight", fake_ternary(m.weight, False), False
            yield f"{name}.bias", fake_ternary(m.bias, False), False


def assert_three_valued(model: nn.Module) -> None:
    with torch.no_grad():
        for name, w, per_channel in _quantized_params(model):
            rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
            alpha = rows.abs().amax(dim=1, keepdim=True)
            codes = rows / alpha.clamp(min=1e-30)
            ok = (codes == 0) | (codes == 1) | (codes == -1)
            assert bool(ok.all()), f"{name} is not ternary per {'channel' if per_channel else 'tensor'}"


def assert_structure(student: FTerViT, depth: int) -> None:
    mods = list(student.modules())
    n_lin = sum(type(m) is TernaryLinear for m in mods)
    n_conv = sum(type(m) is TernaryBitConv2d for m in mods)
    n_ln = sum(type(m) is TernaryLayerNorm for m in mods)
    assert (n_lin, n_conv, n_ln) == (4 * depth + 1, 1, 2 * depth + 1)
    plain = [n for n, m in student.named_modules() if type(m) in (nn.Linear, nn.Conv2d, nn.LayerNorm)]
    assert plain == [], f"full-precision layers left: {plain}"


def _convert_and_check(name: str) -> None:
    torch.manual_seed(0)
    teacher = timm.create_model(name, pretrained=False).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = ternarize(teacher, per_channel=True)
    assert_structure(student, depth=12)
    assert_three_valued(student)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        y_fp, y_t = teacher(x), student(x)
    assert y_t.shape == (1, 1000) and torch.isfinite(y_t).all()
    assert not torch.allclose(y_fp, y_t)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "source modified"


def test_ternarize_deit_tiny():
    _convert_and_check("deit_tiny_patch16_224")


@pytest.mark.slow
def test_ternarize_deit3_small_with_layerscale():
    _convert_and_check("deit3_small_patch16_224")


def test_ternarize_replaces_modules_and_keeps_weights():
    m = tiny_timm(init_values=1e-4, no_embed_class=True, qkv_bias=False)
    s = ternarize(m, per_channel=False)
    assert type(s) is type(m) and s.global_pool == m.global_pool
    assert type(s.blocks[0].attn) is Int8Attention and s.blocks[0].attn.qkv.bias is None
    assert not s.head.per_channel
    assert torch.equal(s.blocks[1].ls2.gamma, m.blocks[1].ls2.gamma)
    assert torch.equal(s.patch_embed.proj.weight, m.patch_embed.proj.weight)
    assert torch.equal(s.norm.weight, m.norm.weight)
    assert torch.equal(s.pos_embed, m.pos_embed.half().float())   # stored fp16
    assert_three_valued(s)   # per tensor


def test_wiring_matches_timm_without_quantizers(monkeypatch):
    """With every quantizer replaced by identity, the ternarized model computes timm's function."""
    identity = lambda x, *a, **k: x  # noqa: E731
    for n in ("fake_quant_act", "fake_ternary", "fake_quant_prob"):
        monkeypatch.setattr(layers_mod, n, identity)
    torch.manual_seed(0)
    for kw in ({}, {"init_values": 0.5, "no_embed_class": True}, {"qk_norm": True},
               {"global_pool": "avg", "class_token": False, "fc_norm": True, "reg_tokens": 2},
               {"pre_norm": True}):
        m = tiny_timm(**kw).eval()
        with torch.no_grad():
            for p in m.parameters():   # timm zero-inits some tensors: make every one matter
                p.add_(torch.randn_like(p) * 0.05)
            for name in ("cls_token", "reg_token", "pos_embed"):   # ternarize rounds them to fp16
                p = getattr(m, name, None)
                if p is not None:
                    p.copy_(p.half().float())
        s = ternarize(m).eval()
        x = torch.randn(3, 1, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(s(x), m(x), rtol=1e-4, atol=1e-5)


def test_cls_and_pos_are_fp16_values():
    torch.manual_seed(0)
    s = FTerViT(TINY).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        for p in (s.pos_embed, s.cls_token):
            p.copy_(torch.randn_like(p))
        y = s(x)
        for p in (s.pos_embed, s.cls_token):   # storing them as fp16 changes nothing
            p.copy_(p.half().float())
        assert torch.equal(s(x), y)


@pytest.mark.parametrize("kw", [{"global_pool": "avg", "class_token": False, "fc_norm": True},
                                {"qk_norm": True}, {"reg_tokens": 2}, {"pre_norm": True}])
def test_variants_become_fully_ternary(kw):
    s = ternarize(tiny_timm(**kw))
    plain = [n for n, m in s.named_modules() if type(m) in (nn.Linear, nn.Conv2d, nn.LayerNorm)]
    assert plain == [] and any(isinstance(m, TernaryLayerNorm) for m in s.modules())
    assert_three_valued(s)


def test_dynamic_img_size_is_rejected():
    with pytest.raises(ValueError, match="dynamic_img_size"):
        ternarize(tiny_timm(dynamic_img_size=True))


def test_custom_block_with_conv1d_is_rejected():
    m = tiny_timm()
    m.blocks[1].mlp.act = nn.Sequential(nn.GELU(), nn.Conv1d(64, 64, 1))
    with pytest.raises(ValueError) as e:
        ternarize(m)
    assert "blocks.1.mlp.act.1" in str(e.value) and "Conv1d" in str(e.value)


def test_distilled_deit_has_two_ternary_heads_averaged():
    torch.manual_seed(0)
    m = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32,
                          depth=1, num_classes=10).eval()
    s = ternarize(m).eval()
    assert type(s.head) is TernaryLinear and type(s.head_dist) is TernaryLinear
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = s.forward_features(x)
        expect = (s.head(feats[:, 0]) + s.head_dist(feats[:, 1])) / 2
        torch.testing.assert_close(s(x), expect)


def test_not_a_vit_is_rejected():
    with pytest.raises(ValueError, match="VisionTransformer"):
        ternarize(nn.Linear(3, 3))


def test_one_training_step_lowers_loss_and_reaches_every_parameter():
    torch.manual_seed(0)
    s = ternarize(tiny_timm(init_values=0.1)).train()
    x, y = torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,))
    opt = torch.optim.SGD(s.parameters(), lr=0.05)
    loss0 = F.cross_entropy(s(x), y)
    loss0.backward()
    for name, p in s.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    opt.step()
    with torch.no_grad():
        assert F.cross_entropy(s(x), y) < loss0


def test_config_json_round_trip():
    s = FTerViT(TINY)
    cfg = json.loads(json.dumps(s.config))
    assert FTerViT.from_config(cfg).cfg == s.cfg
    with pytest.raises(ValueError, match="bogus"):
        FTerViT.from_config({**cfg, "bogus": 1})


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    s = FTerViT(FTerViTConfig(**{**TINY.__dict__, "layer_scale_init": 0.1,
                                 "no_embed_class": True})).eval()
    x = torch.randn(4, 1, 32, 32)
    for target in (tmp_path / "a.pt", tmp_path / "dir"):
        save_checkpoint(s, target, meta={"note": "test"})
        r = load_checkpoint(target)
        with torch.no_grad():
            assert torch.equal(r(x), s(x))
    assert not list(tmp_path.glob(".*tmp")), "temp files left behind"


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_checkpoint(tmp_path / "missing.pt")
    save_checkpoint(FTerViT(TINY), tmp_path / "m.pt")
    (tmp_path / "m.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="m.pt"):
        load_checkpoint(tmp_path / "m.json")
    (tmp_path / "m.json").write_text("{ nope")
    with pytest.raises(ValueError, match="m.json"):
        load_checkpoint(tmp_path / "m.json")
    save_checkpoint(FTerViT(TINY), tmp_path / "m.pt")
    (tmp_path / "m.pt").unlink()
    with pytest.raises(FileNotFoundError, match="m.pt"):
        load_checkpoint(tmp_path / "m.json")


def test_torch_export_tiny():
    s = FTerViT(FTerViTConfig(**{**TINY.__dict__, "layer_scale_init": 0.1})).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        ep = torch.export.export(s, (x,))
        torch.testing.assert_close(ep.module()(x), s(x))


def test_public_surface():
    assert fter_tvm.models.ternarize is ternarize
    assert fter_tvm.models.FTerViTConfig is FTerViTConfig
