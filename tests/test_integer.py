"""Integer numerics mode: every fixed-point op of schedules.integer.intmath compiled from its TensorIR
form against its NumPy form (bit-exact, on edge cases), every integer kernel against its NumPy reference
kernel, and whole models (host-sim == lx106, agreement with PyTorch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import tvm
from tvm.script import tirx as T

from schedules.integer import intmath as im
from schedules.integer import intmath_ref as ref
from schedules.integer import kernels as ki
from schedules.integer import attention as kia
from schedules.formats import pack

RNG = np.random.default_rng(7)
HOST = {"kind": "llvm"}


def _build(func):
    return tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                       target=tvm.target.Target(HOST))


def _run(lib, inputs, outputs):
    args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in [*inputs, *outputs]]
    lib(*args)
    return [a.numpy() for a in args[len(inputs):]]


def _elementwise(op, in_dtype: str, n: int):
    """``y[i] = op(TIR, x[i])`` as an int32 kernel."""

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((n,), in_dtype), y: T.Buffer((n,), "int32")):
        for i in range(n):
            with T.sblock("op"):
                vi = T.axis.remap("S", [i])
                y[vi] = op(im.TIR, x[vi])

    return func


def _check_op(op, x: np.ndarray):
    (got,) = _run(_build(_elementwise(op, str(x.dtype), len(x))), [x], [np.zeros(len(x), np.int32)])
    np.testing.assert_array_equal(got, op(im.NP, x.astype(np.int64) if x.dtype.kind == "i" else x))


# ---- ops ----------------------------------------------------------------------------------------
def _gelu_kernel(n: int):
    """``y[i] = gelu(x[i])`` with the Phi table filled in the kernel, as the MLP does."""
    size = im.GELU_TABLE_SIZE

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((n,), "int32"), y: T.Buffer((n,), "int32")):
        tab = T.sblock_alloc_buffer((size,), "int32")
        for k in range(size):
            with T.sblock("table"):
                vk = T.axis.remap("S", [k])
                tab[vk] = im.gelu_table_entry(im.TIR, vk)
        for i in range(n):
            with T.sblock("op"):
                vi = T.axis.remap("S", [i])
                y[vi] = im.gelu(im.TIR, x[vi], lambda k: tab[k])

    return func


def test_gelu_matches_reference_and_erf():
    one = 1 << im.VALUE_FRAC
    v = np.concatenate([np.arange(-5 * one, 5 * one + 1), [-(1 << 30), 1 << 30, -4 * one,
                                                          4 * one, 4 * one - 1]]).astype(np.int32)
    (got,) = _run(_build(_gelu_kernel(len(v))), [v], [np.zeros(len(v), np.int32)])
    tab = im.gelu_table()
    want = im.gelu(im.NP, v.astype(np.int64), lambda k: tab[k])
    np.testing.assert_array_equal(got, want)
    x = v[:10 * one + 1].astype(np.float64) / one
    exact = np.array([t * 0.5 * (1 + math.erf(t / math.sqrt(2))) for t in x])
    assert np.abs(want[:10 * one + 1] / one - exact).max() < 1.5e-3
    assert want[-4] == 1 << 30 and want[-5] == 0      # saturating inputs: identity and zero
    assert abs(int(tab[0]) - (1 << 14)) <= 16 and abs(int(tab[-1]) - 32767) <= 16


def test_exp_neg_matches_reference_and_exp():
    d = np.concatenate([np.arange(0, 70000, 7), [0, 1, (1 << 16) - 1, 1 << 16, 1 << 30]]).astype(np.int32)
    _check_op(im.exp_neg, d)
    e = im.exp_neg(im.NP, d.astype(np.int64))
    assert e[0] == im.EXP_ONE
    assert np.abs(e / 32768.0 - np.exp(-d / 1024.0)).max() < 5e-4
    assert e[-1] == 0


def test_split_and_fixed_from_float_bits():
    f = np.array([1.0, -1.0, 0.5, 3.7e-3, 1e-38, 1e-45, 0.0, -0.0, 3.4e38, -2.5, 1e-7],
                 np.float32)
    _check_op(lambda B, x: im.split_f32(B, x)[0], f)
    _check_op(lambda B, x: im.split_f32(B, x)[1], f)
    m, e = im.split_f32(im.NP, f)
    normal = np.abs(f) >= np.finfo(np.float32).tiny
    np.testing.assert_allclose(m[normal] * 2.0 ** e[normal], f[normal], rtol=2 ** -14)
    assert (m[~normal] == 0).all()
    _check_op(lambda B, x: im.fixed_from_f32(B, x, 130), f)
    _check_op(lambda B, x: im.fixed_frac(B, x), f)
    x = im.fixed_from_f32(im.NP, np.float32(-2.5), 128)
    assert x == -10240 and im.fixed_from_f32(im.NP, np.float32(3.9), 128) <= 1 << im.LN_BITS
    # ties away from zero (the magnitude rounds half up, the sign comes back), as an LX7 loop
    # computes it from an FPU's TRUNC of twice the scaled float
    ties = (np.arange(-40, 40) + 0.5).astype(np.float32) / np.float32(4096)
    for v in (ties, f[np.isfinite(f) & (np.abs(f) <= 2.0 ** 2)]):
        got = np.asarray(im.fixed_from_f32(im.NP, v.astype(np.float32), 128), np.int64)
        y = np.abs(v.astype(np.float64)) * 4096
        np.testing.assert_array_equal(got, np.sign(v) * np.floor(y + 0.5))


def test_quantizer_edges():
    a = np.array([0, 1, 2, 127, 128, 40000, (1 << 24)], np.int32)
    _check_op(im.quant_multiplier, a)
    m = im.quant_multiplier(im.NP, a.astype(np.int64))
    for ai, mi in zip(a, m):
        xs = np.array([-int(ai), 0, int(ai)])
        q = im.quant8(im.NP, xs, mi)
        assert q[0] == -q[2] and q[1] == 0 and abs(q[2]) == (127 if ai > 0 else 0)


def test_gelu_codes_never_reach_minus_128():
    """The LX7 GELU-codes loop clamps with CLAMPS (to [-128, 127]) and skips the contract's -127
    bound: a value within the row's absmax A codes to at least -127 before any clamp, for every
    A a GELU row can have (A >= GELU_NEG_BOUND, the bound of every negative GELU)."""
    a = np.concatenate([np.arange(im.GELU_NEG_BOUND, 1 << 20),
                        np.unique(np.geomspace(1 << 20, 1 << 30, 20000).astype(np.int64))])
    packed = np.asarray(im.quant_multiplier(im.NP, a), np.int64)
    r, m = packed >> 24, packed & 0xFFFFFF
    raw = ((-a) >> r) * m + (1 << 15) >> 16   # quant8 of h = -A without its clamp
    assert raw.min() >= -127 and raw.max() <= -126
    # and no negative input's GELU is below -GELU_NEG_BOUND (inputs past -4 give 0)
    tab = im.gelu_table()
    assert -im.gelu(im.NP, np.arange(-(8 << 12), 1), lambda k: tab[k]).min() == im.GELU_NEG_BOUND


def test_codes_within_the_absmax_stay_in_int8_before_the_clamp():
    """The LX7 code loops (QUANT8_STORE in epilogue_int.c) keep only the contract's -127 bound:
    a value h within the absmax A its multiplier comes from codes to [-128, 127] before any
    clamp, for every A (the extremes are h = +-A: the code grows with h)."""
    a = np.concatenate([np.arange(0, 1 << 20),
                        np.unique(np.geomspace(1 << 20, (1 << 31) - 1, 20000).astype(np.int64)),
                        [(1 << 31) - 1]])
    packed = np.asarray(im.quant_multiplier(im.NP, a), np.int64)
    r, m = packed >> 24, packed & 0xFFFFFF
    top = (a >> r) * m + (1 << 15) >> 16       # quant8 of h = A without its clamp
    low = ((-a) >> r) * m + (1 << 15) >> 16    # and of h = -A
    assert top.max() <= 127 and low.min() >= -128
    assert (top[a > 0] == 127).all()


def test_softmax_row_all_equal_and_peaked():
    for n in (1, 3, 197):
        e = im.exp_neg(im.NP, np.zeros(n, np.int64))
        p = im.prob8(im.NP, e, im.prob_reciprocal(im.NP, e.sum()))
        assert (p == round(255 / n)).all()
    e = im.exp_neg(im.NP, np.array([0, 1 << 16, 1 << 16]))
    p = im.prob8(im.NP, e, im.prob_reciprocal(im.NP, e.sum()))
    assert p.tolist() == [255, 0, 0]


# ---- kernels --------------------------------------------------------------------------------------
def _trits(n, k):
    return RNG.integers(-1, 2, size=(n, k)).astype(np.int8)


def _int8(*shape):
    return RNG.integers(-127, 128, size=shape).astype(np.int8)


def _scales(n, lo=1e-3, hi=2e-2):
    return RNG.uniform(lo, hi, n).astype(np.float32)


@pytest.mark.parametrize("t,d", [(1, 16), (5, 32), (17, 48)])
def test_layernorm_kernel_bit_exact(t, d):
    x = (RNG.standard_normal((t, d)) * RNG.uniform(0.01, 30, (t, 1))).astype(np.float32)
    x[0, :] = 0.75                                    # an all-equal row: zero variance
    g, b = _trits(1, d)[0], _trits(1, d)[0]
    ab = np.array([0.8, 0.3], np.float32)
    q, s = _run(_build(ki.ternary_layernorm_quant(t, d, 1e-6)), [x, g, b, ab],
                [np.zeros((t, d), np.int8), np.zeros(t, np.float32)])
    rq, rs = ref.layernorm_quant(x, g, b, ab, 1e-6)
    np.testing.assert_array_equal(q, rq)
    np.testing.assert_array_equal(s, rs)
    # and it is a LayerNorm: within int8 rounding of the float one
    mu, sd = x.mean(-1, keepdims=True), np.sqrt(x.var(-1, keepdims=True) + 1e-6)
    want = (x - mu) / sd * (ab[0] * g) + ab[1] * b
    np.testing.assert_allclose(q * s[:, None], want, atol=float(np.abs(want).max()) / 100)


def test_mlp_kernel_bit_exact():
    t, d, hidden = 9, 32, 64
    q, s = _int8(t, d), _scales(t)
    w1, w2 = _trits(hidden, d), _trits(d, hidden)
    a1, a2 = _scales(hidden, 0.2, 1.0), _scales(d, 0.2, 1.0)
    b1, b2 = RNG.standard_normal(hidden).astype(np.float32), RNG.standard_normal(d).astype(np.float32)
    res = RNG.standard_normal((t, d)).astype(np.float32)
    lib = _build(ki.ternary_mlp(t, d, hidden, "b3"))
    (y,) = _run(lib, [q, s, pack(w1, "b3"), a1, b1, pack(w2, "b3"), a2, b2, res],
                [np.zeros((t, d), np.float32)])
    np.testing.assert_allclose(y, ref.mlp(q, s, w1, a1, b1, w2, a2, b2, res), rtol=1e-6,
                               atol=1e-6)


def test_heads_and_channels_kernels_bit_exact():
    t, k, h, hd = 11, 32, 2, 16
    x, s = _int8(t, k), _scales(t)
    w, alpha = _trits(h * hd, k), _scales(h * hd, 0.1, 1.0)
    alpha[3] = -alpha[3]                               # LayerScale folded in: a negative scale
    bias = RNG.standard_normal(h * hd).astype(np.float32)
    y, amax = _run(_build(ki.ternary_matmul_heads(t, k, h, hd, "b3")),
                   [x, s, pack(w, "b3"), alpha, bias],
                   [np.zeros((t, h * hd), np.int8), np.zeros((t, h), np.float32)])
    ry, ra = ref.heads(x, s, w, alpha, bias, h)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(amax, ra)
    y, amax = _run(_build(ki.ternary_matmul_channels(t, k, h * hd, "b3")),
                   [x, s, pack(w, "b3"), alpha, bias],
                   [np.zeros((t, h * hd), np.int8), np.zeros(h * hd, np.float32)])
    ry, ra = ref.channels(x, s, w, alpha, bias)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(amax, ra)


@pytest.mark.parametrize("prefix,embed", [(1, "float32"), (1, "uint16"), (3, "float32"),
                                          (5, "uint16"), (0, "float32")])
def test_patch_embed_kernel_bit_exact(prefix, embed):
    """The integer patch embedding against its NumPy reference, with one class token, several
    prefix tokens (class + distillation / register tokens) or none, cls/pos as float32 or fp16
    bits."""
    from schedules.compute.fp16 import to_f16_bits

    c, gh, gw, p, d = 3, 2, 3, 4, 16
    n, f = gh * gw, c * p * p
    img = (RNG.standard_normal((1, c, gh * p, gw * p)) * 3).astype(np.float32)
    img[0, 0, :p, :p] = 0.0                              # an all-zero patch
    w, alpha = _trits(d, f), _scales(d, 0.1, 1.0)
    bias = RNG.standard_normal(d).astype(np.float32)
    cls = RNG.standard_normal((prefix, d)).astype(np.float16).astype(np.float32)
    pos = RNG.standard_normal((n + prefix, d)).astype(np.float16).astype(np.float32)
    cls_arg = cls.reshape(d) if prefix == 1 else cls
    if embed == "uint16":
        cls_arg, pos_arg = to_f16_bits(cls_arg), to_f16_bits(pos)
    else:
        pos_arg = pos
    (x,) = _run(_build(ki.patch_embed(c, gh, gw, p, d, "b3", embed, prefix)),
                [img, pack(w, "b3"), alpha, bias, *([cls_arg] if prefix else []), pos_arg],
                [np.zeros((n + prefix, d), np.float32)])
    np.testing.assert_array_equal(x, ref.patch_embed(img[0], w, alpha, bias, cls, pos, p))


def test_attention_block_kernel_matches_reference():
    n, h, hd = 13, 2, 16
    d = h * hd
    x = RNG.standard_normal((n, d)).astype(np.float32)
    xq, xs = _int8(n, d), _scales(n)
    wq, w = _trits(d, d), _trits(d, d)
    aq, alpha = _scales(d, 0.1, 1.0), _scales(d, 0.1, 1.0)
    bq, bias = (RNG.standard_normal(d).astype(np.float32) for _ in range(2))
    k, v = _int8(n, d), _int8(n, d)
    k_amax, v_amax = _scales(n * h, 0.5, 8).reshape(n, h), _scales(d, 0.5, 8)
    scale = hd ** -0.5
    args = [x.copy(), xq, xs, pack(wq, "b3"), aq, bq, k, k_amax, v, v_amax, pack(w, "b3"),
            alpha, bias]
    lib = _build(kia.int8_attention_block(n, h, hd, "b3", scale))
    tensors = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in args]
    lib(*tensors)
    want = ref.attention_block(x, xq, xs, wq, aq, bq, k, k_amax, v, v_amax, w, alpha, bias, h,
                                  scale)
    np.testing.assert_allclose(tensors[0].numpy(), want, rtol=1e-6, atol=1e-6)


# ---- whole models -------------------------------------------------------------------------------
@pytest.mark.xtensa
def test_tiny_vit_integer_mode_host_sim_equals_lx106_and_tracks_pytorch():
    from test_compile import tiny_model

    import fter_tvm
    from fter_tvm.targets import Esp32s3Target

    torch.manual_seed(3)
    model = tiny_model(layer_scale_init=0.1).eval()
    x = torch.randn(1, 1, 16, 16)
    art = fter_tvm.compile(model, Esp32s3Target(numerics="integer"), (x,))
    assert art.report["numerics"]["mode"] == "integer"
    called = {c["name"] for c in art.report["kernel_calls"]}
    numerics = art.report["numerics"]
    assert "ternary_mlp" in " ".join(numerics["integer_kernels"])
    # only kernels the program calls; what stays float is the final head
    assert set(numerics["integer_kernels"]) | set(numerics["float_kernels"]) <= called
    assert all(k.startswith(("ternary_matmul_t1_", "decode_f16", "take"))
               for k in numerics["float_kernels"]), numerics["float_kernels"]
    y = art.run(x)
    y_sim, stats = art.simulate(x, core="lx106")
    assert y_sim.tobytes() == y.tobytes()
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(y - ref).max() < 0.02 * np.abs(ref).max() + 1e-3


def test_integer_mode_needs_pie_kernels():
    from fter_tvm.targets import Esp32s3Target

    with pytest.raises(ValueError, match="kernel_variant='pie'"):
        Esp32s3Target(numerics="integer", kernel_variant="xtensa")
    with pytest.raises(ValueError, match="unknown numerics"):
        Esp32s3Target(numerics="fixed")


@pytest.mark.xtensa
def test_digits_integer_mode_fidelity_two_workers_and_lx106():
    """The fidelity bar on the trained digits model: integer-mode accuracy within 0.3 pp of
    PyTorch float, top-1 agreement >= 99 %; two host workers and the lx106 give the same bits;
    ``integer_logits`` (PyTorch side) agrees on top-1 and to float rounding of the last epilogues."""
    import fter_tvm
    from fter_tvm.data import digits_split
    from fter_tvm.models import integer_logits, load_demo_model
    from fter_tvm.targets import Esp32s3Target

    model = load_demo_model().eval()
    *_, x, y = digits_split()
    with torch.no_grad():
        ref = model(x).numpy()
    # biases kept fp32 so that integer_logits (which does not reproduce which biases the
    # target's StoreSideTensorsFp16 rounds) can be held to float rounding
    art = fter_tvm.compile(model, Esp32s3Target(numerics="integer", fp16_rounded=()), (x[:1],))
    got = np.concatenate([art.run(x[i:i + 1]) for i in range(len(x))])
    labels = y.numpy()
    acc_float, acc_int = np.mean(ref.argmax(1) == labels), np.mean(got.argmax(1) == labels)
    assert acc_int >= acc_float - 0.003, (acc_int, acc_float)
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.99
    np.testing.assert_array_equal(art.run(x[:1], workers=2).view(np.uint32),
                                  art.run(x[:1]).view(np.uint32))
    y_sim, stats = art.simulate(x[:1], core="lx106")
    assert y_sim.tobytes() == art.run(x[:1]).tobytes()
    torch_int = integer_logits(model, x[:16]).numpy()
    assert (torch_int.argmax(1) == got[:16].argmax(1)).all()
    np.testing.assert_allclose(torch_int, got[:16], atol=1e-5)
