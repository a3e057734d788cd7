"""End to end: compile() for x86 and esp32s3 against the PyTorch fake-quant model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import tvm
from torch import nn

import fter_tvm as fc
from fter_tvm.models.quant import fake_quant_act
from relay_passes.base import FusionError
from fter_tvm.models.vit import FTerViT, FTerViTConfig

TINY = dict(img_size=16, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=2,
            num_heads=2, mlp_ratio=2)


def tiny_model(seed=0, **over) -> FTerViT:
    torch.manual_seed(seed)
    return FTerViT(FTerViTConfig(**{**TINY, **over})).eval()


def agreement(art, model, xs):
    with torch.no_grad():
        ref = np.stack([model(x).numpy() for x in xs])
    got = np.stack([art.run(x) for x in xs])
    top1 = float(np.mean(ref.reshape(len(xs), -1).argmax(1) == got.reshape(len(xs), -1).argmax(1)))
    return top1, float(np.abs(ref - got).max())


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(layer_scale_init=0.1)


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 1, 16, 16, generator=g) for _ in range(16)]


def test_x86_counts_and_agreement(tiny, inputs, capfd):
    art = fc.compile(tiny, "x86", (inputs[0],))
    assert capfd.readouterr().err == ""   # TVM's log lines are captured into the report
    warned = art.report["warnings"]
    assert warned["count"] == sum(m["count"] for m in warned["messages"])
    fused = art.report["fused"]
    assert (fused["ternary_matmul"], fused["ternary_layernorm"], fused["int8_attention"]) == (10, 5, 2)
    assert fused["unfused"] == []
    top1, dmax = agreement(art, tiny, inputs)
    print(f"x86 tiny: top-1 agreement {top1:.3f}, max |dlogit| {dmax:.2e}")
    assert top1 >= 0.9 and dmax < 1e-2


@pytest.mark.cc
@pytest.mark.xtensa
def test_esp32s3_host_and_xtensa_bit_identical(tiny, inputs):
    art = fc.compile(tiny, "esp32s3", (inputs[0],))
    assert art.report["arena_bytes"] > 0 and art.report["fused"]["unfused"] == []
    top1, dmax = agreement(art, tiny, inputs)
    print(f"esp32s3 host-sim tiny: top-1 agreement {top1:.3f}, max |dlogit| {dmax:.2e}")
    assert top1 >= 0.9 and dmax < 1e-2
    for x in inputs[:4]:
        y_sim, stats = art.simulate(x)
        assert y_sim.tobytes() == art.run(x).tobytes()
        assert stats["instructions"] > stats["by_kind"]["ternary_matmul"] > 0


def test_strict_names_unfused_node():
    class FloatHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = tiny_model()
            self.extra = nn.Linear(10, 3)          # a full-precision layer a user left in

        def forward(self, x):
            return self.extra(self.body(x))

    x = torch.randn(1, 1, 16, 16)
    art = fc.compile(FloatHead().eval(), "x86", (x,))
    assert any("extra" in name for name in art.report["fused"]["unfused"])
    with pytest.raises(FusionError, match="extra"):
        fc.compile(FloatHead().eval(), "x86", (x,), strict=True)


def test_bad_input_shape_is_rejected(tiny, inputs):
    art = fc.compile(tiny, "x86", (inputs[0],))
    with pytest.raises(ValueError, match="shape"):
        art.run(np.zeros((1, 1, 8, 8), np.float32))


def test_ternary_matmul_kernel_is_bit_exact():
    """The TIR kernel's int32 accumulation equals numpy's (alpha = s = 1, bias 0)."""
    from schedules import compute
    from schedules.formats import pack
    from schedules.x86 import schedule_module

    rng = np.random.default_rng(0)
    t, k, n = 5, 77, 24
    q = rng.integers(-128, 128, (t, k)).astype(np.int8)
    w = rng.integers(-1, 2, (n, k)).astype(np.int8)
    ref = q.astype(np.int64) @ w.T.astype(np.int64)
    for fmt in ("b2", "b3"):
        func = compute.ternary_matmul(t, k, n, fmt).with_attr("global_symbol", "tmm")
        mod = schedule_module(tvm.IRModule({"tmm": func}), None)
        f = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))["tmm"]
        args = [q, np.ones(t, np.float32), pack(w, fmt), np.ones(n, np.float32),
                np.zeros(n, np.float32), np.zeros((t, n), np.float32)]
        targs = [tvm.runtime.tensor(a) for a in args]
        f(*targs)
        np.testing.assert_array_equal(targs[-1].numpy(), ref.astype(np.float32))


class BitLinear(nn.Linear):
    """Independently written BitNet b1.58 linear: per-tensor absmean weights, 127/absmax inputs."""

    def forward(self, x):
        scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
        xq = x + ((x * scale).round().clamp(-128, 127) / scale - x).detach()
        ws = 1.0 / self.weight.abs().mean().clamp(min=1e-5)
        wq = self.weight + ((self.weight * ws).round().clamp(-1, 1) / ws - self.weight).detach()
        return nn.functional.linear(xq, wq, self.bias)


class BitNorm(nn.Module):
    """Its own LayerNorm class: ternary gamma/beta by sign with a mean-magnitude scale."""

    def __init__(self, d):
        super().__init__()
        self.g = nn.Parameter(torch.randn(d))
        self.b = nn.Parameter(torch.randn(d) * 0.1)

    def forward(self, x):
        def tern(p):
            a = p.abs().mean()
            return torch.clamp(torch.round(p / a), -1, 1) * a
        return nn.functional.layer_norm(x, x.shape[-1:], tern(self.g), tern(self.b), 1e-6)


class BitAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.hd = heads, d // heads
        self.qkv, self.out = BitLinear(d, 3 * d), BitLinear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.hd).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        q, k = fake_quant_act(q), fake_quant_act(k)
        v = fake_quant_act(v.transpose(-1, -2)).transpose(-1, -2)
        att = torch.softmax(q @ k.transpose(-1, -2) / self.hd ** 0.5, dim=-1)
        att = torch.clamp(torch.round(att * 255), 0, 255) / 255
        return self.out((att @ v).transpose(1, 2).reshape(b, n, d))


class BitViT(nn.Module):
    """A ternary ViT written without fter_tvm's layers (only its quantizer helper for Q/K/V)."""

    def __init__(self, d=32, depth=2, heads=2, classes=7):
        super().__init__()
        self.embed = BitLinear(16, d)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(nn.ModuleList([BitNorm(d), BitAttention(d, heads), BitNorm(d),
                                              BitLinear(d, 2 * d), BitLinear(2 * d, d)]))
        self.norm, self.head = BitNorm(d), BitLinear(d, classes)

    def forward(self, x):                       # x: [B, tokens, 16] (already patchified)
        x = self.embed(x)
        for n1, att, n2, fc1, fc2 in self.blocks:
            x = x + att(n1(x))
            x = x + fc2(nn.functional.gelu(fc1(n2(x))))
        return self.head(self.norm(x).mean(dim=1))


def test_independent_bitnet_vit_is_recognised_by_math():
    torch.manual_seed(3)
    model = BitViT().eval()
    xs = [torch.randn(1, 9, 16) for _ in range(16)]
    art = fc.compile(model, "x86", (xs[0],))
    fused = art.report["fused"]
    # embed + 4 per block + head; 2 norms per block + the final norm (it feeds a mean, not a
    # quantizer: ternary_layernorm_float)
    assert fused["ternary_matmul"] == 1 + 4 * 2 + 1
    assert fused["ternary_layernorm"] == 5 and fused["unfused"] == []
    assert fused["int8_attention"] == 2
    top1, dmax = agreement(art, model, xs)
    print(f"BitNet-style ViT: top-1 agreement {top1:.3f}, max |dlogit| {dmax:.2e}")
    assert top1 >= 0.9


@pytest.mark.cc
def test_esp32s3_deit3_style_embedding_and_layer_scale(inputs):
    """DeiT-III order (position embedding on the patch tokens only, then cls) and LayerScale:
    the whole embedding still becomes one kernel, and results match PyTorch."""
    model = tiny_model(seed=4, layer_scale_init=0.1, no_embed_class=True)
    art = fc.compile(model, "esp32s3", (inputs[0],))
    names = [c["name"] for c in art.report["kernel_calls"] if c["kind"] != "decode_f16"]
    assert names[0].startswith("patch_embed") and art.report["fused"]["unfused"] == []
    top1, dmax = agreement(art, model, inputs)
    assert top1 >= 0.9 and dmax < 1e-2
