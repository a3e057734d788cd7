"""timm ViT variants a user brings (ternarize -> compile on both targets) and an independently
written BitNet-style ViT with a float patch input: everything fused, every ternary weight packed."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

import fter_tvm as fc
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


def check_agreement(art, model, xs):
    with torch.no_grad():
        ref = np.concatenate([model(x).numpy() for x in xs])
    got = np.concatenate([np.asarray(art.run(x)).reshape(1, -1) for x in xs])
    f = fidelity(ref, got)
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


class SignQuant(nn.Module):
    """Its own activation quantizer spelling: multiply by 127/absmax, round, clamp, divide."""

    def forward(self, x):
        r = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
        return (x * r).round().clamp(-128, 127) / r


def bit_weight(w):
    s = w.abs().mean(dim=1, keepdim=True).clamp(min=1e-5)   # per output channel
    return (w / s).round().clamp(-1, 1) * s


class BitLinearLN(nn.Linear):
    """BitNet b1.58 linear with its LayerNorm inside (written out as mean/variance), then the
    quantizer and ternary weights."""

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        x = (x - mu) * torch.rsqrt(var + 1e-5)
        return nn.functional.linear(SignQuant()(x), bit_weight(self.weight), self.bias)


class FloatPatchEmbed(nn.Conv2d):
    """Ternary conv weights on the raw image: no quantizer in front."""

    def forward(self, x):
        return nn.functional.conv2d(x, bit_weight(self.weight.flatten(1)).view_as(self.weight),
                                    self.bias, stride=self.stride)


class BitBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.hd = heads, d // heads
        self.qkv, self.proj = BitLinearLN(d, 3 * d), BitLinearLN(d, d)
        self.fc1, self.fc2 = BitLinearLN(d, 2 * d), BitLinearLN(2 * d, d)
        self.q = SignQuant()

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.hd).permute(2, 0, 3, 1, 4)
        q, k = self.q(q), self.q(k)
        v = self.q(v.transpose(-1, -2)).transpose(-1, -2)
        att = torch.softmax(q @ k.transpose(-1, -2) * self.hd ** -0.5, dim=-1)
        att = torch.clamp(torch.round(att * 255), 0, 255) / 255
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(x)))


class BitNetViT(nn.Module):
    def __init__(self, d=32, depth=2, heads=2, classes=7):
        super().__init__()
        self.embed = FloatPatchEmbed(1, d, 4, stride=4)
        self.pos = nn.Parameter(torch.randn(1, 16, d) * 0.1)
        self.blocks = nn.Sequential(*[BitBlock(d, heads) for _ in range(depth)])
        self.head = BitLinearLN(d, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.blocks(x).mean(dim=1))


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
