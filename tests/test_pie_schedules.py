"""The esp32s3 schedules on the PIE micro-kernels: what they call, that they change no value, and
the simulators that run them (host, lx106 emulation, the LX7 core where its tools exist)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import tvm
from tvm.s_tir import TensorIntrin

import fter_tvm as fc
from fter_tvm.targets import Esp32s3Target
from runtime import cbuild, esp32s3_sim
from schedules import compute
from schedules.esp32s3 import intrin, pie_intrin, stationary

from test_compile import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model(layer_scale_init=0.1)


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(3)
    return [torch.randn(1, 1, 16, 16, generator=g) for _ in range(4)]


@pytest.fixture(scope="module")
def art(model, inputs):
    # float numerics: the scalar and plain-graph builds compared below have no integer forms
    # (tests/test_integer.py checks the default integer mode's PIE build)
    return fc.compile(model, Esp32s3Target(numerics="float"), (inputs[0],))


def test_tile_intrinsic_calls_the_tile_kernel_with_strides():
    name = pie_intrin.tile_intrin(17, 32, 16, "b3")
    assert name == "fter_tmm_tile_t17_k32_n16_b3"
    impl = TensorIntrin.get(name).impl.script()
    assert '"fter_tmm_tile_b3"' in impl and "q.strides[0]" in impl and "acc.strides[0]" in impl
    # the row form of the variant calls the same kernel for one token
    row = TensorIntrin.get(intrin.ensure_intrin(32, 16, "b3", "pie")).impl.script()
    assert '"fter_tmm_tile_b3"' in row and ", 1, 32, 16)" in row


def test_stationary_mlp_keeps_signature_and_attributes():
    func = compute.ternary_mlp(17, 32, 64, "b3", inplace=True)
    form = stationary.stationary_form(func)
    assert form is not func and dict(form.attrs) == dict(func.attrs)
    signature = lambda f: f.script().split("):")[0].split("def func(")[1]   # noqa: E731
    assert signature(form) == signature(func)
    quant = compute.quantize_act(4, 8)
    assert stationary.stationary_form(quant) is quant   # no stationary form: unchanged


@pytest.mark.cc
def test_pie_schedules_call_the_pie_kernels(art):
    c = art.aot.kernels_c.read_text()
    for extern in ("fter_tmm_tile_b3(", "fter_qk_row(", "fter_pv_row("):
        assert extern in c, extern
    assert "fter_tmm_b3(" not in c and "fter_tmm_b3_lut(" not in c
    assert art.pie_max_k == 64   # the MLP's hidden layer is the longest reduction


@pytest.mark.cc
@pytest.mark.parametrize("tgt", [Esp32s3Target(kernel_variant="xtensa"),
                                 Esp32s3Target(low_memory=False, numerics="float")],
                         ids=["scalar", "plain-graph"])
def test_pie_build_is_bit_identical_to_the_scalar_and_plain_builds(art, model, inputs, tgt):
    other = fc.compile(model, tgt, (inputs[0],))
    for x in inputs:
        np.testing.assert_array_equal(art.run(x).view(np.uint32), other.run(x).view(np.uint32))


@pytest.mark.xtensa
def test_lx106_stats_count_emulated_pie_per_kind(art, inputs):
    y, stats = art.simulate(inputs[0], core="lx106")
    np.testing.assert_array_equal(y, art.run(inputs[0]))
    assert stats["core"] == "lx106"
    for kind in ("ternary_matmul", "attention_matmul"):
        assert stats["pie_by_kind"][kind] > 0 and stats["macs_by_kind"][kind] > 0
        assert stats["per_mac_by_kind"][kind] == stats["by_kind"][kind] / stats["macs_by_kind"][kind]
    assert sum(c["pie_instructions"] for c in stats["per_call"]) == sum(stats["pie_by_kind"].values())


def test_esp32s3_core_without_tools_names_what_is_missing(art, inputs, monkeypatch):
    for var in (esp32s3_sim.QEMU_ENV, *esp32s3_sim.CONFIG_ENVS):
        monkeypatch.delenv(var, raising=False)
    assert not esp32s3_sim.available()
    with pytest.raises(cbuild.ToolMissingError, match=esp32s3_sim.QEMU_ENV):
        art.simulate(inputs[0], core="esp32s3")
    with pytest.raises(ValueError, match="unknown core"):
        art.simulate(inputs[0], core="lx7")


@pytest.mark.esp32s3_core
def test_esp32s3_core_runs_the_pie_build_bit_identically(art, inputs):
    y, stats = art.simulate(inputs[0], core="esp32s3")
    np.testing.assert_array_equal(y.view(np.uint32), art.run(inputs[0]).view(np.uint32))
    assert stats["core"] == "esp32s3" and "pie_by_kind" not in stats
    print(f"tiny ViT on the esp32s3 core: {stats['instructions']:,} instructions, "
          f"per MAC by kind {stats['per_mac_by_kind']}")
