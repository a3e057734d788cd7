"""SplitForWorkers: give every kernel stage whose outer loop has independent iterations a
`[begin, end)` range, so the AOT executor can run its two halves on two workers (cores).

Why stages and not whole kernels: our esp32s3 kernels are weight-stationary pipelines (the
attention block is Q projection by channel blocks, then attention per token, then the output
projection by channel blocks; the MLP is fc1 twice then fc2), so almost no kernel is one loop.
Each top-level statement of a kernel's root block is a *stage*; a stage is splittable when its
outermost loop (after loops of extent 1) has independent iterations:

* every block under the loop binds the loop variable only to spatial iterators (no reduction
  over it);
* every buffer the stage writes that the two halves share -- the kernel's parameters and the
  root scratch used by several stages -- is written in per-iteration disjoint ranges along some
  dimension (proved with the arithmetic analyzer: the last index iteration v writes is below the
  first one iteration v + 1 writes), and every read of it inside the stage stays inside the same
  iteration's range;
* scratch allocated inside the loop (TVM places an allocation at the lowest common ancestor of
  its accesses) is private to an iteration, hence to a worker.

The rewritten kernel takes three int32 parameters after its buffers: `stage`, `begin`, `end`.
`stage < 0` runs every stage (one worker: one call per kernel, as before the split, with
`[0, INT32_MAX)`); `stage = k` runs stage k only, its loop restricted to `[begin, end)` when it
is split (non-split stages ignore the range). Root scratch shared between stages must outlive
one call, so it becomes extra buffer parameters (the AOT executor places them in the arena,
live for that one kernel call) -- kernel-internal workspace is what stays per worker. The loop
keeps its full extent and guards its body with `begin <= v < end`, so buffer sizes and TVM's
buffer compaction see constant ranges (the guard costs one compare per outer iteration).

Kernels with no splittable stage are left untouched and run whole on the calling worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import s_tir, tirx

from . import split_reductions as red

STAGES_ATTR = "fter.split_stages"    # per stage: extent of its split loop, 0 = runs whole
SCRATCH_ATTR = "fter.split_scratch"  # how many buffer params were root scratch (after the originals)
RANGE_PARAMS = ("fter_stage", "fter_begin", "fter_end")


@dataclass(frozen=True)
class StagePlan:
    """Why a stage is or is not split (kept for reports and tests)."""

    extent: int   # 0: not split
    reason: str
    private: tuple = ()    # buffers its halves max-fold into copies of (runtime.split_reductions)
    merge: bool = False    # a stage added to merge those copies (runs only stage by stage)


def split_kernel(func: tirx.PrimFunc) -> tuple[tirx.PrimFunc, list[StagePlan]]:
    """The kernel with range parameters, and the plan of each stage; unchanged if none splits."""
    root = func.body
    if not isinstance(root, s_tir.SBlockRealize):
        return func, [StagePlan(0, "the body is not a root block")]
    block = root.block
    stages = list(block.body) if isinstance(block.body, tirx.SeqStmt) else [block.body]
    lca = s_tir.analysis.detect_buffer_access_lca(func)
    # (TVM 0.27: buffers are Vars of BufferType, parameters included)
    shared_scratch = [b for b in block.alloc_buffers if _lca_is_root(lca.get(b), block)]
    shared = [p for p in func.params if isinstance(p.ty, tirx.BufferType)] + shared_scratch
    plans = [_plan_stage(s, shared, shared_scratch) for s in stages]
    for k, plan in enumerate(plans):
        missing = [b.name for b in plan.private if red.constant_init(stages[:k], b) is None]
        if missing:   # the copy could not be initialised like the original
            plans[k] = StagePlan(0, f"{plan.reason}, but nothing initialises {missing} to a "
                                    "constant before")
    if not any(p.extent for p in plans):
        return func, plans
    stage, begin, end = (tirx.Var(n, "int32") for n in RANGE_PARAMS)
    stages, plans = _privatize(stages, plans, begin, shared_scratch)
    body = []
    for k, (s, plan) in enumerate(zip(stages, plans)):
        if plan.extent:
            s = _guard(_split_loop(s), s, begin, end)
        run = (stage == k) if plan.merge else tirx.Or(stage < 0, stage == k)
        body.append(tirx.IfThenElse(run, s, None))
    new_block = s_tir.SBlock(block.iter_vars, block.reads, block.writes, block.name_hint,
                             tirx.SeqStmt(body) if len(body) > 1 else body[0], block.init,
                             [b for b in block.alloc_buffers if not _member(b, shared_scratch)],
                             block.match_buffers, block.annotations)
    new_root = s_tir.SBlockRealize(root.iter_values, root.predicate, new_block)
    params = list(func.params) + shared_scratch + [stage, begin, end]
    out = tirx.PrimFunc(params, new_root, func.ret_type, func.attrs)
    out = out.with_attr(STAGES_ATTR, [p.extent for p in plans])
    return out.with_attr(SCRATCH_ATTR, len(shared_scratch)), plans


def _privatize(stages, plans, begin, shared_scratch):
    """Stages and plans with every private max-reduction folded into per-worker copies and a
    merge stage after its stage (`runtime.split_reductions`); the copies join `shared_scratch`."""
    for k in reversed(range(len(stages))):
        for buf in plans[k].private:
            copy = red.new_copy(buf)
            shared_scratch.append(copy)
            for j in range(k):
                stages[j] = red.init_copy(stages[j], buf, copy)
            stages[k] = red.fold_into_copy(stages[k], buf, copy, begin)
            stages.insert(k + 1, red.merge_stage(buf, copy))
            plans.insert(k + 1, StagePlan(0, f"merges the two workers' maxima of {buf.name}",
                                          merge=True))
    return stages, plans


def _member(x, items) -> bool:
    # identity, not `==` (which builds an expression for Vars)
    return any(x.same_as(i) for i in items)


def _lca_is_root(lca, root_block) -> bool:
    return lca is None or (isinstance(lca, s_tir.SBlock) and lca.same_as(root_block))


def _split_loop(stmt):
    """The loop a stage is split along: the outermost one, below loops of extent 1."""
    loop = stmt
    while (isinstance(loop, tirx.For) and _extent(loop) == 1 and isinstance(loop.body, tirx.For)):
        loop = loop.body
    return loop if isinstance(loop, tirx.For) else None


def _extent(loop) -> int | None:
    return int(loop.extent.value) if isinstance(loop.extent, tirx.IntImm) else None


def _guard(loop, stage, begin, end):
    """`stage` with `loop`'s body run only for begin <= v < end."""
    if stage.same_as(loop):
        cond = tirx.And(begin <= loop.loop_var, loop.loop_var < end)
        return tirx.For(loop.loop_var, loop.min, loop.extent, loop.kind,
                        tirx.IfThenElse(cond, loop.body, None), loop.thread_binding,
                        loop.annotations)
    return tirx.For(stage.loop_var, stage.min, stage.extent, stage.kind,
                    _guard(loop, stage.body, begin, end), stage.thread_binding, stage.annotations)


def _plan_stage(stmt, shared: list, scratch: list) -> StagePlan:
    loop = _split_loop(stmt)
    if loop is None:
        return StagePlan(0, "no outer loop")
    extent = _extent(loop)
    if extent is None or extent < 2 or loop.kind != tirx.ForKind.SERIAL \
            or not (isinstance(loop.min, tirx.IntImm) and loop.min.value == 0):
        return StagePlan(0, f"outer loop {loop.loop_var} has extent {loop.extent}")
    outer = []   # loops of extent 1 above the split loop: their variables are 0
    s = stmt
    while not s.same_as(loop):
        outer.append(s)
        s = s.body
    blocks: list = []
    problem = _collect(loop.body, outer, blocks)
    if problem:
        return StagePlan(0, problem)
    v = loop.loop_var
    # shared buffer -> [per-dim (lo, hi) of one iteration] for each write / read (dicts keyed by
    # the buffer object: Object hashing is by identity)
    writes: dict = {}
    reads: dict = {}
    private: list = []   # root scratch the stage max-folds into across iterations
    for realize, loops in blocks:
        block = realize.block
        binding = {}
        folded = None
        for iv, value in zip(block.iter_vars, realize.iter_values):
            if iv.iter_type != tirx.IterVar.DataPar and _uses(value, v):
                target = red.max_target(block)
                # the scratch list's own object: the dicts below are keyed by identity
                folded = next((b for b in scratch if target is not None and b.same_as(target)), None)
                if folded is None:
                    return StagePlan(0, f"block {block.name_hint} reduces over {v}")
                if not _member(folded, private):
                    private.append(folded)
            binding[iv.var] = value
        dom = {lp.loop_var: tvm.sym.IntervalSet(lp.min, lp.min + lp.extent - 1) for lp in loops}
        for regions, into in ((block.writes, writes), (block.reads, reads)):
            for region in regions:
                buf = next((b for b in shared if b.same_as(region.source)), None)
                if folded is not None and region.source.same_as(folded):
                    continue   # the halves fold into their own copies
                if buf is not None:
                    into.setdefault(buf, []).append(_relaxed(region, binding, dom))
    for buf in private:
        if _member(buf, list(writes) + list(reads)):
            return StagePlan(0, f"{buf.name} is max-folded over {v} and also used otherwise")
    for buf, ranges in writes.items():
        dim = _partition_dim(ranges, reads.get(buf, []), v, extent)
        if dim is None:
            return StagePlan(0, f"iterations of {v} share the writes to {buf.name}")
    if private:
        return StagePlan(extent, f"split along {v}, max-folding into per-worker copies of "
                                 f"{[b.name for b in private]}", tuple(private))
    return StagePlan(extent, f"split along {v}")


def _collect(stmt, loops: list, out: list) -> str | None:
    """Blocks under `stmt` with the loops around them; a message if something is not handled."""
    if isinstance(stmt, tirx.For):
        return _collect(stmt.body, loops + [stmt], out)
    if isinstance(stmt, tirx.SeqStmt):
        for s in stmt:
            problem = _collect(s, loops, out)
            if problem:
                return problem
        return None
    if isinstance(stmt, s_tir.SBlockRealize):
        nested: list = []
        _walk(stmt.block.body, s_tir.SBlockRealize, nested)
        if nested:
            return f"block {stmt.block.name_hint} has nested blocks"
        out.append((stmt, loops))
        return None
    if isinstance(stmt, tirx.IfThenElse):
        return _collect(stmt.then_case, loops, out) or (
            _collect(stmt.else_case, loops, out) if stmt.else_case is not None else None)
    return f"unhandled statement {type(stmt).__name__} under the loop"


def _walk(stmt, cls, out: list) -> None:
    """Append every node of type `cls` under `stmt` to `out`."""
    tvm_ffi.structural_walk(stmt, (cls, lambda node: out.append(node)))


def _uses(expr, var) -> bool:
    found: list = []
    _walk(expr, tirx.Var, found)
    return any(f.same_as(var) for f in found)


def _relaxed(region, binding: dict, dom: dict) -> list:
    """Per dimension, (lo, hi) of `region` over one iteration of the split loop: block iterators
    replaced by their bindings, the inner loops relaxed to their ranges."""
    ana = tvm.sym.Analyzer()
    for var, value in binding.items():
        ana.bind(var, value)
    out = []
    for r in region.region:
        lo = ana.int_set(ana.simplify(r.min), dom).min_value
        hi = ana.int_set(ana.simplify(r.min + r.extent - 1), dom).max_value
        out.append((ana.simplify(lo), ana.simplify(hi)))
    return out


def _at(expr, v, value):
    """`expr` with the loop variable `v` replaced by `value`."""
    ana = tvm.sym.Analyzer()
    ana.bind(v, value)
    return ana.simplify(expr)


def _partition_dim(writes: list, reads: list, v, extent: int) -> int | None:
    """A dimension along which iteration v's writes lie strictly below iteration v + 1's, and
    every read of the stage stays within its own iteration's writes; None if there is none."""
    w = tirx.Var("w", v.ty)
    for d in range(len(writes[0])):
        lo = _fold(tirx.Min, [x[d][0] for x in writes])
        hi = _fold(tirx.Max, [x[d][1] for x in writes])
        ana = tvm.sym.Analyzer()
        ana.bind(w, tvm.ir.Range(0, extent - 1))      # w and w + 1 both iterations
        if not ana.can_prove(_at(hi, v, w) < _at(lo, v, w + 1)):
            continue
        ana = tvm.sym.Analyzer()
        ana.bind(v, tvm.ir.Range(0, extent))
        if all(ana.can_prove(r[d][0] >= lo) and ana.can_prove(r[d][1] <= hi) for r in reads):
            return d
    return None


def _fold(op, values):
    out = values[0]
    for x in values[1:]:
        out = op(out, x)
    return out


def split_for_workers(mod: tvm.IRModule, names) -> tuple[tvm.IRModule, dict[str, list[StagePlan]]]:
    """Rewrite the PrimFuncs `names` of `mod` (see the module docstring); returns the module and
    every kernel's stage plans."""
    plans = {}
    updates = {}
    for gv, func in mod.functions_items():
        if gv.name_hint in names and isinstance(func, tirx.PrimFunc):
            new, plans[gv.name_hint] = split_kernel(func)
            if not new.same_as(func):
                updates[gv] = new
    for gv, func in updates.items():
        mod[gv] = func
    return mod, plans
