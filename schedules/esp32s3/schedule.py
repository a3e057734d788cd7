"""Schedules of the fused kernels for the C (ESP32-S3 / Xtensa) target.

Two families, picked by the target's ``kernel_variant`` (``schedule_module``):

* ``"pie"`` (default): weight-stationary. Every ternary accumulation becomes a [T, NB] tile over
  all tokens, tensorized into the PIE tile kernel ``fter_tmm_tile_<fmt>`` (``pie_intrin``: decode
  16 weight rows once per call, then every token against them with ``EE.VSMULAS.S8.QACC``);
  channel blocks are the outer loop. The MLP is rebuilt in its stationary form first
  (``stationary``), the attention block projects Q and its output over all tokens and streams
  only the attention rows, whose scores and P.V go to ``fter_qk_row`` / ``fter_pv_row``.
* ``"xtensa"``: the scalar row-streamed schedules -- one token row against a block of ``NB``
  output channels over the whole K, tensorized into ``fter_tmm_<fmt>`` (runtime/kernels); a
  tuning record may pick another micro-kernel variant (``TMM_VARIANTS``) per tile.

The intrinsics' desc is the scalar meaning (int8 x decoded trit, int32 accumulate); the impl is
the ``T.call_extern``; the scalar ones are in ``intrin``, the PIE ones in ``pie_intrin``.
"""

from __future__ import annotations

import contextlib
import re
import threading

import tvm
from tvm import s_tir, tirx

from ..common import stream_attention_rows
from ..tuning.database import apply_database, is_tuned
from .intrin import TMM_VARIANTS, ensure_intrin
from .pie_intrin import (pv_row_g16_intrin, pv_row_intrin, qk_row_intrin, tile_intrin,
                         v_groups16_intrin)
from .stationary import stationary_form

N_BLOCK = 16
_WIDTH = threading.local()   # channel_block's width for the thread's schedule, if one is set


@contextlib.contextmanager
def channel_block(width: int):
    """Weight-stationary tiles ``width`` channels wide (``_n_block``, where that leaves an even
    tile count) while scheduling in the block: the integer schedules take 32, the width of a
    chunk of their C epilogues (each tile then pays a row's set-up once per 32 values, not per
    16)."""
    saved = getattr(_WIDTH, "value", None)
    _WIDTH.value = width
    try:
        yield
    finally:
        _WIDTH.value = saved


# ---- hand schedules as design spaces -------------------------------------------------------------
# Inside `design_space(sch)` the hand schedules run on MetaSchedule's traced schedule, and the two
# choices they make per accumulation tile become decisions: tile_accumulation samples the N-block,
# tensorize_accumulation samples the micro-kernel variant and only annotates the tile loop (the
# intrinsic's name depends on both; schedules.esp32s3.space.TensorizeTernaryMatmul tensorizes it
# after a sampled trace is replayed). Outside, they are the fixed hand choices.
TMM_ANN = "fter.tmm"                  # on a tile loop: "<k>_<fmt>" of the accumulation
TMM_VARIANT_ANN = "fter.tmm_variant"  # on the same loop: index into TMM_VARIANTS
_SPACE = threading.local()
_TARGET = threading.local()           # .variant: the hand schedules' micro-kernel (schedule_module)


@contextlib.contextmanager
def kernel_variant(variant: str):
    """Hand schedules inside use ``variant`` ("" lane, "lut", "pie") for their tiles."""
    if variant not in TMM_VARIANTS:
        raise ValueError(f"unknown micro-kernel variant {variant!r}; choose one of {TMM_VARIANTS}")
    old = getattr(_TARGET, "variant", "")
    _TARGET.variant = variant
    try:
        yield
    finally:
        _TARGET.variant = old


def _pie() -> bool:
    """Whether the hand schedules target the PIE micro-kernels (and not inside a design space,
    whose sampled traces must keep the hand schedule's loop structure)."""
    return getattr(_TARGET, "variant", "") == "pie" and getattr(_SPACE, "sch", None) is None


@contextlib.contextmanager
def design_space(sch: s_tir.Schedule):
    """Run hand schedules on ``sch`` with their tile choices sampled (see above)."""
    _SPACE.sch = sch
    try:
        yield
    finally:
        _SPACE.sch = None


def _schedule(func: tirx.PrimFunc) -> s_tir.Schedule:
    space = getattr(_SPACE, "sch", None)
    return space if space is not None else s_tir.Schedule(func)


def _n_block(n: int) -> int:
    """The channels of a weight-stationary tile of ``n``: ``channel_block``'s width where it
    gives an even number of tiles (which the two-core split halves), else ``N_BLOCK`` or its
    largest divisor of ``n`` below it."""
    wide = getattr(_WIDTH, "value", None)
    if wide and n % wide == 0 and (n // wide) % 2 == 0:
        return wide
    return N_BLOCK if n % N_BLOCK == 0 else next(d for d in range(min(n, N_BLOCK), 0, -1) if n % d == 0)


def tile_accumulation(sch: s_tir.Schedule, acc, consumer, n: int, nb=None):
    """Compute the int32 accumulation block ``acc`` per N-block of its elementwise ``consumer``,
    so the accumulator is one [1, nb] tile; returns the loop to tensorize. ``nb`` (an int or a
    sampled factor) defaults to the hand-picked block."""
    j = sch.get_loops(consumer)[-1]
    if nb is None and getattr(_SPACE, "sch", None) is sch:
        nb = sch.sample_perfect_tile(j, n=2, max_innermost_factor=n)[1]
    jo, _ = sch.split(j, [None, _n_block(n) if nb is None else nb])
    # unit loops kept: a sampled nb of 1 must leave the same loop nest (traces replay by position)
    sch.compute_at(acc, jo, preserve_unit_loops=True)
    return sch.get_loops(acc)[-2]


def tensorize_accumulation(sch: s_tir.Schedule, acc, loop, k: int, n: int, fmt: str,
                           variant: str | None = None) -> None:
    """Replace the tile at ``loop`` by a ``fter_tmm_<fmt>[_<variant>]`` call (last step: blocks
    after tensorization no longer take part in compute_at dependency analysis)."""
    sch.decompose_reduction(acc, loop)
    if getattr(_SPACE, "sch", None) is sch:
        count = len(TMM_VARIANTS)
        sch.annotate(loop, TMM_ANN, f"{k}_{fmt}")
        sch.annotate(loop, TMM_VARIANT_ANN,
                     sch.sample_categorical(list(range(count)), [1.0 / count] * count))
        return
    nb = int(sch.get(loop).extent)
    variant = getattr(_TARGET, "variant", "") if variant is None else variant
    sch.tensorize(loop, ensure_intrin(k, nb, fmt, variant))


def _tile_and_tensorize(sch: s_tir.Schedule, fmt: str, *tiles) -> tirx.PrimFunc:
    """Tile each accumulation ``(acc, consumer, k, n)`` per N-block of its consumer
    (``tile_accumulation``), then tensorize every tile -- all tiles first: a tensorized block no
    longer takes part in the next compute_at's dependency analysis. Returns the kernel."""
    loops = [tile_accumulation(sch, acc, consumer, n) for acc, consumer, _, n in tiles]
    for (acc, _, k, n), loop in zip(tiles, loops):
        tensorize_accumulation(sch, acc, loop, k, n, fmt)
    return sch.mod["main"]


def _params(func: tirx.PrimFunc) -> dict:
    return {key: str(v) for key, v in func.attrs["fter.params"].items()}


def _schedule_ternary_matmul(func: tirx.PrimFunc) -> tirx.PrimFunc:
    p = _params(func)
    t, k, n, fmt = int(p["t"]), int(p["k"]), int(p["n"]), p["fmt"]
    sch = _schedule(func)
    acc, epilogue = sch.get_sblock("acc"), sch.get_sblock("epilogue")
    if _pie() and t > 1:   # one token: the row tile below (same kernel, t = 1)
        _tile_all_tokens(sch, acc, epilogue, t, k, n, fmt)
        return sch.mod["main"]
    return _tile_and_tensorize(sch, fmt, (acc, epilogue, k, n))


def _tile_all_tokens(sch: s_tir.Schedule, acc, consumer, t: int, k: int, n: int, fmt: str,
                     reduce_init: bool = False, via=None) -> None:
    """Weight-stationary order for PIE: channel blocks outermost, every token of a block in one
    ``fter_tmm_tile`` call (its weights decoded once per call); the accumulator is [t, nb].
    ``reduce_init``: the consumer reduces over the channels (a per-token absmax): its init goes
    before the channel-block loop. ``via``: an elementwise block between the accumulation and
    the consumer, computed per channel block too."""
    i, j = sch.get_loops(consumer)[-2:]
    jo, _ = sch.split(j, [None, _n_block(n)])
    sch.reorder(jo, i)
    if reduce_init:
        sch.decompose_reduction(consumer, jo)
    if via is not None:
        sch.compute_at(via, jo, preserve_unit_loops=True)
    _accumulate_tile_at(sch, acc, jo, t, k, _n_block(n), fmt)


def _accumulate_tile_at(sch: s_tir.Schedule, acc, jo, t: int, k: int, nb: int, fmt: str) -> None:
    """The accumulation ``acc`` computed under the channel-block loop ``jo`` for all ``t`` tokens
    and ``nb`` channels, as one ``fter_tmm_tile`` call (init split off)."""
    sch.compute_at(acc, jo, preserve_unit_loops=True)
    loop = sch.get_loops(acc)[-3]
    sch.decompose_reduction(acc, loop)
    sch.tensorize(loop, tile_intrin(t, k, nb, fmt))


def _accumulate_head_at(sch: s_tir.Schedule, acc, g, t: int, k: int, hd: int, fmt: str) -> None:
    """The accumulation ``acc`` computed under the head loop ``g`` for all ``t`` tokens and the
    head's ``hd`` channels, in tiles of ``_n_block(hd)`` channels (one ``fter_tmm_tile`` call
    each), so the whole [t, hd] head is ready before what follows under ``g``."""
    sch.compute_at(acc, g, preserve_unit_loops=True)
    i, j, _ = sch.get_loops(acc)[-3:]
    nb = _n_block(hd)
    jo, _ = sch.split(j, [None, nb])
    sch.reorder(jo, i)
    sch.decompose_reduction(acc, i)
    sch.tensorize(i, tile_intrin(t, k, nb, fmt))


_MACRO_SUFFIX = re.compile(r"(_\d+)?")


def _block_named(sch: s_tir.Schedule, name: str):
    """The block ``name`` of a kernel written with a ``T.macro`` (TVMScript appends ``_<count>``
    to the block names of every macro expansion after the first in a process)."""
    stack = [sch.get_sblock("root")]
    while stack:
        for block in sch.get_child_blocks(stack.pop()):
            own = sch.get(block).name_hint
            if own.startswith(name) and _MACRO_SUFFIX.fullmatch(own[len(name):]):
                return block
            stack.append(block)
    raise ValueError(f"no block {name!r} in this kernel")


def _tensorize_attention_rows(sch: s_tir.Schedule, n: int, hd: int, rank: int = 2,
                              grouped_v: bool = False) -> None:
    """PIE: each (row, head) score vector and P.V output as one micro-kernel call (the blocks
    must already sit under the row loop); ``rank`` of the Q/K/V operands (see pie_intrin).
    ``grouped_v`` (rank 2): P.V reads a copy of V in groups of 16 channels, [d / 16, n, 16],
    made once per call before the rows (``fter_v_groups16``), so that each group's rows sit 16
    bytes apart (``fter_pv_row_g16``). The copy is scratch the rows share with it, which the
    two-core split turns into an arena buffer (n d bytes more arena while the kernel runs). Per
    worker halves of the rows, each copying first as the integer MLP's blocks gather their
    stages, would keep it in the workspace; TVM 0.27 does not tensorize the rows under the
    halves' predicate (n odd), nor move the copy once they are tensorized."""
    pv_intrin = pv_row_intrin(n, hd, rank)
    if grouped_v:
        pv = _block_named(sch, "pv")
        index = [str(r.source.name) for r in sch.get(pv).reads].index("v")
        copy = sch.cache_read(pv, index, "global")
        sch.transform_layout(pv, ("read", index), lambda j, c: (c // 16, j, c % 16))
        cols = int(sch.get(copy).writes[0].source.shape[0]) * 16
        sch.tensorize(sch.get_loops(copy)[0], v_groups16_intrin(n, cols))
        pv_intrin = pv_row_g16_intrin(n, hd)
    for name, intrin in (("qk", qk_row_intrin(n, hd, rank)), ("pv", pv_intrin)):
        block = _block_named(sch, name)
        loop = sch.get_loops(block)[-2]
        sch.decompose_reduction(block, loop)
        sch.tensorize(loop, intrin)


def _schedule_mlp(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Token-streamed MLP: for each row, fc1 (tensorized) -> GELU -> quantize -> fc2 (tensorized)
    -> residual; scratch is one row of the hidden layer. PIE: the stationary form (fc1 twice over
    all tokens, int8 hidden layer, fc2 over all tokens), every pass in weight-stationary tiles."""
    p = _params(func)
    d, hidden, fmt = int(p["d"]), int(p["hidden"]), p["fmt"]
    if _pie():
        t = int(p["t"])
        sch = s_tir.Schedule(stationary_form(func))
        acc1, absmax, _scale, acc1b, quant, acc2, out = sch.get_child_blocks(sch.get_sblock("root"))
        _tile_all_tokens(sch, acc1, absmax, t, d, hidden, fmt, reduce_init=True)
        _tile_all_tokens(sch, acc1b, quant, t, d, hidden, fmt)
        _tile_all_tokens(sch, acc2, out, t, hidden, d, fmt)
        return sch.mod["main"]
    sch = _schedule(func)
    acc1, hid, absmax, scale, quant, acc2, out = sch.get_child_blocks(sch.get_sblock("root"))
    loop2 = tile_accumulation(sch, acc2, out, d)
    row = sch.get_loops(out)[0]
    for block in (quant, scale, absmax, hid):
        sch.compute_at(block, row)
    loop1 = tile_accumulation(sch, acc1, hid, hidden)
    tensorize_accumulation(sch, acc2, loop2, hidden, d, fmt)
    tensorize_accumulation(sch, acc1, loop1, d, hidden, fmt)
    return sch.mod["main"]


def _schedule_rows(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Per-token kernels: all blocks under the first block's row loop (one row of scratch)."""
    sch = _schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    row = sch.get_loops(blocks[0])[0]
    for block in blocks[1:]:
        sch.reverse_compute_at(block, row)
    return sch.mod["main"]


def _schedule_patches(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """One patch at a time: its absmax, scale and codes under the patch loops."""
    sch = _schedule(func)
    absmax, scale, quant = sch.get_child_blocks(sch.get_sblock("root"))
    loops = sch.get_loops(absmax)
    sch.reverse_compute_at(scale, loops[2])
    sch.reverse_compute_at(quant, loops[2])
    # init before the reduction loops: gcc cannot see the conditional init and warns
    sch.decompose_reduction(absmax, loops[3])
    return sch.mod["main"]


SCHEDULES = {
    "ternary_matmul": _schedule_ternary_matmul,
    "ternary_mlp": _schedule_mlp,
    "quantize_act": _schedule_rows,
    "quantize_patches": _schedule_patches,
    # one scale for the tensor: the plain loop nest is already one pass per block
    "quantize_act_tensor": lambda f: f,
    "ternary_layernorm": _schedule_rows,
    "ternary_layernorm_float": _schedule_rows,
    "ternary_matmul_float": _schedule_rows,
    # attention keeps the plain loop nest: exact, but its scratch is O(n^2) (row streaming: #4)
    "int8_attention": lambda f: f,
}


# schedules of the integer kernel forms, by kind: filled in by schedules.esp32s3.integer
INTEGER_SCHEDULES: dict = {}


def schedule_module(mod: tvm.IRModule, target=None, tuning_db=None) -> tvm.IRModule:
    """Apply the ESP32-S3 schedule to every fter kernel in ``mod``: the tuning record from
    ``tuning_db`` (a directory written by ``fter_tvm.tune``) where there is one, else the hand
    schedule."""
    mod, _ = apply_database(mod, target, tuning_db)
    mod = tvm.IRModule(dict(mod.functions_items()))
    with kernel_variant(_target_variant(target)):
        return _schedule_untuned(mod)


def _target_variant(target) -> str:
    """The micro-kernel variant of a target's hand schedules: "pie" unless the target asks for the
    scalar Xtensa kernels (``kernel_variant="xtensa"``)."""
    return "" if getattr(target, "kernel_variant", "pie") == "xtensa" else "pie"


def _schedule_untuned(mod: tvm.IRModule) -> tvm.IRModule:
    for gv, func in mod.functions_items():
        if isinstance(func, tirx.PrimFunc) and func.attrs is not None and "fter.kind" in func.attrs \
                and not is_tuned(func):
            kind = str(func.attrs["fter.kind"])
            integer = "fter.numerics" in func.attrs and str(func.attrs["fter.numerics"]) == "integer"
            table = INTEGER_SCHEDULES if integer else SCHEDULES
            if kind not in table:
                raise ValueError(f"no esp32s3 schedule for {'integer ' if integer else ''}kernel "
                                 f"kind {kind!r} ({gv.name_hint})")
            mod[gv] = table[kind](func)
    return mod


def _schedule_matmul_heads(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Row by row: the projected row (tensorized tiles), its per-head absmax, its int8 codes."""
    p = _params(func)
    k, n, fmt = int(p["k"]), int(p["h"]) * int(p["hd"]), p["fmt"]
    sch = _schedule(func)
    acc, value, absmax, quant = sch.get_child_blocks(sch.get_sblock("root"))
    if _pie():   # head by head over all tokens: one [t, hd] float tile, weight-stationary calls
        hd = int(p["hd"])
        i, g = sch.get_loops(quant)
        sch.reorder(g, i)
        sch.compute_at(absmax, g)
        sch.compute_at(value, g)
        _tile_all_tokens(sch, acc, value, int(p["t"]), k, hd, fmt)
        return sch.mod["main"]
    row = sch.get_loops(quant)[0]
    sch.compute_at(absmax, row)
    sch.compute_at(value, row)
    return _tile_and_tensorize(sch, fmt, (acc, value, k, n))


def _stream_q_attention(sch: s_tir.Schedule, blocks, anchor, d: int):
    """Compute ``blocks`` (the row-wise Q projection + attention, in order) inside the row loop of
    ``anchor`` and tile the Q projection's accumulation; returns ``(qacc, loop to tensorize)``."""
    qacc, q_value, *rest = blocks
    row = sch.get_loops(anchor)[0]
    for block in reversed([q_value, *rest]):
        sch.compute_at(block, row)
    return qacc, tile_accumulation(sch, qacc, q_value, d)


def _schedule_attention_q(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """One token row at a time: Q row (tensorized), scores, softmax, P.V for every head."""
    p = _params(func)
    d, fmt = int(p["h"]) * int(p["hd"]), p["fmt"]
    sch = _schedule(func)
    _k_scale, *blocks = sch.get_child_blocks(sch.get_sblock("root"))   # the keys' scales: once
    qacc, loop = _stream_q_attention(sch, blocks[:-1], blocks[-1], d)
    tensorize_accumulation(sch, qacc, loop, d, d, fmt)
    if _pie():
        _tensorize_attention_rows(sch, int(p["n"]), int(p["hd"]))
    return sch.mod["main"]


def _schedule_attention_block(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """One token row at a time: Q row, attention for every head, the row's int8 quantization,
    the projection and the in-place residual update (three tensorized accumulations in all)."""
    p = _params(func)
    d, fmt = int(p["h"]) * int(p["hd"]), p["fmt"]
    sch = _schedule(func)
    if _pie():
        _schedule_attention_block_stationary(sch, int(p["n"]), int(p["h"]), int(p["hd"]), fmt)
        return sch.mod["main"]
    _k_scale, *attention, acc, residual = sch.get_child_blocks(sch.get_sblock("root"))
    loop = tile_accumulation(sch, acc, residual, d)
    qacc, qloop = _stream_q_attention(sch, attention, residual, d)
    tensorize_accumulation(sch, acc, loop, d, d, fmt)
    tensorize_accumulation(sch, qacc, qloop, d, d, fmt)
    return sch.mod["main"]

def _schedule_attention_block_stationary(sch: s_tir.Schedule, n: int, h: int, hd: int,
                                         fmt: str, whole_heads: bool = False,
                                         grouped_v: bool = False) -> None:
    """PIE order of ``int8_attention_block``: Q for all tokens head by head (weight-stationary
    tiles, one [n, hd] float head at a time), then attention and the output row's int8 codes row
    by row, then the output projection over all tokens (weight-stationary, residual in place).
    ``whole_heads``: a head's Q accumulators all come first (``_accumulate_head_at``), then its
    values, instead of tile by tile; ``grouped_v``: see ``_tensorize_attention_rows``."""
    d = h * hd
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    # per-call blocks (the keys' scales; the integer form's channel tables) stay at the root
    names = [sch.get(b).name_hint for b in blocks]
    first = next(i for i, name in enumerate(names) if name.startswith("qacc"))
    out = next(i for i, name in enumerate(names) if name.startswith("attn_out"))
    qacc, q_value, q_absmax, q_scale, q_codes, *rows = blocks[first:out]
    attn_out, acc, residual = blocks[out], blocks[-2], blocks[-1]
    _tile_all_tokens(sch, acc, residual, n, d, d, fmt)
    row = sch.get_loops(attn_out)[0]
    for block in reversed(rows):
        sch.compute_at(block, row)
    # the output row's absmax and codes: read again by the projection outside the row loop, so
    # only a consumer-side move keeps them in the row (an "o_unit" block reads per-call values:
    # it stays at the root, after the rows)
    for block, name in zip(blocks[out + 1:-2], names[out + 1:-2]):
        if not name.startswith("o_unit"):
            sch.reverse_compute_at(block, row)
    i, j = sch.get_loops(q_value)
    g, _ = sch.split(j, [h, hd])
    sch.reorder(g, i)
    for block in (q_absmax, q_scale, q_codes):   # the scales are read again by the rows
        sch.reverse_compute_at(block, g)
    if whole_heads:
        _accumulate_head_at(sch, qacc, g, n, d, hd, fmt)
    else:
        _tile_all_tokens(sch, qacc, q_value, n, d, hd, fmt)
    _tensorize_attention_rows(sch, n, hd, grouped_v=grouped_v)


def _schedule_patch_embed(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """One patch at a time: its absmax, scale and codes, then its token row (tensorized)."""
    p = _params(func)
    f = int(p["c"]) * int(p["p"]) ** 2
    d, fmt = int(p["d"]), p["fmt"]
    sch = _schedule(func)
    # after the prefix rows: the patches' absmax, scale, codes, their projection, the tokens
    absmax, scale, quant, acc, token = sch.get_child_blocks(sch.get_sblock("root"))[-5:]
    if _pie():   # every patch's codes first ([patches, f] int8), then weight-stationary tiles
        sch.decompose_reduction(absmax, sch.get_loops(absmax)[1])
        _tile_all_tokens(sch, acc, token, int(p["gh"]) * int(p["gw"]), f, d, fmt)
        return sch.mod["main"]
    loop = tile_accumulation(sch, acc, token, d)
    row = sch.get_loops(token)[0]
    for block in (quant, scale, absmax):
        sch.compute_at(block, row)
    sch.decompose_reduction(absmax, sch.get_loops(absmax)[-1])   # gcc: no conditional init
    tensorize_accumulation(sch, acc, loop, f, d, fmt)
    return sch.mod["main"]


def _schedule_matmul_channels(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Both projection passes row by row (tensorized tiles); nothing of size [t, n] remains."""
    p = _params(func)
    k, n, fmt = int(p["k"]), int(p["n"]), p["fmt"]
    sch = _schedule(func)
    acc1, absmax, acc2, quant = sch.get_child_blocks(sch.get_sblock("root"))
    if _pie():   # channel blocks outermost: both passes weight-stationary over all tokens
        _tile_all_tokens(sch, acc1, absmax, int(p["t"]), k, n, fmt)
        _tile_all_tokens(sch, acc2, quant, int(p["t"]), k, n, fmt)
        return sch.mod["main"]
    return _tile_and_tensorize(sch, fmt, (acc1, absmax, k, n), (acc2, quant, k, n))


def _schedule_attention_qkv(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = _schedule(func)
    stream_attention_rows(sch)
    if _pie():
        p = _params(func)
        _tensorize_attention_rows(sch, int(p["n"]), int(p["hd"]), rank=3)
    return sch.mod["main"]


SCHEDULES["int8_attention_qkv"] = _schedule_attention_qkv
SCHEDULES["ternary_matmul_heads"] = _schedule_matmul_heads
SCHEDULES["int8_attention_q"] = _schedule_attention_q
SCHEDULES["int8_attention_block"] = _schedule_attention_block
SCHEDULES["ternary_matmul_channels"] = _schedule_matmul_channels
SCHEDULES["patch_embed"] = _schedule_patch_embed
SCHEDULES["quantize_channels"] = lambda f: f     # two passes over V: the plain loops are those
