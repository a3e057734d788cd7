"""How candidates are measured on each target: a MetaSchedule builder and runner plus the unit of
their cost.

* x86: TVM's ``LocalBuilder`` and ``LocalRunner`` (seconds per call), or ``RPCRunner`` through an RPC
  tracker so a farm of machines measures (``rpc="host:port"``, ``rpc_key``).
* esp32s3: :mod:`.xtensa_measure` (instructions per call in the Xtensa ISS; deterministic).
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder
from tvm.support.popen_pool import PopenPoolExecutor, StatusKind
from tvm.s_tir.meta_schedule.runner import RunnerInput, RunnerResult

# MetaSchedule's cost of a failed candidate (measure_callback/add_to_database.cc)
ERROR_COST = 1e10


@dataclass
class Measurer:
    """A builder, a runner and what their costs mean."""

    target: tvm.target.Target
    builder: object
    runner: object
    unit: str                               # "instructions" or "s"
    device_type: str = "cpu"
    references: dict | None = field(default=None)   # kernel key -> output hash (esp32s3)
    remove_artifacts: bool = True

    def measure(self, mods: list[tvm.IRModule], args_info=None) -> list[RunnerResult]:
        """Build and run ``mods`` (one-function modules, ``main``); one result per module, an
        error result for a failed build or run (never raises for a bad candidate)."""
        args_info = args_info or [ArgInfo.from_entry_func(m, remove_preproc=True) for m in mods]
        built = self.builder.build([BuilderInput(m, self.target) for m in mods])
        results: list[RunnerResult | None] = [None] * len(mods)
        to_run = []
        for i, b in enumerate(built):
            if b.error_msg is not None:
                results[i] = RunnerResult(None, "build: " + str(b.error_msg))
            else:
                to_run.append(i)
        futures = self.runner.run([RunnerInput(built[i].artifact_path, self.device_type, args_info[i])
                                   for i in to_run])
        for i, fut in zip(to_run, futures):
            results[i] = fut.result()
        if self.remove_artifacts:
            for b in built:
                if b.artifact_path is not None:
                    shutil.rmtree(Path(str(b.artifact_path)).parent, ignore_errors=True)
        return results


def cost_of(result: RunnerResult) -> float | None:
    """Median cost of a successful result's repeats (robust to a busy machine), None for an
    error."""
    if result.error_msg is not None or not result.run_secs:
        return None
    return statistics.median(float(x) for x in result.run_secs)


def esp32s3_measurer(work_dir: Path, max_workers: int = 2) -> Measurer:
    """Instruction counts in the Xtensa ISS; builds go to ``work_dir`` (deleted after running)."""
    from .xtensa_measure import XtensaBuilder, XtensaRunner

    refs: dict[str, int] = {}
    return Measurer(tvm.target.Target({"kind": "c"}), XtensaBuilder(work_dir, max_workers),
                    XtensaRunner(refs, max_workers=max_workers), "instructions", references=refs)


def x86_measurer(tvm_target: tvm.target.Target, rpc: str | None = None, rpc_key: str | None = None,
                 timeout: float = 60.0, number: int = 3, repeat: int = 5,
                 min_repeat_ms: int = 20) -> Measurer:
    """Seconds per call on this machine, or on the machines an RPC tracker hands out.

    Args:
        tvm_target: the llvm target to build for.
        rpc: ``"host:port"`` of an RPC tracker (``python -m tvm.exec.rpc_tracker``); None: local.
        rpc_key: the device key the servers registered with (required with ``rpc``).
        timeout: seconds per measurement before it counts as an error.
        number, repeat, min_repeat_ms: TVM's time_evaluator settings: ``repeat`` means of at
            least ``number`` calls lasting ``min_repeat_ms``; the cost is their median.
    Raises:
        ValueError: ``rpc`` is not ``host:port`` or ``rpc_key`` is missing.
    """
    evaluator = ms.runner.EvaluatorConfig(number=number, repeat=repeat,
                                          min_repeat_ms=min_repeat_ms, enable_cpu_cache_flush=False)
    if rpc is None:
        runner = ms.runner.LocalRunner(timeout_sec=timeout, evaluator_config=evaluator)
    else:
        host, port = parse_host_port(rpc)
        if not rpc_key:
            raise ValueError("an RPC tracker needs the device key (--rpc-key)")
        config = ms.runner.RPCConfig(tracker_host=host, tracker_port=port, tracker_key=rpc_key,
                                     session_timeout_sec=int(timeout))
        runner = ms.runner.RPCRunner(rpc_config=config, evaluator_config=evaluator, max_workers=1)
    return Measurer(tvm_target, PooledBuilder(max_workers=2, timeout=timeout), runner, "s")


def build_and_export(mod: tvm.IRModule, target: tvm.target.Target) -> str:
    """Build a candidate the way ``fter_tvm.compile`` builds x86 kernels (opt_level 3 and
    ``schedules.x86.PASS_CONFIG``: measured under other TIR options, a schedule's cost says little
    about the model) and export it like LocalBuilder, without LocalBuilder's ``import
    tvm.s_tir.tensor_intrin`` (it parses every TVM-bundled intrinsic, ~25 s per fresh worker
    here; our candidates carry their intrinsics inlined). Returns the artifact path."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.meta_schedule.builder.local_builder import default_export

    from schedules.x86 import PASS_CONFIG

    with tvm.transform.PassContext(opt_level=3, config=PASS_CONFIG):
        return default_export(tvm_build(mod, target=target))


@derived_object
class PooledBuilder(PyBuilder):
    """MetaSchedule's LocalBuilder with one worker pool for its lifetime (LocalBuilder starts a
    new pool, i.e. new Python processes, for every batch): builds stay isolated in subprocesses
    -- an LLVM abort or a hang costs a worker, not the tuner -- without a restart per batch."""

    def __init__(self, max_workers: int = 2, timeout: float = 60.0):
        self.timeout = timeout
        self.pool = PopenPoolExecutor(max_workers=max_workers, timeout=timeout)

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        results = []
        for r in self.pool.map_with_error_catching(lambda a: build_and_export(*a),
                                                   [(b.mod, b.target) for b in build_inputs]):
            if r.status == StatusKind.COMPLETE:
                results.append(BuilderResult(r.value, None))
            elif r.status == StatusKind.TIMEOUT:
                results.append(BuilderResult(None, f"build timed out after {self.timeout} s"))
            else:
                results.append(BuilderResult(None, f"build failed: {r.value}"))
        return results


def parse_host_port(s: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; raises ValueError naming the bad value."""
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {s!r}")
    return host, int(port)
