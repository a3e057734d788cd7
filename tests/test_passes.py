"""Relax passes: structural checks per pass, "pattern absent -> unchanged", and numerics vs torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import tvm
from torch import nn
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from fter_tvm.models import Int8Attention, TernaryLayerNorm, TernaryLinear
from fter_tvm.models.quant import ternary_codes
from relay_passes import (FoldLayerScale, FuseEpilogue, FuseInt8Attention, FuseTernaryLayerNorm,
                          FuseTernaryMatmul, SimplifySTE, fter_pipeline)
from relay_passes.base import FusionError, is_kernel_call
from relay_passes.frontend import ImportError_, export_torch, from_torch_program
from schedules.formats import pack, unpack


def imported(model, *shape):
    mod = from_torch_program(export_torch(model.eval(), (torch.randn(*shape),)))
    return tvm.transform.Sequential([SimplifySTE(), relax.transform.FoldConstant()])(mod)


def kernel_calls(mod) -> list[tuple[str, relax.Call]]:
    out = []
    for block in mod["main"].body.blocks:
        for b in block.bindings:
            v = b.value
            if is_kernel_call(v):
                out.append((str(mod[v.args[0]].attrs["fter.kind"]), v))
    return out


def op_names(mod) -> list[str]:
    return [b.value.op.name for block in mod["main"].body.blocks for b in block.bindings
            if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)]


def kinds(mod) -> list[str]:
    return [k for k, _ in kernel_calls(mod)]


def test_simplify_ste_before_expected():
    @I.ir_module
    class Before:
        @R.function
        def main(x: R.Tensor((4,), "float32"), q: R.Tensor((4,), "float32")):
            with R.dataflow():
                d = R.subtract(q, x)
                y = R.add(x, d)
                R.output(y)
            return y

    @I.ir_module
    class Expected:
        @R.function
        def main(x: R.Tensor((4,), "float32"), q: R.Tensor((4,), "float32")):
            return q

    tvm.ir.assert_structural_equal(SimplifySTE()(Before), Expected)


def test_simplify_ste_absent_unchanged():
    @I.ir_module
    class Before:
        @R.function
        def main(x: R.Tensor((4,), "float32"), q: R.Tensor((4,), "float32")):
            with R.dataflow():
                d = R.subtract(q, q)
                y = R.add(x, d)
                R.output(y)
            return y

    tvm.ir.assert_structural_equal(SimplifySTE()(Before), Before)


@pytest.mark.parametrize("fmt", ["b2", "b3"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_fuse_ternary_matmul_packs_the_torch_codes(fmt, per_channel):
    lin = TernaryLinear(13, 7, per_channel=per_channel)
    mod = FuseTernaryMatmul(fmt=fmt)(imported(lin, 2, 3, 13))
    assert kinds(mod) == ["quantize_act", "ternary_matmul"]
    assert "relax.matmul" not in op_names(mod)
    _, call = kernel_calls(mod)[1]
    packed, alpha = (call.args[1].fields[i].value.numpy() for i in (2, 3))
    codes, a = ternary_codes(lin.weight.detach(), per_channel)
    np.testing.assert_array_equal(packed, pack(codes.numpy().astype(np.int8), fmt))
    np.testing.assert_array_equal(unpack(packed, 13, fmt), codes.numpy())
    np.testing.assert_allclose(alpha, np.broadcast_to(a.numpy().reshape(-1), (7,)), rtol=1e-6)


def test_fuse_ternary_matmul_absent_unchanged():
    """A float Linear (no quantizer, non-ternary weight) is left alone."""
    before = imported(nn.Sequential(nn.Linear(8, 4), nn.GELU()), 2, 8)
    tvm.ir.assert_structural_equal(FuseTernaryMatmul()(before), before)


class _QuantFloatLinear(nn.Module):
    """Quantized activations into a full-precision weight: fusable only if the weight were ternary."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        from fter_tvm.models.quant import fake_quant_act
        return self.fc(fake_quant_act(x))


def test_fuse_ternary_matmul_strict_rejects_float_weight():
    before = imported(_QuantFloatLinear(), 2, 8)
    assert kinds(FuseTernaryMatmul()(before)) == []
    # errors raised inside a pass cross TVM's FFI and come back as RuntimeError with our message
    with pytest.raises((FusionError, RuntimeError), match="not ternary"):
        FuseTernaryMatmul(strict=True)(before)


class _LnLinear(nn.Module):
    def __init__(self, ternary_norm: bool):
        super().__init__()
        self.norm = TernaryLayerNorm(16) if ternary_norm else nn.LayerNorm(16)
        if not ternary_norm:
            nn.init.normal_(self.norm.weight)
        self.fc = TernaryLinear(16, 8)

    def forward(self, x):
        return self.fc(self.norm(x))


def test_fuse_ternary_layernorm():
    mod = FuseTernaryLayerNorm()(FuseTernaryMatmul()(imported(_LnLinear(True), 1, 5, 16)))
    assert kinds(mod) == ["ternary_layernorm", "ternary_matmul"]
    assert "relax.nn.layer_norm" not in op_names(mod)


def test_fuse_ternary_layernorm_absent_unchanged():
    """A LayerNorm with full-precision gamma stays a LayerNorm followed by the plain quantizer."""
    before = FuseTernaryMatmul()(imported(_LnLinear(False), 1, 5, 16))
    tvm.ir.assert_structural_equal(FuseTernaryLayerNorm()(before), before)


def test_fuse_int8_attention():
    mod = FuseInt8Attention()(FuseTernaryMatmul()(imported(Int8Attention(16, 2), 1, 5, 16)))
    assert kinds(mod).count("int8_attention") == 1
    assert "relax.nn.softmax" not in op_names(mod)


class _FloatAttention(nn.Module):
    def forward(self, q):
        return torch.softmax(q @ q.transpose(-2, -1) * 0.25, dim=-1) @ q


def test_fuse_int8_attention_absent_unchanged():
    before = imported(_FloatAttention(), 1, 2, 5, 8)
    tvm.ir.assert_structural_equal(FuseInt8Attention()(before), before)


class _Block(nn.Module):
    """fc1 -> GELU -> fc2 -> LayerScale -> residual: every epilogue the passes fold."""

    def __init__(self):
        super().__init__()
        self.fc1 = TernaryLinear(16, 32)
        self.fc2 = TernaryLinear(32, 16)
        self.gamma = nn.Parameter(torch.linspace(-0.5, 0.5, 16))

    def forward(self, x):
        return x + self.gamma * self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def test_epilogues_and_layer_scale():
    block = _Block()
    mod = FuseTernaryMatmul()(imported(block, 1, 5, 16))
    mod = tvm.transform.Sequential([FuseEpilogue(), FoldLayerScale(), FuseEpilogue()])(mod)
    mm = [c for k, c in kernel_calls(mod) if k == "ternary_matmul"]
    epilogues = [str(mod[c.args[0]].attrs["fter.params"]["epilogue"]) for c in mm]
    assert epilogues == ["gelu", "residual"]
    assert "relax.multiply" not in op_names(mod) and "relax.nn.gelu" not in op_names(mod)
    _, a2 = ternary_codes(block.fc2.weight.detach(), True)
    alpha, bias = (mm[1].args[1].fields[i].value.numpy() for i in (3, 4))
    gamma = block.gamma.detach().numpy()
    np.testing.assert_allclose(alpha, a2.numpy().reshape(-1) * gamma, rtol=1e-6)
    np.testing.assert_allclose(bias, block.fc2.bias.detach().numpy() * gamma, rtol=1e-6)


def test_layer_scale_absent_unchanged():
    before = FuseTernaryMatmul()(imported(TernaryLinear(8, 4), 1, 8))
    tvm.ir.assert_structural_equal(FoldLayerScale()(before), before)


def test_unsupported_op_is_named():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.kthvalue(x, 2, dim=-1).values

    with pytest.raises(ImportError_, match="kthvalue"):
        from_torch_program(export_torch(Odd(), (torch.randn(2, 8),)))


def test_pipeline_dump_writes_each_phase(tmp_path):
    mod = from_torch_program(export_torch(_LnLinear(True).eval(), (torch.randn(1, 5, 16),)))
    fter_pipeline(dump_dir=tmp_path)(mod)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].startswith("00_canonicalize") and any("ternary_layernorm" in n for n in names)


# ----------------------------------------------------------- memory-layout fusions (exact rewrites)

def _run_unscheduled(mod, x: np.ndarray) -> np.ndarray:
    ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
    out = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x))
    while not hasattr(out, "numpy"):
        out = out[0]
    return out.numpy()


def _tiny_vit():
    from fter_tvm.models.vit import FTerViT, FTerViTConfig

    torch.manual_seed(0)
    return FTerViT(FTerViTConfig(img_size=16, patch_size=4, in_chans=2, num_classes=5, embed_dim=32,
                                 depth=1, num_heads=2, mlp_ratio=2)).eval()


@pytest.fixture(scope="module")
def vit_modules():
    """The tiny ViT through the pipeline without, then with, the three layout fusions."""
    from relay_passes import (FuseAttentionLayout, FuseAttentionProjection, FusePatchEmbedding,
                              FusePatchQuantize, FuseTernaryMlp, SplitQkvAttention)

    x = torch.randn(1, 2, 16, 16)
    mod = from_torch_program(export_torch(_tiny_vit(), (x,)))
    base = tvm.transform.Sequential([
        SimplifySTE(), relax.transform.FoldConstant(), FuseTernaryMatmul(), FuseTernaryLayerNorm(),
        FuseInt8Attention(), FuseEpilogue(), FoldLayerScale(), FuseEpilogue()])(mod)
    fused = tvm.transform.Sequential([FusePatchQuantize(), FuseAttentionLayout(),
                                      FuseTernaryMlp()])(base)
    split = tvm.transform.Sequential([SplitQkvAttention(), FuseAttentionProjection(),
                                      FusePatchEmbedding()])(fused)
    return base, fused, split, x.numpy()


def test_layout_fusions_structure(vit_modules):
    base, fused, split, _ = vit_modules
    assert kinds(base).count("quantize_act") == 3 and "int8_attention" in kinds(base)
    k = kinds(fused)
    assert k.count("quantize_patches") == 1 and k.count("int8_attention_qkv") == 1
    assert k.count("ternary_mlp") == 1 and "int8_attention" not in k
    # the MLP's two matmuls and the quantizer between them became one kernel
    assert k.count("ternary_matmul") == kinds(base).count("ternary_matmul") - 2
    assert "relax.take" not in op_names(fused) or op_names(fused).count("relax.take") == 1  # cls
    k = kinds(split)
    assert k.count("int8_attention_block") == 1 and k.count("ternary_matmul_heads") == 1
    assert k.count("ternary_matmul_channels") == 1 and "int8_attention_qkv" not in k
    assert k.count("patch_embed") == 1 and "quantize_patches" not in k
    assert "relax.concat" not in op_names(split)
    # the MLP and the attention block update the residual stream in place
    inplace = [c for _, c in kernel_calls(split) if c.op.name == "relax.call_tir_inplace"]
    assert len(inplace) == 2


def test_layout_fusions_are_exact(vit_modules):
    base, fused, split, x = vit_modules
    expected = _run_unscheduled(base, x)
    np.testing.assert_array_equal(_run_unscheduled(fused, x), expected)
    np.testing.assert_array_equal(_run_unscheduled(split, x), expected)


@pytest.mark.parametrize("kw,prefix", [({"distilled": True}, 2),
                                       ({"reg_tokens": 3, "no_embed_class": True}, 4),
                                       ({"class_token": False, "global_pool": "avg"}, 0)])
def test_patch_embedding_with_prefix_tokens(kw, prefix):
    """Distillation and register tokens (with the position embedding on the prefix, or on the
    patches only) and no class token at all: one ``patch_embed`` kernel whose ``cls`` holds
    every prefix token (no ``cls`` without one), no concat left, and the same values as before
    the fusion."""
    import timm

    from fter_tvm.models import ternarize
    from relay_passes import FusePatchEmbedding, FusePatchQuantize

    torch.manual_seed(0)
    name = "deit_tiny_distilled_patch16_224" if kw.pop("distilled", False) else "vit_tiny_patch16_224"
    model = ternarize(timm.create_model(name, pretrained=False, img_size=16, patch_size=4,
                                        in_chans=2, num_classes=5, embed_dim=32, depth=1,
                                        num_heads=2, **kw).eval())
    x = torch.randn(1, 2, 16, 16)
    base = tvm.transform.Sequential([
        SimplifySTE(), relax.transform.FoldConstant(), FuseTernaryMatmul(), FuseTernaryLayerNorm(),
        FuseInt8Attention(), FuseEpilogue(), FusePatchQuantize()])(
        from_torch_program(export_torch(model, (x,))))
    fused = FusePatchEmbedding()(base)
    calls = [(name, call) for name, call in kernel_calls(fused) if name.startswith("patch_embed")]
    assert len(calls) == 1 and "quantize_patches" not in kinds(fused)
    assert "relax.concat" not in op_names(fused)
    args = calls[0][1].args[1].fields
    assert len(args) == (6 if prefix else 5)   # img, w, alpha, bias, [cls], pos
    if prefix:
        assert args[4].value.numpy().shape == (prefix, 32)
    np.testing.assert_array_equal(_run_unscheduled(fused, x.numpy()),
                                  _run_unscheduled(base, x.numpy()))


def test_layout_fusions_absent_unchanged():
    from relay_passes import (FuseAttentionLayout, FusePatchQuantize, FuseTernaryMlp,
                              SplitQkvAttention)

    before = FuseTernaryMatmul()(imported(TernaryLinear(8, 4), 1, 8))
    for p in (FusePatchQuantize(), FuseAttentionLayout(), FuseTernaryMlp(), SplitQkvAttention()):
        tvm.ir.assert_structural_equal(p(before), before)


def test_canonicalize_gelu_before_expected():
    from relay_passes import CanonicalizeGelu

    @I.ir_module
    class Before:
        @R.function
        def main(x: R.Tensor((2, 4), "float32")):
            with R.dataflow():
                a = R.divide(x, R.const(1.4142135381698608, "float32"))
                b = R.erf(a)
                c = R.add(b, R.const(1.0, "float32"))
                d = R.multiply(x, c)
                y = R.multiply(d, R.const(0.5, "float32"))
                R.output(y)
            return y

    @I.ir_module
    class Expected:
        @R.function
        def main(x: R.Tensor((2, 4), "float32")):
            with R.dataflow():
                y = R.nn.gelu(x)
                R.output(y)
            return y

    tvm.ir.assert_structural_equal(CanonicalizeGelu()(Before), Expected)


def test_canonicalize_gelu_absent_unchanged():
    from relay_passes import CanonicalizeGelu

    @I.ir_module
    class Before:   # 1/2 replaced by 1/3: not GELU
        @R.function
        def main(x: R.Tensor((2, 4), "float32")):
            with R.dataflow():
                a = R.divide(x, R.const(1.4142135381698608, "float32"))
                b = R.erf(a)
                c = R.add(b, R.const(1.0, "float32"))
                d = R.multiply(x, c)
                y = R.multiply(d, R.const(0.333, "float32"))
                R.output(y)
            return y

    tvm.ir.assert_structural_equal(CanonicalizeGelu()(Before), Before)


def test_per_tensor_activation_quantizer():
    lin = TernaryLinear(12, 6, per_token=False)
    x = torch.randn(1, 4, 12)
    mod = FuseTernaryMatmul()(imported(lin, 1, 4, 12))
    assert kinds(mod) == ["quantize_act_tensor", "ternary_matmul"]
    with torch.no_grad():
        ref = lin.eval()(x).numpy()
    np.testing.assert_allclose(_run_unscheduled(mod, x.numpy()), ref, rtol=1e-5, atol=1e-6)


class _ConvPatch(nn.Module):
    """A user's patch embedding written as a real conv: per-tensor int8 image, ternary kernel."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randint(-1, 2, self.conv.weight.shape) * 0.05)

    def forward(self, x):
        from fter_tvm.models.quant import fake_quant_act
        return self.conv(fake_quant_act(x, per_token=False)).flatten(2).transpose(1, 2)


def test_conv_patch_to_matmul():
    from relay_passes import ConvPatchToMatmul

    model = _ConvPatch().eval()
    x = torch.randn(1, 3, 16, 16)
    before = imported(model, 1, 3, 16, 16)
    after = FuseTernaryMatmul()(ConvPatchToMatmul()(before))
    assert "relax.nn.conv2d" not in op_names(after)
    assert kinds(after) == ["quantize_act_tensor", "ternary_matmul"]
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(_run_unscheduled(after, x.numpy()), ref, rtol=1e-4, atol=1e-5)


def test_conv_patch_absent_unchanged():
    """A float (non-ternary) conv with overlapping windows stays a conv."""
    from relay_passes import ConvPatchToMatmul

    before = imported(nn.Conv2d(3, 4, 3, stride=1, padding=1), 1, 3, 8, 8)
    tvm.ir.assert_structural_equal(ConvPatchToMatmul()(before), before)
