"""Max-reductions over a split loop, made private per worker (used by `runtime.split_workers`).

The esp32s3 MLP (float numerics) computes each token's absmax of the GELU output in a stage
that loops over channel blocks (weight-stationary) and folds every block into `amax[token]` with
`max`: a reduction over the loop the stage would be split along. (The integer MLP runs token
block by token block, each block's row max inside the block: `schedules.esp32s3.integer`.)
`max` is associative and commutative,
so the halves can fold into two copies and a small stage can merge them afterwards:

* the block that initialises `amax` to a constant (an earlier stage) also initialises a copy
  `amax_w1` to the same constant;
* in the split stage, the half whose range does not start at 0 folds into `amax_w1` instead of
  `amax` (the halves are `[0, s)` and `[s, e)`; when `s` is 0 the first half is empty, so at most
  one half ever writes each copy);
* a new stage after it, run on one worker and only when the kernel runs stage by stage (two
  workers), stores `max(amax, amax_w1)`.

A one-worker call (`stage < 0`, `begin = 0`) folds everything into `amax` as before and skips the
merge: it computes the same bits as the unsplit kernel. The two-worker merge gives the same value
except possibly the sign of a zero maximum (`max(+0, -0)` depends on the order); the esp32s3
kernels only use these maxima through `max(amax, eps)`, and the tests compare whole-model outputs
of one and two workers bit for bit.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx

LOAD = tvm.ir.expr.TensorLoad   # what tirx.BufferLoad builds (TVM 0.27)

MAX_TYPES = (tirx.Max,)


def max_target(block):
    """The buffer a block folds into with `max` (`b[i] = max(b[i], e)`, no init), or None."""
    body = block.body
    if block.init is not None or not isinstance(body, tirx.BufferStore) \
            or not isinstance(body.value, MAX_TYPES):
        return None
    if _is_self_load(body.value.a, body) or _is_self_load(body.value.b, body):
        return body.buffer
    return None


def _is_self_load(expr, store) -> bool:
    return (isinstance(expr, LOAD) and expr.source.same_as(store.buffer)
            and len(expr.indices) == len(store.indices)
            and all(tvm_ffi.structural_equal(x, y) for x, y in zip(expr.indices, store.indices)))


def constant_init(stages, buf):
    """The constant an earlier stage initialises `buf` with (a block storing a constant into it),
    or None."""
    found = []

    def visit(block):
        body = block.body
        if isinstance(body, tirx.BufferStore) and body.buffer.same_as(buf) \
                and isinstance(body.value, (tirx.FloatImm, tirx.IntImm)):
            found.append(body.value)
        return None

    for s in stages:
        rebuild(s, visit)
    return found[0] if found else None


def rebuild(stmt, fn):
    """`stmt` with every block `b` replaced by `fn(b)` (None keeps it)."""
    if isinstance(stmt, tirx.For):
        body = rebuild(stmt.body, fn)
        if body.same_as(stmt.body):
            return stmt
        return tirx.For(stmt.loop_var, stmt.min, stmt.extent, stmt.kind, body,
                        stmt.thread_binding, stmt.annotations)
    if isinstance(stmt, tirx.SeqStmt):
        parts = [rebuild(s, fn) for s in stmt]
        return stmt if all(p.same_as(s) for p, s in zip(parts, stmt)) else tirx.SeqStmt(parts)
    if isinstance(stmt, tirx.IfThenElse):
        then = rebuild(stmt.then_case, fn)
        other = rebuild(stmt.else_case, fn) if stmt.else_case is not None else None
        if then.same_as(stmt.then_case) and (other is None or other.same_as(stmt.else_case)):
            return stmt
        return tirx.IfThenElse(stmt.condition, then, other)
    if isinstance(stmt, s_tir.SBlockRealize):
        new = fn(stmt.block)
        if new is None:
            return stmt
        return s_tir.SBlockRealize(stmt.iter_values, stmt.predicate, new)
    return stmt


def _with(block, body, extra_reads=(), extra_writes=()):
    return s_tir.SBlock(block.iter_vars, list(block.reads) + list(extra_reads),
                        list(block.writes) + list(extra_writes), block.name_hint, body,
                        block.init, block.alloc_buffers, block.match_buffers, block.annotations)


def _region_of(regions, buf):
    return next(r for r in regions if r.source.same_as(buf))


def _retarget(region, buf):
    return tvm.ir.expr.TensorRegion(buf, region.region, region.ty)


def init_copy(stmt, buf, copy):
    """`stmt` whose constant-initialising blocks of `buf` also initialise `copy`."""
    def fn(block):
        body = block.body
        if isinstance(body, tirx.BufferStore) and body.buffer.same_as(buf) \
                and isinstance(body.value, (tirx.FloatImm, tirx.IntImm)):
            store = tirx.BufferStore(copy, body.value, body.indices)
            return _with(block, tirx.SeqStmt([body, store]),
                         extra_writes=[_retarget(_region_of(block.writes, buf), copy)])
        return None
    return rebuild(stmt, fn)


def fold_into_copy(stmt, buf, copy, begin):
    """`stmt` whose max-folding blocks into `buf` fold into `copy` when `begin` is not 0."""
    def fn(block):
        if max_target(block) is None or not max_target(block).same_as(buf):
            return None
        store = block.body
        own = tirx.BufferLoad(copy, store.indices)
        a, b = store.value.a, store.value.b
        value = tirx.Max(own, b) if _is_self_load(a, store) else tirx.Max(a, own)
        body = tirx.IfThenElse(begin == 0, store, tirx.BufferStore(copy, value, store.indices))
        return _with(block, body, extra_reads=[_retarget(_region_of(block.reads, buf), copy)],
                     extra_writes=[_retarget(_region_of(block.writes, buf), copy)])
    return rebuild(stmt, fn)


def merge_stage(buf, copy):
    """The statement storing `max(buf, copy)` into `buf`, element by element."""
    idx = [tirx.Var(f"m{d}", n.ty) for d, n in enumerate(buf.shape)]
    stmt = tirx.BufferStore(buf, tirx.Max(tirx.BufferLoad(buf, idx), tirx.BufferLoad(copy, idx)),
                            idx)
    for v, n in reversed(list(zip(idx, buf.shape))):
        stmt = tirx.For(v, tirx.IntImm(n.ty, 0), n, tirx.ForKind.SERIAL, stmt)
    return stmt


def new_copy(buf):
    """A buffer like `buf` for the second worker's partial maxima."""
    return tirx.decl_buffer([int(d) for d in buf.shape], str(buf.dtype), f"{buf.name}_w1")
