"""C epilogues of the integer kernels on the ESP32-S3 (runtime/kernels/epilogue_int.c), called
from the scheduled TensorIR in place of loop nests TVM would emit as generic C.

* :func:`channel_codes_call` -- the integer V projection's epilogue per block of channels: the
  values (in place of the accumulators), each channel's absmax over the tokens, its multiplier,
  the int8 codes and the channel's float scale, as one ``fter_channel_codes_tile`` call;
* :func:`row_codes_call` -- the same for one head of the K projection, quantized per token, as
  one ``fter_row_codes_tile`` call; :func:`q_codes_call` for one head of the attention block's
  Q (``fter_row_absmax_codes_tile``: the integer absmax, from which the block derives its
  scales);
* :func:`attention_out_call` -- one attention output row (the P.V sums weighted per value
  channel, their absmax, multiplier and int8 codes) as one ``fter_attn_out_codes_row`` call;
* :func:`residual_call` -- a projection's float residual epilogue over a tile,
  ``y = float(acc) * (alpha * s) + bias + res``, as one ``fter_residual_tile`` call (on the LX7
  simulator build its float operations run on the FPU without helper calls);
* :func:`softmax_row_call` -- one attention row's integer softmax over all heads (logits, row
  max, ``exp_neg``, row sum, reciprocal, uint8 probabilities) as one ``fter_softmax_row_u8``.

These loop nests read tables at data-dependent indices (GELU's Phi table) or span several blocks
(the softmax), which ``tensorize`` cannot match, so the blockized loop nest is replaced by the
call directly: each of its regions is bound to a buffer with symbolic strides, as tensorize's
implementations do, and the new block keeps the regions, so the two-core split and the buffer
compaction see what the call reads and writes. The C follows ``schedules.integer.intmath`` op for
op; tests/test_integer_c.py checks every kernel against the NumPy reference, and the integer-mode
model tests check the compiled kernels bit for bit against ``integer_logits``.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.ir import Call, Range, StringImm


def _bind(region, name: str):
    """A buffer with symbolic row strides and offset bound to ``region`` (a match_buffer)."""
    name = name.replace(".", "_")   # rfactor names its buffer "<name>.rf"
    shape = [r.extent for r in region.region]
    strides = None
    if len(shape) > 1:
        strides = [tirx.Var(f"{name}_s{i}", "int32") for i in range(len(shape) - 1)] + [1]
    buf = tirx.decl_buffer(shape, region.source.dtype, name, strides=strides,
                           elem_offset=tirx.Var(f"{name}_off", "int32"), offset_factor=1)
    return s_tir.MatchBufferRegion(buf, region), buf


def _first(buf):
    return tirx.address_of(tirx.BufferLoad(buf, [0] * len(buf.shape)))


def _call(iter_vars, regions, reads, writes, name: str, extern: str, args, annotations=None):
    """A block of ``iter_vars`` whose body is one call of ``extern``: the regions (by buffer
    name) of ``reads`` / ``writes`` become its reads and writes, each bound to a buffer with
    symbolic strides; ``args(bufs)`` gives the call's arguments from those buffers (by name)."""
    missing = [n for n in (*reads, *writes) if n not in regions]
    if missing:
        raise ValueError(f"{name}: no region of {missing} (it has {sorted(regions)})")
    bound = {n: _bind(regions[n], n) for n in (*reads, *writes)}
    bufs = {n: buf for n, (_, buf) in bound.items()}
    call = tirx.Evaluate(tirx.call_extern("void", extern, *args(bufs)))
    return s_tir.SBlock(iter_vars, [regions[n] for n in reads], [regions[n] for n in writes],
                        name, call, None, [], [m for m, _ in bound.values()], annotations)


def _call_block(sch: s_tir.Schedule, rv, reads, writes, extern: str, args, whole=()) -> None:
    """Replace the block ``rv`` by one call of ``extern`` (``_call``) over the block's regions
    of the named buffers ``reads`` / ``writes``; ``whole``: names of root scratch buffers the
    block does not touch, read whole by the call as well."""
    block = sch.get(rv)
    regions = {str(r.source.name): r for r in [*block.reads, *block.writes]}
    root = {str(b.name): b for b in sch.get(sch.get_sblock("root")).alloc_buffers}
    for name in whole:
        buf = root[name]
        regions[name] = tirx.BufferRegion(buf, [Range.from_min_extent(0, e) for e in buf.shape])
    reads = (*reads, *whole)
    new = _call(block.iter_vars, regions, reads, writes, block.name_hint, extern, args,
                block.annotations)
    sch.state.replace(sch.get_sref(rv), new, {block: new})
    _drop_unused_scratch(sch)


def _call_siblings(sch: s_tir.Schedule, loop, blocks, width: int, layout: dict, reads, writes,
                   extern: str, args) -> None:
    """Replace the loop nests of ``blocks`` (siblings under ``loop``) by one block, bound to
    ``loop``'s variable ``v``, that calls ``extern`` (``_call``). ``layout`` gives each named
    buffer's region per dimension: ``"all"`` (the whole extent), ``"block"`` (``[v*width,
    (v+1)*width)``) or ``"one"`` (``[v, v+1)``). (``blockize`` of several blocks needs them to
    share their iteration space, which these epilogues' reductions over tokens or channels do
    not.)"""
    loop_sref = sch.get_sref(loop)
    outer = loop_sref.stmt
    found, indices = {}, set()
    for rv in blocks:
        block = sch.get(rv)
        for r in (*block.reads, *block.writes):
            found.setdefault(str(r.source.name), r.source)
        sref = sch.get_sref(rv)
        while not sref.parent.stmt.same_as(outer):
            sref = sref.parent
        indices.add(sref.seq_index)
    v = tirx.Var("v", "int32")
    spans = {"all": lambda extent: Range.from_min_extent(0, extent),
             "block": lambda _: Range.from_min_extent(v * width, width),
             "one": lambda _: Range.from_min_extent(v, 1)}
    regions = {name: tirx.BufferRegion(found[name], [spans[kind](extent) for kind, extent in
                                                     zip(kinds, found[name].shape)])
               for name, kinds in layout.items()}
    iv = tirx.IterVar(Range.from_min_extent(outer.min, outer.extent), v, 0)
    names = "_".join(sch.get(rv).name_hint for rv in blocks)
    realize = s_tir.SBlockRealize([outer.loop_var], True,
                                  _call([iv], regions, reads, writes, names, extern, args))
    seq = list(outer.body.seq)
    body = [realize if i == min(indices) else stmt for i, stmt in enumerate(seq)
            if i == min(indices) or i not in indices]
    new = tirx.For(outer.loop_var, outer.min, outer.extent, outer.kind,
                   body[0] if len(body) == 1 else tirx.SeqStmt(body), outer.thread_binding,
                   outer.annotations)
    sch.state.replace(loop_sref, new, {})
    _drop_unused_scratch(sch)


def _drop_unused_scratch(sch: s_tir.Schedule) -> None:
    """Remove the root's scratch buffers no block touches any more (a replaced loop nest's
    intermediates): left in place they would keep their full size, and the two-core split would
    hand them to the arena as shared scratch."""
    used = set()
    stack = list(sch.get_child_blocks(sch.get_sblock("root")))
    while stack:
        rv = stack.pop()
        block = sch.get(rv)
        used.update(r.source for r in (*block.reads, *block.writes))
        stack.extend(sch.get_child_blocks(rv))
    root_rv = sch.get_sblock("root")
    root = sch.get(root_rv)
    keep = [b for b in root.alloc_buffers if b in used]
    if len(keep) == len(root.alloc_buffers):
        return
    new = s_tir.SBlock(root.iter_vars, root.reads, root.writes, root.name_hint, root.body,
                       root.init, keep, root.match_buffers, root.annotations)
    sch.state.replace(sch.get_sref(root_rv), new, {root: new})


def _codes_call(sch: s_tir.Schedule, loop, blocks, t: int, width: int, abits: int,
                names: tuple[str, str, str], scale_layout: tuple, extern: str) -> None:
    """A projection block's epilogue (values in place of the accumulators, absmax, multipliers,
    codes, scales) as one ``extern`` call replacing ``blocks`` under ``loop``; ``names``: the
    accumulator, codes and scale buffers; ``scale_layout``: the scales' region (``_call_siblings``);
    a two-dimensional one passes its row stride."""
    acc, out, scale = names
    layout = {acc: ("all", "block"), out: ("all", "block"), scale: scale_layout,
              "cm": ("block",), "ce": ("block",), "cb": ("block",), "rm": ("all",),
              "re": ("all",)}

    def args(b):
        strides = (b[scale].strides[0],) if len(scale_layout) > 1 else ()
        return (_first(b[out]), _first(b[scale]), _first(b[acc]), _first(b["cm"]),
                _first(b["ce"]), _first(b["cb"]), _first(b["rm"]), _first(b["re"]), t, width,
                b[out].strides[0], *strides, b[acc].strides[0], abits)

    _call_siblings(sch, loop, blocks, width, layout, (acc, "cm", "rm", "ce", "re", "cb"),
                   (acc, out, scale), extern, args)


def channel_codes_call(sch: s_tir.Schedule, loop, blocks, t: int, nb: int, abits: int) -> None:
    """Replace a block of ``nb`` channels' epilogue in the integer V projection (the sibling blocks
    ``blocks`` under the channel-block ``loop``: the channels' absmax over the values of
    ``acc1``, their multipliers, the codes ``y`` and scales ``amax``) by one
    ``fter_channel_codes_tile`` call; the values overwrite the accumulators, so ``acc1`` is
    written too."""
    _codes_call(sch, loop, blocks, t, nb, abits, ("acc1", "y", "amax"), ("block",),
                "fter_channel_codes_tile")


def row_codes_call(sch: s_tir.Schedule, loop, blocks, t: int, hd: int, abits: int) -> None:
    """Replace one head's epilogue in the integer K projection (the sibling blocks ``blocks``
    under the head ``loop``: values of ``acc``, each token's absmax, multiplier, codes ``y`` and
    scale ``amax_out``) by one ``fter_row_codes_tile`` call; the values overwrite the
    accumulators."""
    _codes_call(sch, loop, blocks, t, hd, abits, ("acc", "y", "amax_out"), ("all", "one"),
                "fter_row_codes_tile")


def q_codes_call(sch: s_tir.Schedule, loop, blocks, n: int, hd: int, abits: int) -> None:
    """Replace one head's Q epilogue in the integer attention block (the blocks ``blocks`` under
    the head ``loop``: values of ``qacc``, each token's absmax ``qamax`` and codes ``qc``; the
    multiplier-and-scale block between them stays, reading ``qamax``) by one
    ``fter_row_absmax_codes_tile`` call; the values overwrite the accumulators."""
    _codes_call(sch, loop, blocks, n, hd, abits, ("qacc", "qc", "qamax"), ("all", "one"),
                "fter_row_absmax_codes_tile")


def attention_out_call(sch: s_tir.Schedule, row, blocks, h: int, hd: int) -> None:
    """Replace one output row's epilogue in the integer attention block (the blocks ``blocks``
    under the ``row`` loop: the weighted outputs of ``pacc``, their absmax ``oamax``, the
    multiplier and the codes ``oq``) by one ``fter_attn_out_codes_row`` call; the weighted
    outputs overwrite ``pacc``."""
    layout = {"pacc": ("one", "all", "all"), "vm": ("all",), "oq": ("one", "all"),
              "oamax": ("one",)}

    def args(b):
        return (_first(b["oq"]), _first(b["oamax"]), _first(b["pacc"]), _first(b["vm"]), h, hd,
                b["pacc"].strides[1])

    _call_siblings(sch, row, blocks, 1, layout, ("pacc", "vm"), ("pacc", "oq", "oamax"),
                   "fter_attn_out_codes_row", args)


def patch_codes_call(sch: s_tir.Schedule, row, blocks, c: int, p: int, gw: int, h: int,
                     w: int) -> None:
    """Replace one patch's quantizer in the integer patch embedding (the blocks ``blocks`` under
    the patch loop ``row``: absmax bits ``top``, scale ``s`` and multiplier, codes ``q``) by one
    ``fter_patch_codes`` call on the image; the patch's index is the offset of its scale."""
    layout = {"img": ("all", "all", "all", "all"), "q": ("one", "all"), "s": ("one",)}

    def args(b):
        return (_first(b["q"]), _first(b["s"]), _first(b["img"]), b["s"].elem_offset, c, p, gw,
                h, w)

    _call_siblings(sch, row, blocks, 1, layout, ("img",), ("q", "s"), "fter_patch_codes", args)


def residual_call(sch: s_tir.Schedule, block, t: int, nb: int) -> None:
    """Replace the [t, nb] tile of the residual epilogue ``block`` (``y[i, j] = float(acc[i, j])
    * (alpha[j] * s[i]) + bias[j] + res[i, j]``; ``y`` may be ``res``) by one
    ``fter_residual_tile`` call."""
    rv = sch.blockize(sch.get_loops(block)[-2])
    inner = sch.get(block)
    names = [str(r.source.name) for r in inner.reads]
    if len(names) != 5 or inner.reads[0].source.dtype != "int32" or len(inner.writes) != 1:
        raise ValueError(f"{inner.name_hint}: not a residual epilogue (reads {names})")
    acc, alpha, scale, bias, res = names
    out = str(inner.writes[0].source.name)

    def args(b):
        return (_first(b[out]), _first(b[res]), _first(b[acc]), _first(b[alpha]),
                _first(b[scale]), _first(b[bias]), t, nb, b[out].strides[0], b[res].strides[0],
                b[acc].strides[0])

    _call_block(sch, rv, tuple(dict.fromkeys(names)), (out,), "fter_residual_tile", args)


def softmax_row_call(sch: s_tir.Schedule, blocks, n: int, h: int, sbits: int) -> None:
    """Replace one attention row's softmax (the sibling blocks ``blocks``: logits from the int32
    scores ``sacc``, row max, ``exp_neg``, row sum, reciprocal, uint8 probabilities ``p``) by one
    ``fter_softmax_row_u8`` call; ``logit`` is its work row, ``kf``, ``kneg`` and ``kmax`` the
    keys' factors for the LX7 loop (blocks ``k_fact``, ``k_eneg``, ``k_emax``). Each head's
    probability row starts 16 bytes after the last (its stride padded): ``fter_pv_row`` reads
    aligned rows a word at a time."""
    def args(b):
        return (_first(b["p"]), _first(b["logit"]), _first(b["sacc"]), _first(b["qm"]),
                _first(b["qe"]), _first(b["km"]), _first(b["ke"]), _first(b["kf"]),
                _first(b["kneg"]), _first(b["kmax"]), n, h, sbits,
                b["p"].strides[1], b["logit"].strides[1], b["sacc"].strides[1],
                b["km"].strides[0])

    row = sch.blockize(blocks)
    _call_block(sch, row, ("sacc", "qm", "qe", "km", "ke"), ("p", "logit"),
                "fter_softmax_row_u8", args, whole=("kf", "kneg", "kmax"))
    sch.storage_align(row, 0, 1, 16, 0)


# The micro-kernels that add into their output and have a ``_set`` form that writes it.
TILE_EXTERNS = ("fter_tmm_tile_b3", "fter_tmm_tile_b2", "fter_qk_row", "fter_pv_row",
                "fter_pv_row_g16")


def _extern_name(stmt):
    """The extern a block body calls (``T.call_extern``), or None."""
    if isinstance(stmt, tirx.Evaluate) and isinstance(stmt.value, Call) and stmt.value.args:
        name = stmt.value.args[0]
        if isinstance(name, StringImm):
            return str(name.value)
    return None


def _zeroing_nest(stmt, buffer) -> bool:
    """Whether ``stmt`` is a loop nest around one block storing 0 into ``buffer`` (an init that
    ``decompose_reduction`` split off)."""
    while isinstance(stmt, tirx.For):
        stmt = stmt.body
    if not isinstance(stmt, s_tir.SBlockRealize):
        return False
    body = stmt.block.body
    return (isinstance(body, tirx.BufferStore) and body.buffer.same_as(buffer)
            and isinstance(body.value, tirx.IntImm) and int(body.value.value) == 0)


def _tile_after_zeroing(sch: s_tir.Schedule):
    """A tile-call block whose accumulator the sibling nest right before it zeroes: (block rv,
    index of its realize in the enclosing loop's body), or None."""
    stack = [sch.get_sblock("root")]
    while stack:
        rv = stack.pop()
        stack.extend(sch.get_child_blocks(rv))
        block = sch.get(rv)
        if _extern_name(block.body) not in TILE_EXTERNS or len(block.writes) != 1:
            continue
        sref = sch.get_sref(rv)
        outer = sref.parent.stmt
        if not isinstance(outer, tirx.For) or not isinstance(outer.body, tirx.SeqStmt):
            continue
        index = sref.seq_index
        if index >= 1 and _zeroing_nest(outer.body.seq[index - 1], block.writes[0].source):
            return rv, index
    return None


def tile_write_calls(sch: s_tir.Schedule) -> int:
    """Every weight-stationary tile or attention-row call whose accumulator a zeroing nest right
    before it starts at 0 becomes the ``_set`` form of its kernel (``fter_tmm_tile_b3_set``,
    ``fter_qk_row_set``: the output written, not added to), and the zeroing nest goes: no stores
    of 0 and no reading them back.
    Returns how many tiles changed."""
    changed = 0
    while (found := _tile_after_zeroing(sch)) is not None:
        rv, index = found
        block = sch.get(rv)
        loop_sref = sch.get_sref(rv).parent
        outer = loop_sref.stmt
        call = block.body.value
        body = tirx.Evaluate(tirx.call_extern("void", f"{call.args[0].value}_set", *call.args[1:]))
        acc = block.writes[0].source
        reads = [r for r in block.reads if not r.source.same_as(acc)]
        new = s_tir.SBlock(block.iter_vars, reads, block.writes, block.name_hint, body, None,
                           block.alloc_buffers, block.match_buffers, block.annotations)
        seq = list(outer.body.seq)
        realize = seq[index]
        seq[index] = s_tir.SBlockRealize(realize.iter_values, realize.predicate, new)
        del seq[index - 1]
        new_body = seq[0] if len(seq) == 1 else tirx.SeqStmt(seq)
        sch.state.replace(loop_sref, tirx.For(outer.loop_var, outer.min, outer.extent, outer.kind,
                                              new_body, outer.thread_binding, outer.annotations),
                          {block: new})
        changed += 1
    return changed
