"""Schedules of the fused kernels for the LLVM (x86) target.

Row-parallel schedules: each output row (token) is computed by one thread with its accumulator
kept in registers. VNNI/AVX2 tensorization and tuning are the next steps (issues #5/#6).
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx

from .common import stream_attention_rows


def _schedule_ternary_matmul(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = s_tir.Schedule(func)
    i, j, _ = sch.get_loops(sch.get_sblock("acc"))
    sch.reverse_compute_at(sch.get_sblock("epilogue"), j)
    sch.parallel(i)
    return sch.mod["main"]


def _schedule_rows(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Per-token kernels: every block moves under the row loop of the first; rows in parallel."""
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    row = sch.get_loops(blocks[0])[0]
    for block in blocks[1:]:
        sch.reverse_compute_at(block, row)
    sch.parallel(row)
    return sch.mod["main"]


def _schedule_attention_qkv(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = s_tir.Schedule(func)
    stream_attention_rows(sch)
    sch.parallel(sch.get_loops(sch.get_sblock("out"))[0])     # heads in parallel
    return sch.mod["main"]


SCHEDULES = {
    "ternary_matmul": _schedule_ternary_matmul,
    "quantize_act": _schedule_rows,
    # one pass over the image; tiny next to the matmuls
    "quantize_patches": lambda f: f,
    "quantize_act_tensor": lambda f: f,
    "ternary_layernorm": _schedule_rows,
    # attention keeps its unscheduled loop nest for now: correct, not fast (issue #5)
    "int8_attention": lambda f: f,
    "int8_attention_qkv": _schedule_attention_qkv,
}


def schedule_module(mod: tvm.IRModule, target, tuning_db=None) -> tvm.IRModule:
    """Apply the hand schedule of every fter kernel in ``mod``."""
    if tuning_db is not None:
        raise ValueError("tuning databases are not supported yet (autotuning is issue #6)")
    mod = tvm.IRModule(dict(mod.functions_items()))
    for gv, func in mod.functions_items():
        if isinstance(func, tirx.PrimFunc) and func.attrs is not None and "fter.kind" in func.attrs:
            kind = str(func.attrs["fter.kind"])
            if kind not in SCHEDULES:
                raise ValueError(f"no x86 schedule for kernel kind {kind!r} ({gv.name_hint})")
            mod[gv] = SCHEDULES[kind](func)
    return mod
