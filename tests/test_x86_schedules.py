"""x86 schedules: tensor intrinsics (structure + bit-exact int32), ISA choice, scheduled kernels vs
the unscheduled reference kernels, the v16x4 format and the vectorizable exp/erf."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import tvm
from tvm import s_tir
from tvm.script import tirx as T

import fter_tvm
from fter_tvm.models.vit import FTerViT, FTerViTConfig
from fter_tvm.targets import X86Target
from schedules import compute
from schedules.formats import pack, unpack
from schedules.x86 import attention_forms, fast_math
from schedules.x86 import schedule as x86
from schedules.x86.intrin import AVX2_S8U8_8x4, VNNI_S8U8_16x4, VNNI_U8S8_16x4

HOST = x86.host_target()
AVX2 = {**HOST, "mattr": ["-avx512f"]}          # the same CPU with AVX-512 switched off
needs_vnni = pytest.mark.skipif(x86.target_isa(HOST) != "avx512_vnni",
                                reason="this CPU has no AVX-512 VNNI")
needs_avx2 = pytest.mark.skipif(x86.target_isa(HOST) == "generic", reason="this CPU has no AVX2")
RNG = np.random.default_rng(0)


def _build(func, target=HOST):
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}),
                      target=tvm.target.Target(target))
    return lib, lib.mod.inspect_source("asm")


def _run(lib, *arrays):
    args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]
    lib(*args)
    return args[-1].numpy()


# ---- intrinsics -----------------------------------------------------------------------------------

def _dot_kernel(a_dtype: str, b_dtype: str, lanes: int, n: int, k: int):
    """``c[j] = sum_r a[r] * b[j // lanes, r // 4, j % lanes, r % 4]``: one row against tiles."""

    @T.prim_func(s_tir=True)
    def func(a: T.Buffer((k,), a_dtype), b: T.Buffer((n // lanes, k // 4, lanes, 4), b_dtype),
             c: T.Buffer((n,), "int32")):
        for j, r in T.grid(n, k):
            with T.sblock("dot"):
                vj, vr = T.axis.remap("SR", [j, r])
                with T.init():
                    c[vj] = 0
                c[vj] = c[vj] + T.Cast("int32", a[vr]) * T.Cast(
                    "int32", b[vj // lanes, vr // 4, vj % lanes, vr % 4])

    return func


def _tensorized_dot(intrin: str, a_dtype: str, b_dtype: str, lanes: int, n=64, k=32):
    sch = s_tir.Schedule(_dot_kernel(a_dtype, b_dtype, lanes, n, k))
    block = sch.get_sblock("dot")
    j, r = sch.get_loops(block)
    jo, ji = sch.split(j, [None, lanes])
    ro, ri = sch.split(r, [None, 4])
    sch.reorder(jo, ro, ji, ri)
    sch.decompose_reduction(block, ro)
    sch.tensorize(ji, intrin)
    return sch.mod["main"]


INTRINSICS = [  # name, a dtype, b dtype, lanes, instruction, ISA needed, b values
    pytest.param(VNNI_S8U8_16x4, "int8", "uint8", 16, "vpdpbusd", (0, 256), marks=needs_vnni,
                 id="vnni_s8u8"),
    pytest.param(VNNI_U8S8_16x4, "uint8", "int8", 16, "vpdpbusd", (-128, 128), marks=needs_vnni,
                 id="vnni_u8s8"),
    # vpmaddubsw saturates int16 pair sums: the AVX2 intrinsic is exact for weight codes <= 2
    pytest.param(AVX2_S8U8_8x4, "int8", "uint8", 8, "vpmaddubsw", (0, 3), marks=needs_avx2,
                 id="avx2_s8u8"),
]


@pytest.mark.parametrize("intrin,a_dt,b_dt,lanes,insn,b_range", INTRINSICS)
def test_intrinsic_structure_and_bit_exact(intrin, a_dt, b_dt, lanes, insn, b_range):
    n, k = 64, 32
    func = _tensorized_dot(intrin, a_dt, b_dt, lanes, n, k)
    assert "call_llvm_pure_intrin" in func.script()        # the tile became one intrinsic call
    lib, asm = _build(func)
    assert insn in asm
    a_lo, a_hi = (-128, 128) if a_dt == "int8" else (0, 256)
    a = RNG.integers(a_lo, a_hi, k).astype(a_dt)
    a[:4] = a_lo                                            # the extremes, where saturation bites
    b = RNG.integers(*b_range, (n // lanes, k // 4, lanes, 4)).astype(b_dt)
    b_mat = b.transpose(0, 2, 1, 3).reshape(n, k).astype(np.int64)
    ref = (b_mat @ a.astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(_run(lib, a, b, np.zeros(n, np.int32)), ref)


# ---- ISA selection --------------------------------------------------------------------------------

def test_target_isa():
    assert x86.target_isa({"kind": "llvm", "mcpu": "icelake-server"}) == "avx512_vnni"
    assert x86.target_isa({"kind": "llvm", "mcpu": "icelake-server", "mattr": ["-avx512f"]}) == "avx2"
    assert x86.target_isa({"kind": "llvm", "mcpu": "haswell"}) == "avx2"
    assert x86.target_isa({"kind": "llvm"}) == "generic"


# ---- ternary matmul -------------------------------------------------------------------------------

def test_v16x4_pack_roundtrip():
    codes = RNG.integers(-1, 2, (37, 22))
    packed = pack(codes, "v16x4")
    assert packed.shape == (3, 6, 16, 4) and packed.dtype == np.uint8
    assert packed[1, 2, 3, 1] == codes[19, 9] + 1
    np.testing.assert_array_equal(unpack(packed, 22, "v16x4", n=37), codes)


def _matmul_case(t, k, n, epilogue):
    codes = RNG.integers(-1, 2, (n, k))
    q = RNG.integers(-128, 128, (t, k)).astype(np.int8)
    q[0] = -128
    ints = (q.astype(np.int64) @ codes.T.astype(np.int64)).astype(np.float32)
    ones = np.ones(n, np.float32)
    args = [q, np.ones(t, np.float32), pack(codes, "v16x4"), ones, np.zeros(n, np.float32)]
    if epilogue == "residual":
        args.append(np.zeros((t, n), np.float32))
    return args + [np.zeros((t, n), np.float32)], ints


@pytest.mark.parametrize("target,insn", [pytest.param(HOST, "vpdpbusd", marks=needs_vnni, id="vnni"),
                                         pytest.param(AVX2, "vpmaddubsw", marks=needs_avx2, id="avx2"),
                                         pytest.param({"kind": "llvm"}, None, id="generic")])
@pytest.mark.parametrize("t,k,n,epilogue", [(7, 24, 40, "none"), (197, 64, 48, "residual"),
                                            (1, 32, 1000, "none")])
def test_ternary_matmul_bit_exact(target, insn, t, k, n, epilogue):
    """Unit scales: y is the int32 accumulator itself, so any rounding would show."""
    func = compute.ternary_matmul(t, k, n, "v16x4", epilogue)
    scheduled = x86.schedule_ternary_matmul(func, x86.target_isa(target))
    lib, asm = _build(scheduled, target)
    if insn:
        assert insn in asm
    if insn == "vpmaddubsw":
        assert "vpdpbusd" not in asm
    args, ints = _matmul_case(t, k, n, epilogue)
    np.testing.assert_array_equal(_run(lib, *args), ints)


def test_i16_k_block_bounds_the_int16_sums():
    from schedules.x86.forms import I16_MAX_STEPS, i16_k_block
    assert I16_MAX_STEPS * 512 <= 32767 < (I16_MAX_STEPS + 1) * 512
    assert i16_k_block(192) == 192 and i16_k_block(1536) == 192 and i16_k_block(504) == 252
    assert i16_k_block(24) == 24 and i16_k_block(30) is None      # k % 4 != 0: no 4-groups


@needs_avx2
@pytest.mark.parametrize("q_value,code", [(-128, 2), (127, 2), (-128, 0)])
def test_avx2_i16_matmul_worst_case_is_exact(q_value, code):
    """k = 504: one k-block of 63 4-groups, the most int16 can hold; all activations at an
    extreme and all weights one sign, so every int16 pair sum is as large as it gets (+-512)."""
    t, k, n = 5, 504, 16
    func = compute.ternary_matmul(t, k, n, "v16x4", "none")
    scheduled = x86.schedule_ternary_matmul(func, "avx2")
    sch = s_tir.Schedule(scheduled)
    sch.get_sblock("acc16_update_o")                      # the int16 tile is tensorized
    lib, asm = _build(scheduled, AVX2)
    assert all(insn in asm for insn in ("vpmaddubsw", "vpaddw", "vpmaddwd"))
    q = np.full((t, k), q_value, np.int8)
    codes = np.full((n, k), code - 1, np.int8)
    args = [q, np.ones(t, np.float32), pack(codes, "v16x4"), np.ones(n, np.float32),
            np.zeros(n, np.float32), np.zeros((t, n), np.float32)]
    np.testing.assert_array_equal(_run(lib, *args), q.astype(np.int64) @ codes.T.astype(np.int64))


def test_ternary_matmul_epilogues_match_reference():
    t, k, n = 9, 32, 32
    for epilogue in ("none", "gelu", "residual"):
        func = compute.ternary_matmul(t, k, n, "v16x4", epilogue)
        args, _ = _matmul_case(t, k, n, epilogue)
        args[1] = RNG.random(t).astype(np.float32) * 0.01
        args[3] = RNG.random(n).astype(np.float32)
        args[4] = RNG.standard_normal(n).astype(np.float32)
        if epilogue == "residual":
            args[5] = RNG.standard_normal((t, n)).astype(np.float32)
        got = _run(_build(x86.schedule_ternary_matmul(func, x86.target_isa(HOST)))[0], *args)
        ref = _run(_build(func)[0], *args)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


# ---- per-token kernels and attention --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["quantize_act", "ternary_layernorm"])
def test_row_kernels_match_reference(kind):
    t, d = 13, 64
    if kind == "quantize_act":
        func, sched = compute.quantize_act(t, d), x86.schedule_quantize_act
        extra = []
    else:
        func, sched = compute.ternary_layernorm_quant(t, d, 1e-6), x86.schedule_layernorm
        extra = [RNG.integers(-1, 2, d).astype(np.int8), RNG.integers(-1, 2, d).astype(np.int8),
                 np.array([0.7, 0.2], np.float32)]
    x = RNG.standard_normal((t, d)).astype(np.float32) * 3
    outs = []
    for f in (sched(func, x86.target_isa(HOST)), func):
        lib, _ = _build(f)
        args = [tvm.runtime.tensor(a) for a in [x, *extra, np.zeros((t, d), np.int8),
                                                np.zeros(t, np.float32)]]
        lib(*args)
        outs.append((args[-2].numpy(), args[-1].numpy()))
    (q, s), (q_ref, s_ref) = outs
    np.testing.assert_allclose(s, s_ref, rtol=1e-6)
    # x * (1/s) for x / s, and LayerNorm's reordered sums: an ulp can move a code by one step
    assert np.abs(q.astype(int) - q_ref).max() <= 1 and np.mean(q != q_ref) < 0.01


def test_quantize_patches_match_reference():
    b, c, gh, gw, p = 1, 3, 3, 2, 8
    func = compute.quantize_patches(b, c, gh, gw, p)
    x = RNG.standard_normal((b, c, gh * p, gw * p)).astype(np.float32)
    outs = []
    for f in (x86.schedule_quantize_patches(func, x86.target_isa(HOST)), func):
        args = [tvm.runtime.tensor(a) for a in (x, np.zeros((gh * gw, c * p * p), np.int8),
                                                np.zeros(gh * gw, np.float32))]
        _build(f)[0](*args)
        outs.append([a.numpy() for a in args[1:]])
    (q, s), (q_ref, s_ref) = outs
    np.testing.assert_array_equal(s, s_ref)                 # the absmax is exact (max)
    assert np.abs(q.astype(int) - q_ref).max() <= 1 and np.mean(q != q_ref) < 0.01


@needs_vnni
def test_attention_vnni_matches_reference():
    n, h, hd = 21, 2, 32
    func = compute.int8_attention_qkv(n, h, hd, hd ** -0.5)
    scheduled = x86.schedule_attention_qkv(func, "avx512_vnni")
    assert scheduled.attrs["fter.kind"] == "int8_attention_qkv"
    lib, asm = _build(scheduled)
    assert asm.count("vpdpbusd") >= 2                      # scores and P.V
    qkv = RNG.standard_normal((n, 3 * h * hd)).astype(np.float32)
    got = _run(lib, qkv, np.zeros((n, h * hd), np.float32))
    ref = _run(_build(func)[0], qkv, np.zeros((n, h * hd), np.float32))
    np.testing.assert_allclose(got, ref, atol=2e-3)


def _attention_case(n, h, hd, isa, target):
    func = compute.int8_attention_qkv(n, h, hd, hd ** -0.5)
    scheduled = x86.schedule_attention_qkv(func, isa)
    assert scheduled.attrs["fter.kind"] == "int8_attention_qkv"
    with tvm.transform.PassContext(config=x86.PASS_CONFIG):
        lib, asm = _build(scheduled, target)
    qkv = RNG.standard_normal((n, 3 * h * hd)).astype(np.float32)
    got = _run(lib, qkv, np.zeros((n, h * hd), np.float32))
    ref = _run(_build(func)[0], qkv, np.zeros((n, h * hd), np.float32))
    np.testing.assert_allclose(got, ref, atol=2e-3)
    return scheduled, asm


@needs_avx2
@pytest.mark.parametrize("n,h,hd", [(21, 2, 32), (40, 3, 16), (197, 1, 64)])
def test_attention_avx2_i16_matches_reference(n, h, hd):
    """AVX2 attention: int16 codes, both matmuls tensorized with vpmaddwd (exact); the output
    equals the reference's but for a probability or code moved by one step."""
    scheduled, asm = _attention_case(n, h, hd, "avx2", AVX2)
    sch = s_tir.Schedule(scheduled)
    for name in ("qk_update_o", "pv_update_o"):          # both integer matmuls tensorized
        sch.get_sblock(name)
    assert "vpmaddwd" in asm and "vpdpbusd" not in asm and "zmm" not in asm


@needs_avx2
@pytest.mark.parametrize("n,h,hd", [(21, 2, 32), (40, 3, 16)])
def test_attention_f32_matches_reference(n, h, hd):
    """Attention without an integer dot ISA: int8 codes as float32, both matmuls as FMAs over
    register tiles (exact sums)."""
    scheduled, asm = _attention_case(n, h, hd, "generic", AVX2)
    sch = s_tir.Schedule(scheduled)
    for name in ("qk_init", "qk_update", "pv_init", "pv_update"):   # register tiles, inits split
        sch.get_sblock(name)
    assert "vfmadd231ps" in asm and "ymm" in asm and "vpdpbusd" not in asm


def test_attention_f32_exactness_bound():
    assert attention_forms.supported_f32(197, 3, 64)
    assert not attention_forms.supported_f32(600, 3, 64)     # P.V sums could pass 2^24
    with pytest.raises(ValueError, match="n=600"):
        attention_forms.int8_attention_qkv_f32(600, 3, 64, 0.125)


# ---- whole model, AVX2 forced through the target ----------------------------------------------

@needs_avx2
def test_compile_avx2_forced_matches_vnni_build():
    torch.manual_seed(0)
    model = FTerViT(FTerViTConfig(img_size=16, patch_size=4, in_chans=1, num_classes=10,
                                  embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                                  layer_scale_init=0.1)).eval()
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(1, 1, 16, 16, generator=g) for _ in range(4)]
    builds = {name: fter_tvm.compile(model, X86Target(tvm_target=tgt), (xs[0],))
              for name, tgt in (("host", HOST), ("avx2", AVX2))}
    with torch.no_grad():
        for x in xs:
            ref = model(x).numpy()
            got = {k: a.run(x) for k, a in builds.items()}
            np.testing.assert_allclose(got["avx2"], got["host"], atol=1e-5)
            assert np.abs(got["avx2"] - ref).max() < 1e-2


# ---- vector math ----------------------------------------------------------------------------------

def test_fast_exp_erf_accuracy():
    size = 4096

    @T.prim_func(s_tir=True)
    def func(x: T.Buffer((size,), "float32"), e: T.Buffer((size,), "float32"),
             r: T.Buffer((size,), "float32")):
        for i in range(size):
            with T.sblock("b"):
                vi = T.axis.remap("S", [i])
                e[vi] = fast_math.fast_exp(x[vi])
                r[vi] = fast_math.fast_erf(x[vi])

    sch = s_tir.Schedule(func)
    (i,) = sch.get_loops(sch.get_sblock("b"))
    sch.vectorize(sch.split(i, [None, 16])[1])
    lib, asm = _build(sch.mod["main"])
    assert "expf" not in asm and "erff" not in asm
    xs = np.linspace(-80, 80, size).astype(np.float32)
    args = [tvm.runtime.tensor(a) for a in (xs, np.zeros(size, np.float32), np.zeros(size, np.float32))]
    lib(*args)
    ref_exp = np.exp(xs.astype(np.float64))
    assert np.max(np.abs(args[1].numpy() / ref_exp - 1)) < 3e-7
    ref_erf = np.array([math.erf(v) for v in xs.astype(np.float64)])
    assert np.max(np.abs(args[2].numpy() - ref_erf)) < 5e-7
