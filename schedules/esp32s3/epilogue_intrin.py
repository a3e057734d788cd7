"""C epilogues of the integer kernels on the ESP32-S3 (runtime/kernels/epilogue_int.c), called
from the scheduled TensorIR in place of loop nests TVM would emit as generic C.

* :func:`value_rowmax_call` -- the integer MLP's first fc1 pass per weight-stationary tile: the
  values inlined into the tile's partial row maxima (the ``rfactor`` of the row max over
  channel blocks), ``part[i] = max(part[i], V[i, j])``, as one ``fter_value_rowmax_tile`` call;
* :func:`gelu_codes_call` -- the integer MLP's second fc1 pass per weight-stationary tile: the
  values (the contract's ``dequant`` of the accumulators with the channel tables ``cm, ce, cb``
  and the token tables ``rm, re``) inlined into GELU and the int8 hidden codes,
  ``q2[i, j] = quant8(gelu(V[i, j]), mult[i])``, as one ``fter_gelu_codes_tile`` call;
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


def _call_block(sch: s_tir.Schedule, rv, reads, writes, extern: str, args) -> None:
    """Replace the block ``rv`` by one call of ``extern``: the regions of the named buffers
    ``reads`` / ``writes`` (in that order, as the block lists them) become the new block's reads
    and writes, each bound to a buffer with symbolic strides; ``args(bufs)`` gives the call's
    arguments from those buffers (by name)."""
    block = sch.get(rv)
    regions = {str(r.source.name): r for r in [*block.reads, *block.writes]}
    missing = [n for n in (*reads, *writes) if n not in regions]
    if missing:
        raise ValueError(f"{block.name_hint}: no region of {missing} (it has {sorted(regions)})")
    bound = {n: _bind(regions[n], n) for n in (*reads, *writes)}
    bufs = {n: buf for n, (_, buf) in bound.items()}
    call = tirx.Evaluate(tirx.call_extern("void", extern, *args(bufs)))
    new = s_tir.SBlock(block.iter_vars, [regions[n] for n in reads],
                       [regions[n] for n in writes], block.name_hint, call, None, [],
                       [m for m, _ in bound.values()], block.annotations)
    sch.state.replace(sch.get_sref(rv), new, {block: new})
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


def value_rowmax_call(sch: s_tir.Schedule, loop, t: int, nb: int, abits: int) -> None:
    """Replace the [t, nb] tile under ``loop`` (``amax.rf[jo, i] = max(amax.rf[jo, i], V[i, j])``
    with the values inlined) by one ``fter_value_rowmax_tile`` call."""
    def args(b):
        return (_first(b["amax.rf"]), _first(b["acc1"]), _first(b["cm"]), _first(b["ce"]),
                _first(b["cb"]), _first(b["rm"]), _first(b["re"]), t, nb, b["acc1"].strides[0],
                abits)

    _call_block(sch, sch.blockize(loop), ("amax.rf", "acc1", "cm", "rm", "ce", "re", "cb"),
                ("amax.rf",), "fter_value_rowmax_tile", args)


def gelu_codes_call(sch: s_tir.Schedule, loop, t: int, nb: int, abits: int) -> None:
    """Replace the [t, nb] tile under ``loop`` (``q2[i, j] = quant8(gelu(V[i, j]), mult[i])``
    with the values inlined) by one ``fter_gelu_codes_tile`` call."""
    def args(b):
        return (_first(b["q2"]), _first(b["acc1b"]), _first(b["cm"]), _first(b["ce"]),
                _first(b["cb"]), _first(b["rm"]), _first(b["re"]), _first(b["tab"]),
                _first(b["mult"]), t, nb, b["q2"].strides[0], b["acc1b"].strides[0], abits)

    _call_block(sch, sch.blockize(loop), ("acc1b", "cm", "rm", "ce", "re", "cb", "tab", "mult"),
                ("q2",), "fter_gelu_codes_tile", args)


def softmax_row_call(sch: s_tir.Schedule, blocks, n: int, h: int, sbits: int) -> None:
    """Replace one attention row's softmax (the sibling blocks ``blocks``: logits from the int32
    scores ``sacc``, row max, ``exp_neg``, row sum, reciprocal, uint8 probabilities ``p``) by one
    ``fter_softmax_row_u8`` call; ``logit`` is its work row."""
    def args(b):
        return (_first(b["p"]), _first(b["logit"]), _first(b["sacc"]), _first(b["qm"]),
                _first(b["qe"]), _first(b["km"]), _first(b["ke"]), n, h, sbits,
                b["p"].strides[1], b["logit"].strides[1], b["sacc"].strides[1],
                b["km"].strides[0])

    _call_block(sch, sch.blockize(blocks), ("sacc", "qm", "qe", "km", "ke"), ("logit", "p"),
                "fter_softmax_row_u8", args)
