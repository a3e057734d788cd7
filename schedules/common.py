"""Schedule steps shared by the targets."""

from __future__ import annotations

from tvm import s_tir


def stream_attention_rows(sch: s_tir.Schedule) -> None:
    """Compute every per-(head, row) block of ``int8_attention_qkv`` inside the (head, row) loops
    of its output block, so scores, probabilities and accumulators need one row of scratch."""
    row = sch.get_loops(sch.get_sblock("out"))[1]
    for name in ("pv", "prob", "lsum", "lmax", "logit", "qk"):
        sch.compute_at(sch.get_sblock(name), row)
