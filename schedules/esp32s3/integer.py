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
from .epilogue_intrin import (attention_out_call, channel_codes_call, gelu_codes_call,
                              patch_codes_call, q_codes_call, residual_call, row_codes_call,
                              softmax_row_call, tile_write_calls, value_rowmax_call)
from .schedule import (_accumulate_head_at, _accumulate_tile_at, _block_named, _n_block, _params,
                       _schedule_attention_block_stationary, _tile_all_tokens, channel_block)
from ..integer import intmath as im
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


def _schedule_mlp(func: tirx.PrimFunc) -> tirx.PrimFunc:
    p = _params(func)
    t, d, hidden, fmt = int(p["t"]), int(p["d"]), int(p["hidden"]), p["fmt"]
    sch = s_tir.Schedule(func)
    _chan, _rows, _table, acc1, value, absmax, _scale, acc1b, value_b, quant, acc2, out = \
        _blocks(sch)
    nb, abits = _n_block(hidden), im.acc_bits(d)
    # each fc1 pass in weight-stationary tiles, its values inlined into one C call per tile
    # (epilogue_intrin). First pass: the row max over the tiles is rfactored over `w` groups of
    # tiles, each folding its tiles into its own row of `amax.rf` [w, t], so the groups share no
    # reduction and the two-core split divides them like any other loop (two groups for an even
    # tile count; one per tile otherwise, as balanced as the tiles themselves); a small stage
    # folds the w rows into `amax`.
    sch.compute_inline(value)
    i, j = sch.get_loops(absmax)[-2:]
    tiles = hidden // nb
    w = 2 if tiles % 2 == 0 else tiles
    wo, jo, _ = sch.split(j, [w, tiles // w, nb])
    sch.reorder(wo, jo, i)
    part = sch.rfactor(wo, factor_axis=0)
    wo, jo = sch.get_loops(part)[:2]
    sch.decompose_reduction(part, jo)
    _accumulate_tile_at(sch, acc1, jo, t, d, nb, fmt)
    value_rowmax_call(sch, sch.get_loops(part)[-2], t, nb, abits)
    # second pass: the values inlined into GELU and the codes
    sch.compute_inline(value_b)
    _tile_all_tokens(sch, acc1b, quant, t, d, hidden, fmt)
    gelu_codes_call(sch, sch.get_loops(quant)[-2], t, nb, abits)
    _tile_all_tokens(sch, acc2, out, t, hidden, d, fmt)
    residual_call(sch, out, t, _n_block(d))
    tile_write_calls(sch)
    return sch.mod["main"]


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
    _schedule_attention_block_stationary(sch, n, h, hd, p["fmt"], whole_heads=True)
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
    **{kind: _wide_tiles(schedule) for kind, schedule in (
        ("ternary_mlp", _schedule_mlp),
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
