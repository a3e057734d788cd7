"""Which search space tunes a kernel: the dispatcher over the targets' spaces, which live beside
the schedules they sample (``schedules.x86.space``, ``schedules.esp32s3.space``).

Every space keeps the tensor intrinsics of the hand schedules -- the search varies tile sizes,
loop orders and micro-kernel variants around them, it never falls back to scalar code. A new
target's space goes into its package and gets a branch in :func:`design_space`.
"""

from __future__ import annotations


def has_choices(space, mod) -> bool:
    """Whether ``space`` samples anything on ``mod`` (a hand schedule without accumulation tiles
    is a single point: nothing to search)."""
    for sch in space.generate_design_space(mod):
        if any(inst.kind.name.startswith("Sample") for inst in sch.trace.insts):
            return True
    return False


def design_space(kind: str, target_name: str, tvm_target=None, params: dict | None = None):
    """The space generator of a kernel (``kind`` and its ``fter.params``) on ``target_name``
    ("esp32s3" / "x86"), or None when the kernel keeps its hand schedule untuned."""
    # imported here: a target's space loads that whole target package (x86: LLVM codegen)
    if target_name == "esp32s3":
        from ..esp32s3.space import esp32s3_design_space

        return esp32s3_design_space(kind)
    if target_name == "x86":
        from ..x86.space import x86_design_space

        return x86_design_space(kind, tvm_target, params or {})
    raise ValueError(f"no design spaces for target {target_name!r}")
