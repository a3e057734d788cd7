"""ESP32-S3 schedules of the integer kernel forms (``schedules.integer.kernels``), PIE order.

The integer forms add per-call blocks (the channel table ``chan``, the keys' and values' scale
mantissas) in front of the float forms' blocks and split a few per-row steps in two (multiplier,
then codes); otherwise the loop orders are the float PIE schedules': channel blocks outermost and
all tokens in one ``fter_tmm_tile`` call, attention row by row with the QK and P.V rows
tensorized. Per-call blocks stay at the root (they run once, over channels).

The epilogues call C kernels that follow the contract op for op instead of the C TVM would emit
for them (``epilogue_intrin``): the LayerNorm (``fter_ln_affine_i8`` once, ``fter_ln_row_i8`` per
token), the patch quantizer (``fter_patch_codes`` per patch), the projections' value, code and
residual tiles, the MLP's value-row-max and GELU-and-codes tiles, each attention row's softmax
and output codes.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.script import tirx as T

from . import schedule as esp32s3
from .epilogue_intrin import (attention_out_call, channel_codes_call, patch_codes_call,
                              q_codes_call, residual_call, row_codes_call, softmax_row_call,
                              tile_write_calls)
from .schedule import (_accumulate_head_at, _accumulate_tile_at, _block_named, _n_block, _params,
                       _schedule_attention_block_stationary, _tile_all_tokens, channel_block)
from ..compute.kernel_base import WEIGHT_READS_ATTR
from ..compute.mlp import mlp_func
from ..formats import get_format
from ..integer import intmath as im
from ..integer import kernels as ki
from ..integer.forms import integer_form


def _blocks(sch: s_tir.Schedule):
    return sch.get_child_blocks(sch.get_sblock("root"))


def _layernorm_rows(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """The integer LayerNorm as C kernels (runtime/kernels/layernorm_int.c): gamma and beta
    folded with their weights once per call (``fter_ln_affine_i8``), then one call of the row
    kernel ``fter_ln_row_i8`` per token (the contract's five passes as tight loops). Same
    signature and attributes; each block declares what it reads and writes, so the two-core split
    sees disjoint rows."""
    p = _params(func)
    t, d, eps = int(p["t"]), int(p["d"]), float(p["eps"])
    sq_shift = im.ln_sq_shift(d)

    @T.prim_func(s_tir=True)
    def rows(x: T.Buffer((t, d), "float32"), g: T.Buffer((d,), "int8"), b: T.Buffer((d,), "int8"),
             ab: T.Buffer((2,), "float32"), q: T.Buffer((t, d), "int8"),
             s: T.Buffer((t,), "float32")):
        gb = T.sblock_alloc_buffer((2 * d,), "int32")
        with T.sblock("ln_affine"):
            T.reads(g[0:d], b[0:d], ab[0:2])
            T.writes(gb[0:2 * d])
            T.evaluate(T.call_extern("void", "fter_ln_affine_i8", gb.access_ptr("w"),
                                     T.address_of(g[0]), T.address_of(b[0]),
                                     T.address_of(ab[0]), d))
        for i in range(t):
            with T.sblock("ln_row"):
                vi = T.axis.remap("S", [i])
                T.reads(x[vi, 0:d], gb[0:2 * d], ab[0:2])
                T.writes(q[vi, 0:d], s[vi])
                scratch = T.sblock_alloc_buffer((d,), "int32")
                T.evaluate(T.call_extern("void", "fter_ln_row_i8", T.address_of(x[vi, 0]),
                                         gb.access_ptr("r"), T.address_of(ab[0]),
                                         T.address_of(q[vi, 0]), T.address_of(s[vi]),
                                         scratch.access_ptr("rw"), d, sq_shift,
                                         T.float32(eps)))

    return rows.with_attrs(func.attrs)


# Per worker, the integer MLP keeps its token block's fc1 values (int32; then the hidden codes in
# their place and fc2's accumulators) and, for b3 weights, both weights' gathered bytes (the PIE
# tile's stage): DeiT-Tiny's stages take 58 KiB, which leaves 17 tokens a block, and two such
# workspaces, the kernel tables and the kernels' scratch stay inside the board's internal-SRAM
# budget (targets.BoardLimits).
MLP_WORKSPACE_BYTES = 112 * 1024


def tmm_stage_bytes(k: int, nb: int, fmt: str) -> int:
    """Bytes of the staged tile's gathered stage (``FTER_TMM_STAGE_BYTES`` in fter_kernels.h):
    every full group of 16 channels' packed rows."""
    return nb // 16 * 16 * get_format(fmt).row_bytes(k)


# channels per chunk of the C value loops (FTER_VALUE_CHUNK in fter_kernels.h)
VALUE_CHUNK = 128


def value_table_words(nb: int) -> int:
    """int32 words of ``fter_value_table``'s channel factors for ``nb`` channels
    (``FTER_VALUE_TABLE_WORDS``): per chunk of ``VALUE_CHUNK``, five words a channel and two for
    the chunk's exponent range."""
    return -(-nb // VALUE_CHUNK) * (VALUE_CHUNK * 5 + 2)


def mlp_codes_at(size: int, hidden: int) -> int:
    """Where fc2's accumulators start in the MLP block's scratch (int32 words): after the hidden
    codes (``size * hidden`` bytes at its start, in place of the values), 16-byte aligned."""
    return (size * hidden + 15) // 16 * 4


def mlp_block_words(size: int, d: int, hidden: int) -> int:
    """int32 words of the MLP block's scratch: fc1's values [size, hidden], then the hidden
    codes in their place and fc2's accumulators [size, d] after the codes."""
    return max(size * hidden, mlp_codes_at(size, hidden) + size * d)


def mlp_token_blocks(t: int, d: int, hidden: int, fmt: str) -> tuple[int, int, bool]:
    """(blocks, tokens per block, staged) of the integer MLP: where the weights' stages take
    at most two thirds of ``MLP_WORKSPACE_BYTES``, both stages are gathered once per half of the
    blocks (``staged``); the rest of the budget sets the tokens of a block, as few blocks as it
    allows (each decodes the weights again), where there are two tokens at least two and an
    even count if the sizes allow it (the two workers take half each), the tokens spread
    evenly."""
    stages = tmm_stage_bytes(d, hidden, fmt) + tmm_stage_bytes(hidden, d, fmt)
    staged = 0 < stages <= MLP_WORKSPACE_BYTES * 2 // 3
    room = MLP_WORKSPACE_BYTES - (stages if staged else 0)
    cap = max(1, room // (4 * mlp_block_words(1, d, hidden)))
    blocks = -(-t // cap)
    if t > 1:
        blocks = max(blocks, 2)
        blocks += blocks % 2
    size = -(-t // blocks)
    return -(-t // size), size, staged


def _mlp_token_blocks(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """The integer MLP token block by token block, fc1 once: per block of ``size`` tokens fc1's
    accumulators over all hidden channels (one ``fter_tmm_tile_*_set`` call), their values in
    place and each token's largest value (``fter_value_max_tile``, from the channel factors
    ``fter_value_table`` makes once per call), the tokens' GELU bounds,
    multipliers and scales (TensorIR, per token: ``intmath.gelu_row_bound``), the hidden codes
    from the values, written in their place (``fter_gelu_codes_tile``), fc2 from the codes into
    the scratch after them (``mlp_codes_at``) and the residual epilogue
    (``fter_residual_tile``). The integer form's second fc1 pass (there to avoid a [t, hidden]
    store) is gone: the block's values are that store, in the worker's workspace.

    The blocks run in two halves (the two-core split gives one to each worker); where the stages
    fit, each half first gathers both weights' bytes into its stage (``fter_tmm_stage_{fmt}``),
    which its blocks' tiles decode from (``fter_tmm_tile_{fmt}_staged_set``) instead of gathering them
    again. Same values, signature and attributes as the integer form; the per-call tables stay
    at the root."""
    p = _params(func)
    t, d, hidden, fmt = int(p["t"]), int(p["d"]), int(p["hidden"]), p["fmt"]
    nblk, size, staged = mlp_token_blocks(t, d, hidden, fmt)
    halves = 2 if nblk > 1 else 1
    per = -(-nblk // halves)
    kb1, kb2 = get_format(fmt).row_bytes(d), get_format(fmt).row_bytes(hidden)
    sb1 = max(tmm_stage_bytes(d, hidden, fmt), 16)
    sb2 = max(tmm_stage_bytes(hidden, d, fmt), 16)
    at, words = mlp_codes_at(size, hidden), mlp_block_words(size, d, hidden)
    abits = im.acc_bits(d)
    vtw = value_table_words(hidden)
    tile = f"fter_tmm_tile_{fmt}_set"

    def tokens(vb):
        """How many tokens block ``vb`` has (the last one may have fewer)."""
        return T.min(size, t - vb * size)

    def rows(vb):
        """Block ``vb``'s token rows of a [t, ...] buffer."""
        return slice(vb * size, T.min(vb * size + size, t))

    def tile_call(out, x, w, stage, k, nb, kb, n, x_stride, out_stride):
        """A block's fc1 or fc2 tile: from the half's stage where there is one."""
        if staged:
            return T.call_extern("void", f"fter_tmm_tile_{fmt}_staged_set", out, x, w, stage, k,
                                 nb, kb, n, x_stride, out_stride)
        return T.call_extern("void", tile, out, x, w, k, nb, kb, n, x_stride, out_stride)

    @T.macro
    def body(q, s, w1, a1, b1, w2, a2, b2, res, y):
        cm, ce, cb, rm, re = ki._scale_tables(hidden, t)
        tab = T.sblock_alloc_buffer((im.GELU_TABLE_SIZE,), "int32")
        # the half's stages and the block's scratch: fc1's accumulators [size, hidden], then its
        # values, then the hidden codes (int8 [size, hidden]) in their place and fc2's
        # accumulators [size, d] from word `at` on
        st1 = T.sblock_alloc_buffer((sb1,), "uint8")
        st2 = T.sblock_alloc_buffer((sb2,), "uint8")
        acc = T.sblock_alloc_buffer((words,), "int32")
        vmax = T.sblock_alloc_buffer((size,), "int32")
        bound = T.sblock_alloc_buffer((size,), "int32")
        mult = T.sblock_alloc_buffer((size,), "int32")
        s2 = T.sblock_alloc_buffer((size,), "float32")
        vtab = T.sblock_alloc_buffer((vtw,), "int32")
        ki._scale_params(hidden, t, a1, b1, s, cm, ce, cb, rm, re)
        ki._gelu_table(tab)
        # the value loops' channel factors, once per call (every block reads them)
        with T.sblock("value_table"):
            T.reads(cm[0:hidden], ce[0:hidden], cb[0:hidden])
            T.writes(vtab[0:vtw])
            f_t = T.match_buffer(vtab[0:vtw], (vtw,), "int32")
            T.evaluate(T.call_extern("void", "fter_value_table", T.address_of(f_t[0]),
                                     T.address_of(cm[0]), T.address_of(ce[0]),
                                     T.address_of(cb[0]), hidden, abits))
        # (the calls reach the scratch through match_buffers, whose regions tell the buffer
        # compaction what the calls touch: a pointer to one element would shrink it)
        for h in range(halves):
            if staged:
                with T.sblock("stage"):
                    vh = T.axis.spatial(halves, h)
                    T.reads(w1[0:hidden, 0:kb1], w2[0:d, 0:kb2])
                    T.writes(st1[0:sb1], st2[0:sb2])
                    g1 = T.match_buffer(st1[0:sb1], (sb1,), "uint8")
                    g2 = T.match_buffer(st2[0:sb2], (sb2,), "uint8")
                    T.evaluate(T.call_extern("void", f"fter_tmm_stage_{fmt}",
                                             T.address_of(g1[0]), T.address_of(w1[0, 0]), d,
                                             hidden, kb1))
                    T.evaluate(T.call_extern("void", f"fter_tmm_stage_{fmt}",
                                             T.address_of(g2[0]), T.address_of(w2[0, 0]), hidden,
                                             d, kb2))
            for ib in range(per):
                with T.sblock("fc1"):
                    vb = T.axis.spatial(nblk, h * per + ib)
                    T.where(h * per + ib < nblk)
                    T.reads(q[rows(vb), 0:d], w1[0:hidden, 0:kb1],
                            st1[0:sb1])
                    T.writes(acc[0:words])
                    a_w = T.match_buffer(acc[0:words], (words,), "int32")
                    g_w = T.match_buffer(st1[0:sb1], (sb1,), "uint8")
                    T.evaluate(tile_call(T.address_of(a_w[0]), T.address_of(q[vb * size, 0]),
                                         T.address_of(w1[0, 0]), T.address_of(g_w[0]), d, hidden,
                                         kb1, tokens(vb), d, hidden))
                with T.sblock("fc1_values"):
                    vb = T.axis.spatial(nblk, h * per + ib)
                    T.where(h * per + ib < nblk)
                    T.reads(acc[0:words], vtab[0:vtw], rm[rows(vb)], re[rows(vb)])
                    T.writes(acc[0:words], vmax[0:size])
                    a_v = T.match_buffer(acc[0:words], (words,), "int32")
                    m_v = T.match_buffer(vmax[0:size], (size,), "int32")
                    f_v = T.match_buffer(vtab[0:vtw], (vtw,), "int32")
                    T.evaluate(T.call_extern(
                        "void", "fter_value_max_tile", T.address_of(m_v[0]),
                        T.address_of(a_v[0]), T.address_of(f_v[0]),
                        T.address_of(rm[vb * size]), T.address_of(re[vb * size]), tokens(vb),
                        hidden, hidden, abits))
                for i in range(size):
                    with T.sblock("hidden_bound"):
                        vb = T.axis.spatial(nblk, h * per + ib)
                        vi = T.axis.spatial(size, i)
                        T.where(h * per + ib < nblk and (h * per + ib) * size + i < t)
                        bound[vi] = im.gelu_row_bound(im.TIR, vmax[vi], lambda k: tab[k])
                for i in range(size):
                    with T.sblock("hidden_scale"):
                        vb = T.axis.spatial(nblk, h * per + ib)
                        vi = T.axis.spatial(size, i)
                        T.where(h * per + ib < nblk and (h * per + ib) * size + i < t)
                        mult[vi] = im.quant_multiplier(im.TIR, bound[vi])
                        s2[vi] = im.row_scale(im.TIR, bound[vi], -im.VALUE_FRAC)
                with T.sblock("hidden_codes"):
                    vb = T.axis.spatial(nblk, h * per + ib)
                    T.where(h * per + ib < nblk)
                    T.reads(acc[0:words], tab[0:im.GELU_TABLE_SIZE], mult[0:size])
                    T.writes(acc[0:words])
                    a_c = T.match_buffer(acc[0:words], (words,), "int32")
                    m_c = T.match_buffer(mult[0:size], (size,), "int32")
                    q_c = T.decl_buffer((4 * words,), "int8", data=a_c.data)
                    T.evaluate(T.call_extern(
                        "void", "fter_gelu_codes_tile", T.address_of(q_c[0]),
                        T.address_of(a_c[0]), T.address_of(tab[0]), T.address_of(m_c[0]),
                        tokens(vb), hidden, hidden, hidden))
                with T.sblock("fc2"):
                    vb = T.axis.spatial(nblk, h * per + ib)
                    T.where(h * per + ib < nblk)
                    T.reads(acc[0:words], w2[0:d, 0:kb2], st2[0:sb2])
                    T.writes(acc[0:words])
                    a_2 = T.match_buffer(acc[0:words], (words,), "int32")
                    g_2 = T.match_buffer(st2[0:sb2], (sb2,), "uint8")
                    q_2 = T.decl_buffer((4 * words,), "int8", data=a_2.data)
                    T.evaluate(tile_call(T.address_of(a_2[at]), T.address_of(q_2[0]),
                                         T.address_of(w2[0, 0]), T.address_of(g_2[0]), hidden, d,
                                         kb2, tokens(vb), hidden, d))
                with T.sblock("residual"):
                    vb = T.axis.spatial(nblk, h * per + ib)
                    T.where(h * per + ib < nblk)
                    T.reads(acc[0:words], a2[0:d], s2[0:size], b2[0:d],
                            res[rows(vb), 0:d])
                    T.writes(y[rows(vb), 0:d])
                    a_r = T.match_buffer(acc[0:words], (words,), "int32")
                    s_r = T.match_buffer(s2[0:size], (size,), "float32")
                    T.evaluate(T.call_extern(
                        "void", "fter_residual_tile", T.address_of(y[vb * size, 0]),
                        T.address_of(res[vb * size, 0]), T.address_of(a_r[at]),
                        T.address_of(a2[0]), T.address_of(s_r[0]), T.address_of(b2[0]),
                        tokens(vb), d, d, d, d))

    blocked = mlp_func(t, d, hidden, fmt, bool(int(p["inplace"])), body)
    # the weights are read once per half (its stages) or once per block
    return blocked.with_attrs(func.attrs).with_attr(WEIGHT_READS_ATTR, halves if staged else nblk)


def _schedule_matmul_heads(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Head by head over all tokens: the head's [t, hd] accumulators in weight-stationary tiles,
    then its epilogue (values in place, each token's absmax, multiplier, codes and scale) as one
    C call (``fter_row_codes_tile``)."""
    p = _params(func)
    t, k, hd, fmt = int(p["t"]), int(p["k"]), int(p["hd"]), p["fmt"]
    sch = s_tir.Schedule(func)
    _chan, _rows, acc, value, absmax, quant = _blocks(sch)
    i, g = sch.get_loops(quant)
    sch.reorder(g, i)
    sch.compute_at(absmax, g)
    sch.compute_at(value, g)
    _accumulate_head_at(sch, acc, g, t, k, hd, fmt)
    row_codes_call(sch, g, [value, absmax, quant], t, hd, im.acc_bits(k))
    tile_write_calls(sch)
    return sch.mod["main"]


def _schedule_matmul_channels(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """One pass: per block of channels, all tokens' accumulators (one ``fter_tmm_tile`` call),
    then the block's epilogue (values in place, each channel's absmax over the tokens, multiplier,
    codes and scale: a channel's codes need only its own column) as one C call
    (``fter_channel_codes_tile``)."""
    p = _params(func)
    t, k, n, fmt = int(p["t"]), int(p["k"]), int(p["n"]), p["fmt"]
    sch = s_tir.Schedule(func)
    _chan, _rows, acc1, absmax, mult, quant = _blocks(sch)
    nb = _n_block(n)
    i, j = sch.get_loops(quant)
    jo, _ = sch.split(j, [None, nb])
    sch.reorder(jo, i)
    for block in (mult, absmax):
        sch.compute_at(block, jo, preserve_unit_loops=True)
    _accumulate_tile_at(sch, acc1, jo, t, k, nb, fmt)
    channel_codes_call(sch, jo, [absmax, mult, quant], t, nb, im.acc_bits(k))
    tile_write_calls(sch)
    return sch.mod["main"]


def _schedule_attention_block(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """The float form's PIE order; then each row's softmax (logits to uint8 probabilities, six
    blocks under the row loop) is one C call (``fter_softmax_row_u8``), except with one head."""
    p = _params(func)
    n, h, hd = int(p["n"]), int(p["h"]), int(p["hd"])
    sch = s_tir.Schedule(func)
    _schedule_attention_block_stationary(sch, n, h, hd, p["fmt"], whole_heads=True,
                                         grouped_v=hd % 16 == 0)
    q_codes_call(sch, sch.get_loops(_block_named(sch, "q_value"))[0],
                 [_block_named(sch, name) for name in ("q_value", "q_absmax", "q_codes")],
                 n, hd, im.acc_bits(h * hd))
    if h > 1:   # one head: TVM's blockize fails on the chain's unit head loops (the TIR stays)
        chain = [_block_named(sch, name)
                 for name in ("logit", "lmax", "expv", "lsum", "precip", "prob")]
        softmax_row_call(sch, chain, n, h, im.score_bits(hd))
    out = _block_named(sch, "attn_out")
    attention_out_call(sch, sch.get_loops(out)[0],
                       [out, *(_block_named(sch, name) for name in ("o_absmax", "o_mult",
                                                                    "o_quant"))], h, hd)
    residual_call(sch, _block_named(sch, "residual"), n, _n_block(h * hd))
    tile_write_calls(sch)
    return sch.mod["main"]


def _schedule_patch_embed(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """The float form's PIE order (every patch's codes, then weight-stationary tiles over all
    patches); each patch's absmax, scale, multiplier and codes are one ``fter_patch_codes``
    call, and the tiles write their accumulators."""
    p = _params(func)
    c, gh, gw, ps = (int(p[key]) for key in ("c", "gh", "gw", "p"))
    d, fmt = int(p["d"]), p["fmt"]
    sch = s_tir.Schedule(func)
    absmax, scale, quant, acc, token = _blocks(sch)[-5:]
    row = sch.merge(*(sch.get_loops(block)[0] for block in (absmax, scale, quant)))
    patch_codes_call(sch, row, [absmax, scale, quant], c, ps, gw, gh * ps, gw * ps)
    _tile_all_tokens(sch, acc, token, gh * gw, c * ps * ps, d, fmt)
    tile_write_calls(sch)
    return sch.mod["main"]


# The integer kernels' tiles are as wide as their C epilogues' channel chunks (TILE_CHANNELS in
# runtime/kernels/epilogue_int.c): each row's set-up in those loops is paid once per 32 values.
INTEGER_N_BLOCK = 32


def _wide_tiles(schedule):
    def run(func: tirx.PrimFunc) -> tirx.PrimFunc:
        with channel_block(INTEGER_N_BLOCK):
            return schedule(func)

    run.__name__ = run.__qualname__ = schedule.__name__
    run.__doc__ = schedule.__doc__
    return run


SCHEDULES = {
    "ternary_layernorm": _layernorm_rows,
    "ternary_mlp": _mlp_token_blocks,
    **{kind: _wide_tiles(schedule) for kind, schedule in (
                ("ternary_matmul_heads", _schedule_matmul_heads),
        ("ternary_matmul_channels", _schedule_matmul_channels),
        ("patch_embed", _schedule_patch_embed),
        ("int8_attention_block", _schedule_attention_block))},
}

esp32s3.INTEGER_SCHEDULES.update(SCHEDULES)


def to_integer(mod: tvm.IRModule) -> tuple[tvm.IRModule, list[str], list[str]]:
    """``mod`` with every kernel that has an integer form swapped for it; also the names of the
    kernels now integer and of those left float."""
    out = tvm.IRModule(dict(mod.functions_items()))
    integer, left = [], []
    for gv, func in mod.functions_items():
        if isinstance(func, tirx.PrimFunc) and func.attrs is not None and "fter.kind" in func.attrs:
            new = integer_form(func)
            (integer if new is not func else left).append(gv.name_hint)
            out[gv] = new
    return out, sorted(integer), sorted(left)
