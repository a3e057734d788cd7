"""Lower a Relax module to what the AOT executor consumes: a flat `main` plus C kernels.

`lower_for_aot` runs the Relax lowering order verified in SPEC §3 and `build_kernels_c` turns the
PrimFuncs `main` calls into C with TVM's own `c` target; `runtime.program.extract_program` then
walks the lowered `main` into an `AotProgram`.
"""

from __future__ import annotations

import re

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.tirx.build import split_host_device_mods

from schedules.common import InlineGlue

from .arena import align_up
from .program import AotLoweringError, extract_program
from .split_workers import split_for_workers

WORKSPACE_BLOCK_HEADER = 16  # bytes before each block in runtime/libc/fter_tvm_backend.c


def aot_pipeline(after_fold=()) -> tvm.transform.Pass:
    """The Relax passes of `lower_for_aot`, in order (SPEC §3 plus two clean-ups);
    ``after_fold``: the caller's passes that must see constants already folded."""
    t = relax.transform
    return tvm.transform.Sequential(
        [
            # reshape(reshape(x)) -> reshape(x), no-op reshapes away: fewer glue kernels
            t.RemoveRedundantReshape(),
            t.LegalizeOps(),
            t.AnnotateTIROpPattern(),
            t.FoldConstant(),
            *after_fold,
            t.FuseOps(),
            t.FuseTIR(),
            # fused glue chains are single passes without scratch (schedules/common.py)
            InlineGlue(),
            # Reshape-only kernels become R.reshape, i.e. views sharing their input's storage.
            t.RewriteDataflowReshape(),
            # Drops the PrimFuncs the two passes above left without callers; it must run while
            # `main` is still pure, later it could not tell kernel calls from dead code.
            t.DeadCodeElimination(["main"]),
            t.ToNonDataflow(),
            t.RemovePurityChecking(),
            t.CallTIRRewrite(),
            t.StaticPlanBlockMemory(),
        ],
        name="fter_aot_lowering",
    )


def lower_for_aot(mod: tvm.IRModule, after_fold=(), split: bool = True) -> tvm.IRModule:
    """Lower a Relax module so that `main` is a flat list of allocations and kernel calls.

    Args:
        mod: a Relax IRModule with a `main` function (e.g. from the torch frontend), possibly
            already containing fused or hand-written PrimFuncs.
        after_fold: passes to run right after constant folding (e.g. fp16 side tensors).
        split: give every kernel stage with independent iterations a `[begin, end)` range, so
            the executor can run it on two workers (`runtime.split_workers`).
    Returns:
        The lowered module. Every PrimFunc called from `main` carries a `global_symbol` that is a
        valid C identifier (private PrimFuncs fail TVM's C pipeline, SPEC §3).
    Raises:
        AotLoweringError: if `mod` has no Relax `main`.
    """
    if "main" not in [gv.name_hint for gv in mod.get_global_vars()]:
        raise AotLoweringError("the module has no `main` function")
    lowered = _attach_global_symbols(aot_pipeline(after_fold)(mod))
    if split:
        lowered, _plans = split_for_workers(lowered, {c.name for c in extract_program(lowered).calls})
    return lowered


def c_identifier(name: str) -> str:
    """`name` with every non-identifier character replaced, so it is a valid C identifier."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "_" + ident if not ident or ident[0].isdigit() else ident


def _attach_global_symbols(mod: tvm.IRModule) -> tvm.IRModule:
    taken: set[str] = set()
    updates = {}
    for gv in sorted(mod.get_global_vars(), key=lambda g: g.name_hint):
        func = mod[gv]
        if not isinstance(func, tirx.PrimFunc):
            continue
        current = func.attrs.get("global_symbol") if func.attrs is not None else None
        symbol = c_identifier(str(current) if current is not None else gv.name_hint)
        base, k = symbol, 1
        while symbol in taken:
            symbol, k = f"{base}_{k}", k + 1
        taken.add(symbol)
        if current is None or str(current) != symbol:
            updates[gv] = func.with_attr("global_symbol", symbol)
    for gv, func in updates.items():
        mod[gv] = func
    return mod


def kernel_module(lowered: tvm.IRModule) -> tvm.IRModule:
    """The PrimFuncs called from `main`, alone in a module (what the C target compiles)."""
    called = {c.name for c in extract_program(lowered).calls}
    return tvm.IRModule(
        {gv: f for gv, f in lowered.functions.items() if gv.name_hint in called}
    )


def c_target() -> tvm.target.Target:
    """The TVM target of the generated kernels: plain C, host = itself."""
    return tvm.target.Target({"kind": "c"})


def build_kernels_c(lowered: tvm.IRModule) -> str:
    """Compile the kernels of a lowered module to one C source with TVM's `c` target.

    Assertions are disabled (SPEC §3: the C shrinks several-fold; the AOT executor passes exactly
    the shapes the kernels were built for). The result is TVM's output unchanged.
    """
    with tvm.transform.PassContext(config={"tirx.disable_assert": True}):
        ex = tvm.compile(kernel_module(lowered), target=c_target())
    return ex.mod.inspect_source()


def kernel_workspace_bytes(lowered: tvm.IRModule) -> dict[str, int]:
    """Workspace each kernel needs from `TVMBackendAllocWorkspace`, in bytes, by C symbol.

    Method: run the TIR pipeline `tvm.compile` runs for the C target (its host finalisation is
    where allocations become `TVMBackendAllocWorkspace` calls), then add up every such call in a
    kernel: its constant size rounded up to 16 bytes plus the 16-byte block header of our
    allocator (runtime/libc/fter_tvm_backend.c). Kernels run one at a time and free all they
    allocate before returning, so the maximum over kernels bounds the concurrent need; summing
    within a kernel over-approximates allocations that are not nested.

    Raises:
        AotLoweringError: if an allocation size is not a compile-time constant.
    """
    target = c_target()
    mod = tirx.transform.BindTarget(target.with_host(target))(kernel_module(lowered))
    pipeline, finalize_host, _ = tirx.get_default_tir_pipeline(target)
    host_mod, _ = split_host_device_mods(pipeline(mod))
    host_mod = finalize_host()(host_mod)
    alloc_op = tvm.ir.Op.get("tirx.TVMBackendAllocWorkspace")
    sizes = {}
    for gv, func in host_mod.functions.items():
        calls: list = []
        tvm_ffi.structural_walk(
            func.body, (tvm.ir.Call, lambda c: calls.append(c) if c.op.same_as(alloc_op) else None)
        )
        total = 0
        for call in calls:
            nbytes = call.args[2]
            if not isinstance(nbytes, tvm.tirx.IntImm):
                raise AotLoweringError(f"kernel {gv.name_hint}: workspace size {nbytes} is dynamic")
            total += align_up(int(nbytes.value)) + WORKSPACE_BLOCK_HEADER
        sizes[str(func.attrs["global_symbol"])] = total  # MakePackedAPI made it the C symbol
    return sizes
