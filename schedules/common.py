"""Schedule steps shared by the targets (x86, esp32s3) and the AOT lowering (``InlineGlue``)."""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx


def stream_attention_rows(sch: s_tir.Schedule) -> None:
    """Compute every per-(head, row) block of ``int8_attention_qkv`` inside the (head, row) loops
    of its output block, so scores, probabilities and accumulators need one row of scratch."""
    row = sch.get_loops(sch.get_sblock("out"))[1]
    for name in ("pv", "prob", "lsum", "lmax", "logit", "qk"):
        sch.compute_at(sch.get_sblock(name), row)


def _inline_all(func):
    """Inline every block of an injective glue kernel into its consumers (or producers)."""
    sch = s_tir.Schedule(func)
    changed = True
    while changed:
        changed = False
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            for inline in (sch.compute_inline, sch.reverse_compute_inline):
                try:
                    inline(block)
                except Exception:   # noqa: BLE001 -- TVM raises ScheduleError subclasses; not inlinable
                    continue
                changed = True
                break
            if changed:
                break
    return sch.mod["main"]


@tvm.transform.module_pass(opt_level=0, name="InlineGlue")
class InlineGlue:
    """TVM's legalized glue (reshape/transpose/concat/add chains fused by FuseTIR) keeps every
    intermediate as a scratch buffer; unscheduled, a 3-op chain on a [197, 576] tensor asks the
    runtime for ~1 MB of workspace. Inlining them makes each glue kernel one pass, no scratch.
    Our own kernels (``fter.kind``) are left to their schedules."""

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        out = tvm.IRModule(dict(mod.functions_items()), attrs=mod.attrs)
        for gv, func in mod.functions_items():
            if isinstance(func, tirx.PrimFunc) and (func.attrs is None or "fter.kind" not in func.attrs):
                out[gv] = _inline_all(func)
        return out
