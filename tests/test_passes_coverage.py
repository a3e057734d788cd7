"""Passes for the model-coverage work: LayerNorm canonicalisation, ternary LayerNorm / matmul with
float data (structure, "pattern absent -> unchanged", numerics of the built kernels)."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from relay_passes import CanonicalizeLayerNorm, FuseTernaryLayerNormFloat, FuseTernaryMatmulFloat
from relay_passes.base import is_kernel_call
from schedules.formats import pack

D = 8


def _module(build):
    """``main(x: [2, 3, D])`` whose body ``build(bb, x)`` emits; returns the IRModule."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 3, D), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(build(bb, x))
        bb.emit_func_output(y)
    return bb.get()


def _const(v):
    return relax.const(np.asarray(v, np.float32))


def _run(mod, x):
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


def _kinds(mod):
    return [str(mod[b.value.args[0]].attrs["fter.kind"]) for block in mod["main"].body.blocks
            for b in block.bindings if is_kernel_call(b.value)]


GAMMA = np.linspace(0.5, 1.5, D).astype(np.float32)
BETA = np.linspace(-0.2, 0.3, D).astype(np.float32)


def _written_out_ln(bb, x, axis=-1, rsqrt=False):
    mean = bb.emit(relax.op.mean(x, axis=[axis], keepdims=True))
    d1 = bb.emit(relax.op.subtract(x, mean))
    var = bb.emit(relax.op.mean(relax.op.power(d1, _const(2.0)), axis=[axis], keepdims=True))
    d2 = bb.emit(relax.op.subtract(x, mean))
    ve = bb.emit(relax.op.add(var, _const(1e-5)))
    y = bb.emit(relax.op.multiply(d2, relax.op.rsqrt(ve)) if rsqrt else
                relax.op.divide(d2, relax.op.sqrt(ve)))
    y = bb.emit(relax.op.multiply(y, _const(GAMMA)))
    return relax.op.add(y, _const(BETA))


def test_canonicalize_layer_norm_before_expected():
    for rsqrt in (False, True):
        before = _module(lambda bb, x: _written_out_ln(bb, x, rsqrt=rsqrt))
        expected = _module(lambda bb, x: relax.op.nn.layer_norm(
            x, _const(GAMMA), _const(BETA), axes=[-1], epsilon=float(np.float32(1e-5))))
        got = relax.transform.DeadCodeElimination()(CanonicalizeLayerNorm()(before))
        tvm.ir.assert_structural_equal(got, expected)
        x = np.random.default_rng(0).standard_normal((2, 3, D)).astype(np.float32)
        np.testing.assert_allclose(_run(got, x), _run(before, x), rtol=1e-5, atol=1e-5)


def test_canonicalize_layer_norm_absent_unchanged():
    """Normalising over a middle axis is not a LayerNorm over the channels: left alone."""
    before = _module(lambda bb, x: _written_out_ln(bb, x, axis=1))
    tvm.ir.assert_structural_equal(CanonicalizeLayerNorm()(before), before)


def _ln(gamma):
    return lambda bb, x: relax.op.add(
        bb.emit(relax.op.nn.layer_norm(x, _const(gamma), _const(0.25 * np.sign(BETA)), axes=[-1],
                                       epsilon=1e-6)), x)


def test_fuse_ternary_layer_norm_float():
    gamma = 0.75 * np.array([1, -1, 0, 1, 1, 0, -1, 1], np.float32)
    before = _module(_ln(gamma))
    got = FuseTernaryLayerNormFloat()(before)
    assert _kinds(got) == ["ternary_layernorm_float"]
    x = np.random.default_rng(1).standard_normal((2, 3, D)).astype(np.float32)
    np.testing.assert_allclose(_run(got, x), _run(before, x), rtol=1e-5, atol=1e-6)


def test_fuse_ternary_layer_norm_float_absent_unchanged():
    before = _module(_ln(GAMMA))   # gamma not ternary
    tvm.ir.assert_structural_equal(FuseTernaryLayerNormFloat()(before), before)


def _matmul(w, bias):
    def build(bb, x):
        y = bb.emit(relax.op.matmul(x, _const(w)))
        return relax.op.add(y, _const(bias))
    return build


def test_fuse_ternary_matmul_float_packs_codes_and_bias():
    rng = np.random.default_rng(2)
    codes = rng.integers(-1, 2, size=(5, D)).astype(np.int8)            # [N, K]
    alpha = np.array([0.5, 0.25, 1.0, 0.125, 2.0], np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    before = _module(_matmul((codes * alpha[:, None]).T, bias))
    got = FuseTernaryMatmulFloat(fmt="b3")(before)
    assert _kinds(got) == ["ternary_matmul_float"]
    call = next(b.value for block in got["main"].body.blocks for b in block.bindings
                if is_kernel_call(b.value))
    x_arg, w_arg, a_arg, b_arg = call.args[1].fields
    np.testing.assert_array_equal(w_arg.value.numpy(), pack(codes, "b3"))
    np.testing.assert_array_equal(a_arg.value.numpy(), alpha)
    np.testing.assert_array_equal(b_arg.value.numpy(), bias)
    x = rng.standard_normal((2, 3, D)).astype(np.float32)
    np.testing.assert_allclose(_run(got, x), _run(before, x), rtol=1e-5, atol=1e-5)


def test_fuse_ternary_matmul_float_absent_unchanged():
    w = np.random.default_rng(3).standard_normal((D, 5)).astype(np.float32)   # not ternary
    before = _module(_matmul(w, np.zeros(5, np.float32)))
    tvm.ir.assert_structural_equal(FuseTernaryMatmulFloat()(before), before)


def test_f16_decode_is_exact_for_every_finite_pattern():
    from schedules.compute.fp16 import decode_f16

    n = 1 << 16
    ex = tvm.compile(tvm.IRModule({"dec": decode_f16(n).with_attr("global_symbol", "dec")}), "llvm")
    h = np.arange(n, dtype=np.uint32).astype(np.uint16)
    y = tvm.runtime.tensor(np.zeros(n, np.float32))
    ex["dec"](tvm.runtime.tensor(h), y)
    finite = np.isfinite(h.view(np.float16))
    ref = h.view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(y.numpy()[finite].view(np.uint32), ref[finite].view(np.uint32))


def _scaled_kernel_module(scale):
    """A ternary_matmul_float call whose per-channel scale vector is ``scale`` (32 channels)."""
    codes = np.tile(np.array([[1, 0, -1, 1, 0, 1, -1, 0]], np.int8), (32, 1))       # [N, K]
    return FuseTernaryMatmulFloat(fmt="b3")(
        _module(_matmul((codes * scale[:, None]).T, np.zeros(32, np.float32))))


def _call_names(mod):
    return [b.value.args[0].name_hint for block in mod["main"].body.blocks for b in block.bindings
            if is_kernel_call(b.value)]


def test_store_side_tensors_fp16_decodes_before_the_kernel():
    from relay_passes import StoreSideTensorsFp16

    scale = np.linspace(0.01, 0.5, 32).astype(np.float32)      # not exact in fp16
    before = _scaled_kernel_module(scale)
    got = StoreSideTensorsFp16(rounded=("scale", "bias"))(before)
    # scale and (zero) bias decoded, then the unchanged kernel
    assert _call_names(got) == ["decode_f16_n32", "decode_f16_n32", "ternary_matmul_float_t6_k8_n32_b3"]
    first = next(b.value for block in got["main"].body.blocks for b in block.bindings
                 if is_kernel_call(b.value))
    bits = first.args[1].fields[0].value.numpy()
    np.testing.assert_array_equal(bits, scale.astype(np.float16).view(np.uint16))
    x = np.random.default_rng(4).standard_normal((2, 3, D)).astype(np.float32)
    np.testing.assert_allclose(_run(got, x), _run(before, x), rtol=2e-3, atol=1e-6)


def test_store_side_tensors_fp16_keeps_inexact_scales_unless_asked():
    from relay_passes import StoreSideTensorsFp16

    before = _scaled_kernel_module(np.linspace(0.01, 0.5, 32).astype(np.float32))
    got = StoreSideTensorsFp16(rounded=("bias",))(before)
    assert _call_names(got) == ["decode_f16_n32", "ternary_matmul_float_t6_k8_n32_b3"]  # bias only


def test_store_side_tensors_fp16_absent_unchanged():
    from relay_passes import StoreSideTensorsFp16

    no_kernels = _module(lambda bb, x: relax.op.add(x, bb.emit(relax.op.multiply(x, _const(GAMMA)))))
    tvm.ir.assert_structural_equal(StoreSideTensorsFp16()(no_kernels), no_kernels)
