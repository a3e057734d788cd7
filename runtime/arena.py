"""Static arena planner: pack buffers with known live ranges into one aligned byte array.

Buffers live over an inclusive range of steps [start, end] (a step is one kernel call). Two
buffers whose ranges intersect must not share bytes; buffers that are never live together may.
`plan_arena` packs greedily; `verify_plan` proves the result and runs on every compile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ALIGN = 16  # ESP32-S3 PIE 128-bit loads ignore the low 4 address bits (SPEC §4)


class ArenaOverlapError(AssertionError):
    """Two buffers that are live at the same step share arena bytes (or a plan is malformed)."""


class ArenaPlanError(ValueError):
    """The buffers handed to the planner cannot be planned (e.g. a size is not static)."""


@dataclass(frozen=True)
class LiveBuffer:
    """A buffer to place: `nbytes` bytes, live from step `start` to step `end` inclusive."""

    name: str
    nbytes: int
    start: int
    end: int

    def overlaps_in_time(self, other: LiveBuffer) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class Placement:
    """A placed buffer: its byte range [offset, offset + nbytes) in the arena."""

    buffer: LiveBuffer
    offset: int

    @property
    def end_offset(self) -> int:
        return self.offset + self.buffer.nbytes

    def overlaps_in_memory(self, other: Placement) -> bool:
        return self.offset < other.end_offset and other.offset < self.end_offset


@dataclass(frozen=True)
class ArenaPlan:
    """Where every buffer lives in the one arena, and how big the arena is."""

    placements: tuple[Placement, ...]  # in the order the buffers were given
    total_bytes: int
    num_steps: int
    alignment: int = ALIGN

    def offset(self, name: str) -> int:
        """Byte offset of buffer `name` in the arena."""
        return self._by_name()[name].offset

    def _by_name(self) -> dict[str, Placement]:
        return {p.buffer.name: p for p in self.placements}

    @property
    def sum_bytes(self) -> int:
        """What the buffers would take without reuse (each aligned), for comparison."""
        return sum(align_up(p.buffer.nbytes, self.alignment) for p in self.placements)

    @property
    def timeline(self) -> list[int]:
        """Bytes live at each step; its maximum is a lower bound for any valid plan."""
        live = [0] * self.num_steps
        for p in self.placements:
            for step in range(p.buffer.start, p.buffer.end + 1):
                live[step] += p.buffer.nbytes
        return live

    @property
    def peak_live_bytes(self) -> int:
        return max(self.timeline, default=0)

    def describe(self) -> str:
        """A human-readable table of the plan (one buffer per line)."""
        lines = [f"arena {self.total_bytes} B (no reuse: {self.sum_bytes} B, "
                 f"live peak: {self.peak_live_bytes} B)"]
        for p in sorted(self.placements, key=lambda p: (p.offset, p.buffer.start)):
            b = p.buffer
            lines.append(f"  {b.name:>8} [{p.offset:>8}, {p.end_offset:>8}) steps {b.start}..{b.end}")
        return "\n".join(lines)


def align_up(n: int, a: int = ALIGN) -> int:
    """`n` rounded up to a multiple of `a`."""
    return (n + a - 1) // a * a


def _check_buffers(buffers: list[LiveBuffer], num_steps: int) -> None:
    names = set()
    for b in buffers:
        if not isinstance(b.nbytes, int):
            raise ArenaPlanError(f"buffer {b.name}: size {b.nbytes!r} is not a static byte count")
        if b.nbytes < 0 or not 0 <= b.start <= b.end < max(num_steps, 1):
            raise ArenaPlanError(f"buffer {b.name}: bad size {b.nbytes} or range "
                                 f"{b.start}..{b.end} (steps 0..{num_steps - 1})")
        if b.name in names:
            raise ArenaPlanError(f"buffer name {b.name} appears twice")
        names.add(b.name)


def plan_arena(buffers: Iterable[LiveBuffer], num_steps: int, alignment: int = ALIGN) -> ArenaPlan:
    """Pack buffers into one arena; buffers live at the same step never share bytes.

    Greedy best-known heuristic: largest first (ties: earlier start, then name, so the plan is
    deterministic), each at the lowest `alignment`-aligned offset that does not overlap any
    already placed buffer whose live range intersects its own.

    Args:
        buffers: the buffers with sizes and inclusive live ranges.
        num_steps: number of steps (ranges must lie in 0..num_steps-1).
        alignment: byte alignment of every offset and of the total size.
    Returns:
        A verified `ArenaPlan`.
    Raises:
        ArenaPlanError: a size is not a static int, a range is out of bounds, a name repeats.
    """
    buffers = list(buffers)
    _check_buffers(buffers, num_steps)
    placed: list[Placement] = []
    for buf in sorted(buffers, key=lambda b: (-b.nbytes, b.start, b.name)):
        busy = sorted((p for p in placed if p.buffer.overlaps_in_time(buf)), key=lambda p: p.offset)
        offset = 0
        for p in busy:
            if offset + buf.nbytes <= p.offset:
                break  # fits in the gap before p
            offset = max(offset, align_up(p.end_offset, alignment))
        placed.append(Placement(buf, offset))
    by_name = {p.buffer.name: p for p in placed}
    placements = tuple(by_name[b.name] for b in buffers)
    total = align_up(max((p.end_offset for p in placements), default=0), alignment)
    plan = ArenaPlan(placements, total, num_steps, alignment)
    verify_plan(plan)
    return plan


def verify_plan(plan: ArenaPlan) -> None:
    """Prove the plan safe: aligned, inside the arena, and no two live-together buffers overlap.

    Raises:
        ArenaOverlapError: naming both buffers, their byte ranges and live ranges.
    """
    for p in plan.placements:
        b = p.buffer
        if p.offset % plan.alignment or p.offset < 0 or p.end_offset > plan.total_bytes:
            raise ArenaOverlapError(f"buffer {b.name} at [{p.offset}, {p.end_offset}) is misaligned "
                                    f"or outside the {plan.total_bytes} B arena")
    # Sweep by start step: only buffers still live when another starts can conflict with it.
    order = sorted(plan.placements, key=lambda p: p.buffer.start)
    active: list[Placement] = []
    for p in order:
        active = [q for q in active if q.buffer.end >= p.buffer.start]
        for q in active:
            if q.buffer.nbytes and p.buffer.nbytes and p.overlaps_in_memory(q):
                a, b = q.buffer, p.buffer
                raise ArenaOverlapError(
                    f"buffers {a.name} (bytes [{q.offset}, {q.end_offset}), steps {a.start}..{a.end}) "
                    f"and {b.name} (bytes [{p.offset}, {p.end_offset}), steps {b.start}..{b.end}) "
                    "are live at the same time and overlap in the arena")
        active.append(p)
