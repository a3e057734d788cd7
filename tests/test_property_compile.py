"""Property-based compile tests: random tiny ternary ViTs, each compiled for x86 and esp32s3 with
``strict=True`` (nothing left unfused); x86 and host-sim agree with PyTorch's fake-quant model
within tolerance, and on every fourth example the esp32s3 C run on the lx106 simulator gives the
host-sim's exact bits.

Two spellings: FTerViT (dim, heads, depth, MLP ratio, image and patch size, channels, classes,
per-channel/per-tensor scales, b2/b3 packing, qkv bias, LayerScale, pos embed with or without the
class token) and an independently written BitNet-style ViT (tests/bitnet_style.py: its own
quantizer, LayerNorm inside each linear as mean/variance, a ternary patch embedding on the float
image, biases on/off, per-channel/per-tensor scales, mean or class-token pooling). Then O(1)
LayerScale and non-zero biases (``randomize_near_zero``), so every block counts.

Random-init logits are often near-tied, so top-1 is only compared where PyTorch's top-2 margin
exceeds the measured max |Δlogit| (``fter_tvm.models.fidelity``). ``QUICK_EXAMPLES``
derandomized examples run in the ``slow`` tier (every CI run: each example is two compiles, too
long for ``make test``); ``SLOW_EXAMPLES`` random ones only on request:
``FTER_PROPERTY_LONG=1 pytest -m slow -k many``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fter_tvm as fc
from bitnet_style import BitNetViT
from test_models_coverage import integer_margin
from fter_tvm.models import fidelity, randomize_near_zero
from fter_tvm.models.vit import FTerViT, FTerViTConfig

QUICK_EXAMPLES = 30
SLOW_EXAMPLES = 300
# max |Δlogit| allowed, relative to the logits' scale: float rounding may flip a few activation
# quantization steps (SPEC §3), everything else is exact integer arithmetic
RTOL = 0.02


@st.composite
def configs(draw):
    patch = draw(st.sampled_from([2, 4]))
    heads = draw(st.sampled_from([1, 2, 3, 4]))
    dim = heads * draw(st.sampled_from([8, 16]))
    shape = dict(img_size=patch * draw(st.integers(2, 4)), patch_size=patch,
                 in_chans=draw(st.sampled_from([1, 3])), num_classes=draw(st.integers(2, 12)),
                 embed_dim=dim, depth=draw(st.integers(1, 2)), num_heads=heads,
                 mlp_ratio=draw(st.sampled_from([1.0, 2.0, 3.0, 4.0])),
                 per_channel=draw(st.booleans()))
    spelling = draw(st.sampled_from(["fter", "bitnet"]))
    if spelling == "fter":
        arch = dict(layer_scale_init=draw(st.one_of(st.none(), st.floats(0.5, 1.5))),
                    qkv_bias=draw(st.booleans()), no_embed_class=draw(st.booleans()))
    else:
        arch = dict(bias=draw(st.booleans()), pool=draw(st.sampled_from(["mean", "token"])))
    return dict(spelling=spelling, shape=shape, arch=arch,
                pack_format=draw(st.sampled_from(["b2", "b3"])), seed=draw(st.integers(0, 2**16)))


def build(case) -> torch.nn.Module:
    torch.manual_seed(case["seed"])
    sh = case["shape"]
    if case["spelling"] == "bitnet":
        model = BitNetViT(d=sh["embed_dim"], depth=sh["depth"], heads=sh["num_heads"],
                          classes=sh["num_classes"], img=sh["img_size"], patch=sh["patch_size"],
                          in_chans=sh["in_chans"], hidden=int(sh["embed_dim"] * sh["mlp_ratio"]),
                          per_channel=sh["per_channel"], **case["arch"]).eval()
    else:
        model = FTerViT(FTerViTConfig(**sh, **case["arch"])).eval()
    randomize_near_zero(model, seed=case["seed"])   # O(1) LayerScale, non-zero biases
    return model


def check(case) -> None:
    model = build(case)
    sh = case["shape"]
    g = torch.Generator().manual_seed(case["seed"])
    xs = [torch.randn(1, sh["in_chans"], sh["img_size"], sh["img_size"], generator=g) for _ in range(2)]
    with torch.no_grad():
        ref = np.stack([model(x).numpy() for x in xs]).reshape(len(xs), -1)
    scale = 1.0 + float(np.abs(ref).max())
    for target in ("x86", "esp32s3"):
        art = fc.compile(model, target, (xs[0],), pack_format=case["pack_format"], strict=True)
        got = np.stack([art.run(x) for x in xs]).reshape(len(xs), -1)
        f = fidelity(ref, got, margin_factor=integer_margin(art))
        assert f["max_abs_dlogit"] <= RTOL * scale, \
            f"{target}: max |dlogit| {f['max_abs_dlogit']:.3g} for {case}"
        assert f["top1_errors"] == [], f"{target}: top-1 differs for {case}"
        if target == "esp32s3" and case["seed"] % 4 == 0:
            sim, _ = art.simulate(xs[0], core="lx106")
            assert sim.tobytes() == art.run(xs[0]).tobytes(), f"lx106 != host-sim for {case}"


PROFILE = dict(deadline=None, derandomize=True, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.cc
@pytest.mark.xtensa
@pytest.mark.slow
@settings(max_examples=QUICK_EXAMPLES, **PROFILE)
@given(configs())
def test_random_models_quick(case):
    check(case)


@pytest.mark.cc
@pytest.mark.xtensa
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FTER_PROPERTY_LONG") != "1",
                    reason=f"the {SLOW_EXAMPLES}-example run (hours): FTER_PROPERTY_LONG=1")
@settings(max_examples=SLOW_EXAMPLES, **{**PROFILE, "derandomize": False})
@given(configs())
def test_random_models_many(case):
    check(case)
