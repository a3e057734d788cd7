"""Schedules of the fused kernels for the LLVM (x86) target.

The instruction set comes from the target (``mcpu``/``mattr``; :func:`target_isa`):

* AVX-512 VNNI: the ternary matmul (``vpdpbusd``, weights in the ``v16x4`` tile layout) and both
  integer matmuls of attention are tensorized.
* AVX2 (no exact u8 x s8 dot: ``vpmaddubsw`` saturates int16): the ternary matmul sums
  ``vpmaddubsw`` pairs in int16 within k-blocks (``forms.ternary_matmul_i16``); attention
  stores its codes as int16 and tensorizes both matmuls with ``vpmaddwd``
  (``attention_forms.int8_attention_qkv_i16``).
* anything else: plain row-parallel loops; attention as exact float32 FMAs
  (``attention_forms.int8_attention_qkv_f32``).

Every schedule is parallel over the thread pool (2 cores here). The x86 formulations
(``forms``, ``attention_forms``) keep each kernel's signature and integer numerics:
layouts the intrinsics read, and row reductions split into explicit vector lanes (TensorIR
vectorizes only spatial loops).

exp/erf are lowered to vectorizable polynomials (``fast_math``) for every llvm build.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.target import codegen

from ..common import stream_attention_rows
from ..formats import get_format
from ..tuning.database import apply_database
from . import fast_math, forms
from .attention_forms import (I16_LAYOUT, VNNI_LAYOUT, DotLayout, int8_attention_qkv_f32,
                              int8_attention_qkv_i16, int8_attention_qkv_vnni,
                              supported as attention_supported,
                              supported_f32 as attention_supported_f32,
                              supported_i16 as attention_supported_i16)
from .intrin import (AVX2_I16_8x2, AVX2_PAIR16_8x4, AVX2_WIDEN16_8x2, DOT_INTRINSICS,
                     VNNI_S8U8_16x4, VNNI_U8S8_16x4)

fast_math.register()

VECTOR = 16      # float32 lanes of a zmm register; shorter vectors are legalized by LLVM
# register tile of the ternary matmul, rows x output channels: VNNI keeps 5 x 3 zmm accumulators
# (15 independent vpdpbusd chains: 5-cycle latency x 2 per cycle); AVX2 has 16 ymm registers, so
# 4 x 2 accumulators plus operands (measured: 110 GMAC/s/core vs 82 for 4 x 32). The tile must
# stay under 1 KiB so TVM allocates it on the stack, where LLVM promotes it to registers.
MATMUL_TILE = {"avx512_vnni": (5, 48), "avx2": (4, 16)}
# long rows (k >= 768): a 48-channel block is 48*k bytes of weights, which no longer stays in L1
# across the row tiles; 32 channels x 6 rows keeps 12 chains (fc2 of DeiT-S: 169 vs 183 us)
MATMUL_TILE_LONG_K = {"avx512_vnni": (6, 32)}
# AVX2 with int16 accumulation (the default there): rows x channels of int16 pair sums
MATMUL_TILE_I16 = (4, 16)
ATTENTION_ROWS = 3     # query rows per attention tile (x 4 channel tiles = 12 P.V chains)
# float variant: rows x (key vectors | channel vectors) of 8 floats; with the operand vectors and a
# broadcast they must fit AVX2's 16 ymm registers, or LLVM spills accumulators every step
ATTENTION_F32_TILE = (4, 2, 2)
# AVX2 int16 variant (vpmaddwd): rows, keys per score chunk, channels per P.V chunk
ATTENTION_I16_TILE = (4, 16, 16)
# TIR build options for scheduled x86 modules: StorageRewrite would fold the small per-tile
# accumulators into one shared scratch allocation that LLVM cannot prove disjoint from the K/V
# tiles, so they would be stored to memory every step instead of kept in registers.
PASS_CONFIG = {"tirx.disable_storage_rewrite": True}


def target_isa(target) -> str:
    """``"avx512_vnni"``, ``"avx2"`` or ``"generic"`` for an llvm target (dict or Target)."""
    tgt = target if isinstance(target, tvm.target.Target) else tvm.target.Target(target)
    if codegen.target_has_features("avx512vnni", tgt) and codegen.target_has_features("avx512bw", tgt):
        return "avx512_vnni"
    if codegen.target_has_features("avx2", tgt):
        return "avx2"
    return "generic"


def _params(func: tirx.PrimFunc) -> dict:
    return {k: str(v) for k, v in func.attrs["fter.params"].items()}


def _keep_symbol(new: tirx.PrimFunc, old: tirx.PrimFunc) -> tirx.PrimFunc:
    return new.with_attr("global_symbol", old.attrs["global_symbol"]) if "global_symbol" in old.attrs else new


def _vectorize_inner(sch: s_tir.Schedule, block) -> None:
    """Vectorize the innermost loop of ``block`` in chunks of at most VECTOR lanes (the largest of
    16, 8, 4 dividing it; short loops whole)."""
    loop = sch.get_loops(block)[-1]
    extent = int(sch.get(loop).extent)
    if extent <= VECTOR:
        sch.vectorize(loop)
        return
    lanes = next((v for v in (VECTOR, 8, 4) if extent % v == 0), None)
    if lanes is not None:
        sch.vectorize(sch.split(loop, [None, lanes])[1])


# ---- ternary matmul ------------------------------------------------------------------------------

def _schedule_matmul_rows(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Packed formats (b2/b3) or no SIMD dot product: one row per iteration, rows in parallel."""
    sch = s_tir.Schedule(func)
    i, j, _ = sch.get_loops(sch.get_sblock("acc"))
    sch.reverse_compute_at(sch.get_sblock("epilogue"), j)
    sch.parallel(i)
    return sch.mod["main"]


def _channel_tile(npad: int, want: int, lanes: int) -> int:
    """Largest multiple of ``lanes`` that is <= ``want`` and divides ``npad``."""
    return next(c for c in range(want - want % lanes, 0, -lanes) if npad % c == 0)


def schedule_ternary_matmul(func: tirx.PrimFunc, isa: str) -> tirx.PrimFunc:
    """Register-tiled ``v16x4`` matmul: ``rows x channels`` int32 accumulators stay in registers
    over the whole K loop, the inner 4 x lanes step is one dot intrinsic (without one: a vector
    loop over the lanes), the epilogue runs on the finished tile; channel blocks in parallel, row
    tiles inside them. Packed formats (b2/b3) get :func:`_schedule_matmul_rows`."""
    p = _params(func)
    t, k, n, fmt = int(p["t"]), int(p["k"]), int(p["n"]), p["fmt"]
    f = get_format(fmt)
    if f.tile is None:
        return _schedule_matmul_rows(func)
    if isa == "avx2" and f.tile[1] == 4 and forms.i16_k_block(k) is not None:
        rows, cols = MATMUL_TILE_I16
        return _schedule_matmul_i16(
            _keep_symbol(forms.ternary_matmul_i16(t, k, n, fmt, p["epilogue"]), func),
            min(rows, t), _channel_tile(-(-n // f.tile[0]) * f.tile[0], cols, 8))
    intrin, lanes = DOT_INTRINSICS[isa].get("s8u8", (None, f.tile[0]))
    if k % f.tile[1]:
        intrin = None            # a partial 4-group: the intrinsic would read past the row
    tiles = MATMUL_TILE_LONG_K if k >= 768 and isa in MATMUL_TILE_LONG_K else MATMUL_TILE
    rows, want = tiles.get(isa, MATMUL_TILE["avx2"])
    rows = min(rows, t)
    cols = _channel_tile(-(-n // f.tile[0]) * f.tile[0], want, lanes)

    sch = s_tir.Schedule(func)
    acc, ep, qsum = sch.get_sblock("acc"), sch.get_sblock("epilogue"), sch.get_sblock("qsum")
    # channel blocks outermost (and in parallel): a block's weights (k x cols bytes) stay in L1/L2
    # while every row tile passes; the other order streamed the whole matrix once per row tile
    i, j = sch.get_loops(ep)
    io, ii = sch.split(i, [None, rows])
    jo, ji = sch.split(j, [None, cols])
    sch.reorder(jo, io, ii, ji)
    sch.compute_at(acc, io, preserve_unit_loops=True)
    # qsum stays a serial pass before the tiles: once per row (under the tiles it would repeat
    # per block), and LLVM vectorizes int8 row sums -- cheaper than another parallel launch
    sch.parallel(jo)
    register_tile(sch, acc, ii, ji, lanes, f.tile[1], intrin)
    return sch.mod["main"]


def register_tile(sch: s_tir.Schedule, acc, ii, ji, lanes: int, group: int, intrin) -> None:
    """The accumulation of one ``ii x ji`` register tile of the ``v16x4`` matmul (``acc`` already
    under the tile loops): the K loop outermost, the ``group x lanes`` step as the dot
    ``intrin`` (None: a vector loop over the lanes), everything else unrolled, so LLVM keeps
    the accumulators in registers. Shared by the hand schedule and the tuning space."""
    ai, aj, ar = sch.get_loops(acc)[-3:]
    jt, jv = sch.split(aj, [None, lanes])
    ro, rv = sch.split(ar, [None, group])
    sch.reorder(ro, ai, jt, jv, rv) if intrin else sch.reorder(ro, ai, jt, rv, jv)
    sch.vectorize(ji)
    sch.unroll(ii)          # constant tile indices: LLVM keeps the accumulators in registers
    if intrin is None:
        sch.vectorize(jv)
    init = sch.decompose_reduction(acc, ro)
    sch.vectorize(sch.get_loops(init)[-1])
    if intrin is not None:
        sch.tensorize(jv, intrin)
    sch.unroll(ai)
    sch.unroll(jt)


def _schedule_matmul_i16(func: tirx.PrimFunc, rows: int, cols: int) -> tirx.PrimFunc:
    """AVX2 register tile of ``forms.ternary_matmul_i16``: per k-block, ``rows x cols``
    int16 pair sums in registers (one ``vpmaddubsw`` + ``vpaddw`` per 8 channels x 4 k), then
    widened into the int32 tile (``vpmaddwd``); channel blocks in parallel, as the VNNI tile."""
    sch = s_tir.Schedule(func)
    get = sch.get_sblock
    acc16, acc, ep = get("acc16"), get("acc"), get("epilogue")
    i, j = sch.get_loops(ep)
    io, ii = sch.split(i, [None, rows])
    jo, ji = sch.split(j, [None, cols])
    sch.reorder(jo, io, ii, ji)
    sch.compute_at(acc, io, preserve_unit_loops=True)
    ai, aj, ab, ah = sch.get_loops(acc)[-4:]
    sch.reorder(ab, ai, aj, ah)
    sch.compute_at(acc16, ab, preserve_unit_loops=True)
    sch.parallel(jo)                # (while every block is still a complete/reduction block)
    sch.vectorize(ji)
    sch.unroll(ii)
    # int16 tile: 4-group steps outermost, rows x 8-channel vectors unrolled, one intrinsic each
    *_, bi, bj, _bb, bh, bs, br = sch.get_loops(acc16)
    bjt, bjl = sch.split(bj, [None, 8])
    sch.reorder(bs, bi, bjt, bjl, bh, br)
    init16 = sch.decompose_reduction(acc16, bs)
    sch.vectorize(sch.fuse(*sch.get_loops(init16)[-2:]))
    sch.tensorize(bjl, AVX2_PAIR16_8x4)
    sch.unroll(bi)
    sch.unroll(bjt)
    # widen: acc[rows, cols] += the two int16 halves of each channel
    ajt, ajl = sch.split(aj, [None, 8])
    sch.reorder(ai, ajt, ajl, ah)
    init = sch.decompose_reduction(acc, ab)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.tensorize(ajl, AVX2_WIDEN16_8x2)
    sch.unroll(ai)
    sch.unroll(ajt)
    return sch.mod["main"]


# ---- per-token kernels ---------------------------------------------------------------------------

def _schedule_rows(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Every block under the first block's row loop, rows in parallel, inner loops vectorized
    where they are spatial (lane blocks: the lanes; elementwise blocks: the row)."""
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    row = sch.get_loops(blocks[0])[0]
    for block in blocks[1:]:
        sch.reverse_compute_at(block, row)
    sch.parallel(row)
    for block in blocks:
        spatial_inner = sch.get(block).iter_vars[-1].iter_type == 0
        if len(sch.get_loops(block)) > 1 and spatial_inner:
            _vectorize_inner(sch, block)
    return sch.mod["main"]


def schedule_quantize_act(func: tirx.PrimFunc, isa: str) -> tirx.PrimFunc:
    p = _params(func)
    t, k = int(p["t"]), int(p["k"])
    if k % forms.LANES == 0:
        func = _keep_symbol(forms.quantize_act_lanes(t, k), func)
    return _schedule_rows(func)


def schedule_layernorm(func: tirx.PrimFunc, isa: str) -> tirx.PrimFunc:
    p = _params(func)
    t, d = int(p["t"]), int(p["d"])
    if d % forms.LANES == 0 and "eps" in p:
        func = _keep_symbol(forms.ternary_layernorm_lanes(t, d, float(p["eps"])), func)
    return _schedule_rows(func)


def schedule_quantize_patches(func: tirx.PrimFunc, isa: str) -> tirx.PrimFunc:
    """Lane absmax and quantization each parallel over rows of patches (batch x patch row), the
    patch's pixel columns as vector lanes; the per-patch scales in between are a few hundred
    scalars. (Separate loop nests: the flattened token index of ``s``/``q`` defeats compute_at.)"""
    p = _params(func)
    b, c, gh, gw, pp = (int(p[k]) for k in ("b", "c", "gh", "gw", "p"))
    sch = s_tir.Schedule(_keep_symbol(forms.quantize_patches_lanes(b, c, gh, gw, pp), func))
    for name in ("absmax_lanes", "quant"):
        bi, gy, *_, kx = sch.get_loops(sch.get_sblock(name))
        sch.parallel(sch.fuse(bi, gy))
        sch.vectorize(kx)
    return sch.mod["main"]


# ---- attention -----------------------------------------------------------------------------------

def schedule_attention_qkv(func: tirx.PrimFunc, isa: str) -> tirx.PrimFunc:
    """K/V quantized once per head (parallel over keys / channels), then (head, query-row tile)
    pairs in parallel, each running scores, softmax (vectorized) and P.V on a few rows of scratch.

    VNNI: ``int8_attention_qkv_vnni`` (uint8/int8 tiles, both matmuls tensorized with
    ``vpdpbusd``). AVX2 (no exact u8 x s8 dot): ``int8_attention_qkv_i16`` (int16 codes, both
    matmuls tensorized with ``vpmaddwd``). Other x86: ``int8_attention_qkv_f32`` (integer codes in
    float32, exact FMAs over register tiles). Sizes none covers: the reference loop nest, rows
    streamed, heads in parallel.
    """
    p = _params(func)
    n, h, hd, scale = int(p["n"]), int(p["h"]), int(p["hd"]), float(p["scale"])
    if isa == "avx512_vnni" and attention_supported(n, h, hd):
        sch = s_tir.Schedule(_keep_symbol(int8_attention_qkv_vnni(n, h, hd, scale), func))
        _schedule_kv(sch)
        _schedule_query_rows(sch, min(ATTENTION_ROWS, n), VNNI_LAYOUT,
                             (VNNI_S8U8_16x4, VNNI_U8S8_16x4))
        return sch.mod["main"]
    if isa == "avx2" and attention_supported_i16(n, h, hd):
        rows, keys, channels = ATTENTION_I16_TILE
        sch = s_tir.Schedule(_keep_symbol(int8_attention_qkv_i16(n, h, hd, scale, keys), func))
        _schedule_kv(sch)
        _schedule_query_rows(sch, min(rows, n), I16_LAYOUT, (AVX2_I16_8x2, AVX2_I16_8x2), keys,
                             _channel_tile(hd, channels, 8))
        return sch.mod["main"]
    if attention_supported_f32(n, h, hd):
        rows, kv, cv = ATTENTION_F32_TILE
        sch = s_tir.Schedule(_keep_symbol(int8_attention_qkv_f32(n, h, hd, scale, 8 * kv), func))
        _schedule_kv_f32(sch)
        _schedule_query_rows_f32(sch, min(rows, n), 8 * kv, _channel_tile(hd, 8 * cv, 8))
        return sch.mod["main"]
    sch = s_tir.Schedule(func)
    stream_attention_rows(sch)
    sch.parallel(sch.get_loops(sch.get_sblock("out"))[0])     # heads in parallel
    return sch.mod["main"]


def _schedule_scales(sch: s_tir.Schedule) -> None:
    """Per-key absmax (parallel over keys, lanes vectorized) and per-channel value absmax."""
    get = sch.get_sblock
    hh, j, _ = sch.get_loops(get("kmax"))
    key = sch.fuse(hh, j)
    sch.parallel(key)
    sch.compute_at(get("kmax_lanes"), key)
    sch.vectorize(sch.get_loops(get("kmax_lanes"))[-1])
    hh, j = sch.get_loops(get("kscale"))
    sch.vectorize(j)
    hh, j, c = sch.get_loops(get("vmax"))
    sch.parallel(hh)
    _vectorize_inner(sch, get("vmax"))
    hh, c = sch.get_loops(get("vscale"))
    sch.vectorize(c)


def _schedule_kv(sch: s_tir.Schedule) -> None:
    get = sch.get_sblock
    _schedule_scales(sch)
    # one key's 4-channel group per vector: contiguous floats in, contiguous bytes out (kt is a
    # transpose at 4-byte granularity, so wider vectors would gather or scatter)
    hh, jt, cg, jl, cl = sch.get_loops(get("kquant"))
    sch.reorder(hh, jt, jl, cg, cl)
    sch.parallel(sch.fuse(hh, jt))
    sch.vectorize(cl)
    # 16 channels of one key per vector (contiguous floats in, bytes scattered at stride 4)
    hh, ct, jg, cl, jl = sch.get_loops(get("vquant"))
    sch.reorder(hh, ct, jg, jl, cl)
    sch.parallel(sch.fuse(hh, ct))
    sch.vectorize(cl)


def _schedule_kv_f32(sch: s_tir.Schedule) -> None:
    get = sch.get_sblock
    _schedule_scales(sch)
    # keys transposed: one channel of 8 keys per vector (strided reads, contiguous writes)
    hh, c, j = sch.get_loops(get("kquant"))
    sch.parallel(sch.fuse(hh, c))
    _vectorize_inner(sch, get("kquant"))
    hh, j, c = sch.get_loops(get("vquant"))
    sch.parallel(sch.fuse(hh, j))
    _vectorize_inner(sch, get("vquant"))


def _query_row_tiles(sch: s_tir.Schedule, rows: int, keys: int = 32, channels: int | None = None):
    """(head, row tile) loop of the output in parallel; every per-row block computed inside it,
    the scores per ``keys``-key chunk of the logits, P.V per ``channels``-channel chunk of the
    output if given (accumulators that small are stack arrays, which LLVM keeps in registers;
    a larger one is workspace memory, stored to every step). Returns the tile loop."""
    get = sch.get_sblock
    hh, i, c = sch.get_loops(get("out"))
    io, ii = sch.split(i, [None, rows])
    tile = sch.fuse(hh, io)
    sch.parallel(tile)
    chain = ["pv", "prob", "pscale", "lsum", "lsum_lanes", "exp", "lmax", "lmax_lanes", "logit"]
    if channels is None:
        sch.vectorize(c)
    else:
        co, ci = sch.split(c, [None, channels])
        sch.reorder(co, ii, ci)
        sch.vectorize(ci)
        sch.compute_at(get(chain.pop(0)), co, preserve_unit_loops=True)
    for name in chain:
        sch.compute_at(get(name), tile, preserve_unit_loops=True)
    # scores: per chunk of the logits, rows x keys accumulators over the head dim
    ri, j = sch.get_loops(get("logit"))[-2:]
    jo, jv = sch.split(j, [None, keys])
    sch.reorder(jo, ri, jv)
    sch.compute_at(get("qk"), jo, preserve_unit_loops=True)
    return tile


def _schedule_query_rows(sch: s_tir.Schedule, rows: int, layout: DotLayout, intrinsics,
                         keys: int = 32, channels: int | None = None) -> None:
    """Integer register tiles of ``_int8_attention_tiled`` in ``layout``, tensorized with
    ``intrinsics`` (scores, P.V): scores ``rows x keys`` and P.V ``rows x channels`` (all of the
    head dim if None) accumulators."""
    get = sch.get_sblock
    lanes, group = layout.lanes, layout.group
    tile_loop = _query_row_tiles(sch, rows, keys, channels)
    row_blocks = ("qsum",) if layout.key_shift else ()   # shifted keys' query row sums
    for name in (*row_blocks, "qquant", "qmax", "qmax_lanes"):
        sch.compute_at(get(name), tile_loop, preserve_unit_loops=True)
    for name in ("qmax_lanes", "lmax_lanes", "lsum_lanes", "qquant", "logit", "exp", "prob"):
        _vectorize_inner(sch, get(name))
    # scores: rows x key tiles accumulators over the head dim; P.V: rows x channel tiles over
    # the keys
    for name in ("qk", "pv"):
        _dot_tile(sch, get(name), lanes, group)
    for name, intrin in zip(("qk_update", "pv_update"), intrinsics):
        loops = sch.get_loops(get(name))
        sch.unroll(loops[-4])           # rows / key tiles / channel tiles: register accumulators
        sch.unroll(loops[-3])
        sch.tensorize(loops[-2], intrin)


def _dot_tile(sch: s_tir.Schedule, block, lanes: int, group: int) -> None:
    """A dot block whose last loops are (rows, outputs, reduction): outputs in tiles of
    ``lanes``, the reduction in groups of ``group`` outermost, so the ``lanes x group`` step
    below the rows and output tiles is one dot intrinsic; the init split off there."""
    rows, out, red = sch.get_loops(block)[-3:]
    out_tile, out_lane = sch.split(out, [None, lanes])
    red_group, red_lane = sch.split(red, [None, group])
    sch.reorder(red_group, rows, out_tile, out_lane, red_lane)
    sch.decompose_reduction(block, red_group)


def _schedule_query_rows_f32(sch: s_tir.Schedule, rows: int, keys: int, ctile: int) -> None:
    """Float-FMA register tiles: scores ``rows x keys`` per channel step, P.V ``rows x ctile``
    per key step (both in vectors of 8 lanes)."""
    get = sch.get_sblock
    tile = _query_row_tiles(sch, rows, keys, ctile)
    for name in ("qquant", "qmax", "qmax_lanes"):
        sch.compute_at(get(name), tile, preserve_unit_loops=True)
    for name in ("qmax_lanes", "lmax_lanes", "lsum_lanes", "qquant", "logit", "exp", "prob"):
        _vectorize_inner(sch, get(name))
    # vectorize and unroll while the blocks are still reductions, then split off the inits
    qk = get("qk")
    ri, j, c = sch.get_loops(qk)[-3:]
    jt, jl = sch.split(j, [None, 8])
    sch.reorder(c, ri, jt, jl)
    _register_tile(sch, qk, (ri, jt, jl), c)
    pv = get("pv")
    ri, c, j = sch.get_loops(pv)[-3:]
    cv, cl = sch.split(c, [None, 8])
    sch.reorder(j, ri, cv, cl)
    _register_tile(sch, pv, (ri, cv, cl), j)


def _register_tile(sch: s_tir.Schedule, block, tile_loops, reduce_loop) -> None:
    """rows x vectors of accumulators: the last tile loop vectorized, the others unrolled, the
    init split off above ``reduce_loop``."""
    *unrolled, lanes = tile_loops
    sch.vectorize(lanes)
    for loop in unrolled:
        sch.unroll(loop)
    sch.decompose_reduction(block, reduce_loop)


SCHEDULES = {
    "ternary_matmul": schedule_ternary_matmul,
    "quantize_act": schedule_quantize_act,
    "ternary_layernorm": schedule_layernorm,
    "ternary_layernorm_float": lambda f, isa: _schedule_rows(f),
    "ternary_matmul_float": lambda f, isa: _schedule_rows(f),
    "int8_attention_qkv": schedule_attention_qkv,
    "quantize_patches": schedule_quantize_patches,
    # attention without the fused-qkv layout (batch > 1): plain loop nest, correct, not fast
    "int8_attention": lambda f, isa: f,
}


def schedule_module(mod: tvm.IRModule, target, tuning_db=None) -> tvm.IRModule:
    """Schedule every fter kernel in ``mod`` for ``target`` (an :class:`fter_tvm.targets.X86Target`,
    an llvm target dict or ``None`` for this machine): records of ``tuning_db`` first
    (``schedules.tuning.database``), the hand schedules of this module for the rest.

    Raises:
        ValueError: a kernel kind without an x86 schedule (names the kernel).
    """
    mod, tuned = apply_database(mod, target, tuning_db)   # tuning records first (tuning.database)
    isa = target_isa(_llvm_target(target))
    mod = tvm.IRModule(dict(mod.functions_items()))
    for gv, func in mod.functions_items():
        if isinstance(func, tirx.PrimFunc) and func.attrs is not None and "fter.kind" in func.attrs \
                and gv.name_hint not in tuned:
            kind = str(func.attrs["fter.kind"])
            if kind not in SCHEDULES:
                raise ValueError(f"no x86 schedule for kernel kind {kind!r} ({gv.name_hint})")
            mod[gv] = SCHEDULES[kind](func, isa)
    return mod


def host_target() -> dict:
    """llvm target for this machine's CPU (``mcpu`` = LLVM's name for it, so its SIMD is used)."""
    return {"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu()}


def _llvm_target(target) -> dict:
    return host_target() if target is None else getattr(target, "tvm_target", target)
