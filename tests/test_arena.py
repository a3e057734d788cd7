"""Static arena planner (runtime/arena.py) and its use on lowered Relax modules."""

import random

import pytest
from tvm.script import ir as I
from tvm.script import relax as R

from runtime import aot, lower
from runtime.program import extract_program
from runtime.arena import (
    ArenaOverlapError,
    ArenaPlan,
    ArenaPlanError,
    LiveBuffer,
    Placement,
    plan_arena,
    verify_plan,
)


def _no_overlap_brute_force(plan: ArenaPlan) -> bool:
    """Independent of verify_plan: check every step and every byte range pairwise."""
    for step in range(plan.num_steps):
        live = [p for p in plan.placements if p.buffer.start <= step <= p.buffer.end]
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                if a.buffer.nbytes and b.buffer.nbytes and a.overlaps_in_memory(b):
                    return False
    return True


def test_sequential_buffers_share_memory():
    bufs = [LiveBuffer("a", 1000, 0, 1), LiveBuffer("b", 500, 1, 2), LiveBuffer("c", 1000, 2, 3)]
    plan = plan_arena(bufs, 4)
    assert plan.offset("a") == plan.offset("c") == 0  # a dies before c is born
    assert plan.offset("b") == 1008  # after a, 16-byte aligned
    assert plan.total_bytes == 1520 < plan.sum_bytes == 1008 + 512 + 1008
    assert plan.timeline == [1000, 1500, 1500, 1000]
    assert plan.peak_live_bytes == 1500


def test_plan_is_deterministic_and_keeps_input_order():
    bufs = [LiveBuffer(f"b{i}", 16 * (i % 3 + 1), i, i + 2) for i in range(8)]
    a, b = plan_arena(bufs, 10), plan_arena(list(bufs), 10)
    assert a == b
    assert [p.buffer.name for p in a.placements] == [f"b{i}" for i in range(8)]


@pytest.mark.parametrize("seed", range(20))
def test_random_plans_are_valid(seed):
    rng = random.Random(seed)
    steps = rng.randint(1, 30)
    bufs = []
    for i in range(rng.randint(1, 40)):
        start = rng.randrange(steps)
        bufs.append(LiveBuffer(f"b{i}", rng.choice([0, 1, 15, 16, 17, 100, 4096]),
                               start, rng.randint(start, steps - 1)))
    plan = plan_arena(bufs, steps)  # verify_plan runs inside
    verify_plan(plan)
    assert _no_overlap_brute_force(plan)
    assert all(p.offset % 16 == 0 for p in plan.placements)
    assert plan.peak_live_bytes <= plan.total_bytes <= plan.sum_bytes


def test_broken_plan_is_caught_naming_both_buffers():
    x, y = LiveBuffer("act_x", 256, 0, 3), LiveBuffer("act_y", 128, 2, 5)
    broken = ArenaPlan((Placement(x, 0), Placement(y, 0)), total_bytes=256, num_steps=6)
    with pytest.raises(ArenaOverlapError) as err:
        verify_plan(broken)
    msg = str(err.value)
    assert "act_x" in msg and "act_y" in msg
    assert "steps 0..3" in msg and "steps 2..5" in msg


def test_same_offset_is_fine_when_not_live_together():
    x, y = LiveBuffer("x", 256, 0, 1), LiveBuffer("y", 256, 2, 3)
    verify_plan(ArenaPlan((Placement(x, 0), Placement(y, 0)), total_bytes=256, num_steps=4))


def test_touching_ranges_conflict():
    # A kernel reads its input while writing its output: a buffer whose last use is step 2 and
    # one whose first use is step 2 must not share bytes.
    x, y = LiveBuffer("x", 64, 0, 2), LiveBuffer("y", 64, 2, 3)
    with pytest.raises(ArenaOverlapError):
        verify_plan(ArenaPlan((Placement(x, 0), Placement(y, 32)), total_bytes=96, num_steps=4))
    assert plan_arena([x, y], 4).total_bytes == 128


@pytest.mark.parametrize("placement,total", [(Placement(LiveBuffer("m", 32, 0, 0), 8), 64),
                                             (Placement(LiveBuffer("m", 32, 0, 0), 48), 64)])
def test_misaligned_or_outside_is_caught(placement, total):
    with pytest.raises(ArenaOverlapError, match="m"):
        verify_plan(ArenaPlan((placement,), total_bytes=total, num_steps=1))


def test_bad_buffers_rejected():
    with pytest.raises(ArenaPlanError, match="not a static byte count"):
        plan_arena([LiveBuffer("dyn", "n * 4", 0, 0)], 1)
    with pytest.raises(ArenaPlanError, match="range"):
        plan_arena([LiveBuffer("late", 4, 0, 7)], 3)
    with pytest.raises(ArenaPlanError, match="twice"):
        plan_arena([LiveBuffer("a", 4, 0, 0), LiveBuffer("a", 4, 0, 0)], 1)


# Softmaxes keep the matmuls apart, so FuseOps leaves 8 kernels whose tensors have 3 sizes.
@I.ir_module
class AttentionLike:
    @R.function
    def main(x: R.Tensor((8, 16), "float32")) -> R.Tensor((8, 16), "float32"):
        with R.dataflow():
            a = R.matmul(x, R.permute_dims(x))
            b = R.nn.softmax(a, axis=-1)
            c = R.matmul(b, x)
            d = R.nn.softmax(c, axis=-1)
            e = R.matmul(R.permute_dims(d), d)
            f = R.nn.softmax(e, axis=-1)
            g = R.matmul(x, f)
            h = R.add(g, c)
            R.output(h)
        return h


@I.ir_module
class Dynamic:
    @R.function
    def main(x: R.Tensor(("n", 4), "float32")):
        with R.dataflow():
            y = R.nn.relu(x)
            R.output(y)
        return y


def test_model_arena_beats_static_plan_block_memory():
    # unsplit kernels: split ones add their stage-shared scratch (softmax row maxima and sums)
    # to the arena, which StaticPlanBlockMemory's storages do not hold
    program = extract_program(lower.lower_for_aot(AttentionLike, split=False))
    by_tensor, offsets = aot.plan_program_arena(program, "tensor")
    by_storage, _ = aot.plan_program_arena(program, "storage")
    verify_plan(by_tensor)
    verify_plan(by_storage)
    # StaticPlanBlockMemory leaves storages totalling 3072 bytes, each live across most of the
    # model; planning the tensors themselves gets down to the live peak.
    assert aot.storage_bytes(program) == 3072
    assert by_storage.total_bytes == 3072
    assert by_tensor.total_bytes == by_tensor.peak_live_bytes == 2560
    assert set(offsets) == set(program.live_ranges())
    split = extract_program(lower.lower_for_aot(AttentionLike))
    by_tensor, _ = aot.plan_program_arena(split, "tensor")
    verify_plan(by_tensor)
    assert 2560 < by_tensor.total_bytes == by_tensor.peak_live_bytes <= 2560 + 4 * 8 * 4


def test_dynamic_shapes_rejected():
    with pytest.raises(lower.AotLoweringError, match="dynamic shape"):
        extract_program(lower.lower_for_aot(Dynamic))
