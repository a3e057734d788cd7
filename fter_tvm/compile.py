"""``fter_tvm.compile``: import -> relay_passes pipeline -> schedules -> target build -> artifact."""

from __future__ import annotations

from pathlib import Path

import tvm
from tvm import relax

from relay_passes.base import FusionError
from relay_passes.frontend import import_model
from relay_passes.pipeline import fter_pipeline
from schedules.tuning.database import tuning_summary

from .artifact import X86Artifact
from .console import capture_warnings, step, summarize
from .report import build_report
from .targets import X86Target, get_target, with_numerics


def _input_shape(mod: tvm.IRModule) -> list[int]:
    params = mod["main"].params
    if len(params) != 1:
        raise ValueError(f"models must take exactly one input tensor, got {len(params)}")
    return [int(d) for d in params[0].ty.shape.values]


def compile(model, target="x86", example_inputs=None, *, tuning_db: str | Path | None = None,
            pack_format: str | None = None, strict: bool = False, dump_dir: str | Path | None = None,
            numerics: str | None = None):
    """Compile a ternary ViT for ``target``.

    Args:
        model: ``torch.nn.Module``, ``torch.export.ExportedProgram``, ONNX path or ``ModelProto``.
        target: ``"x86"``, ``"esp32s3"`` or a :class:`fter_tvm.targets.Target`.
        example_inputs: tuple of example tensors (required for ``nn.Module``); fixes the shapes.
        tuning_db: directory of a tuning database written by :func:`fter_tvm.tune`.
        pack_format: ternary packing ``"b3"`` (5 trits/byte) or ``"b2"`` (4/byte); target default.
        strict: raise when a layer cannot be fused instead of leaving it as a plain op.
        dump_dir: write the IR after each pipeline phase there.
        numerics: ``"float"`` or ``"integer"`` (esp32s3 only: LayerNorm, softmax, GELU and the
            quantizers in fixed point, ``schedules.integer.intmath``); default: the target's setting
            (esp32s3: integer with its default PIE kernels; x86: float).

    Returns:
        an artifact with ``run(x)`` and ``report`` (and, for esp32s3, ``simulate``, ``export_project``).
        TVM's log lines and Python warnings raised meanwhile are not printed: ``report["warnings"]``
        holds their ``count`` and the distinct ``messages`` with their counts.

    Raises:
        relay_passes.frontend.ImportError_: the model cannot be imported (names the node/op).
        relay_passes.base.FusionError: ``strict`` and something is left unfused (names the node).
    """
    tgt = with_numerics(get_target(target), numerics)
    with capture_warnings() as captured:
        fused, report = fuse_model(model, tgt, example_inputs, pack_format=pack_format,
                                   strict=strict, dump_dir=dump_dir)
        art = build_fused(fused, report, tgt, tuning_db=tuning_db, example_inputs=example_inputs)
    art.report["warnings"] = summarize(captured)
    return art


def build_fused(fused: tvm.IRModule, report: dict, target, *, tuning_db=None, example_inputs=None):
    """Schedule and build a module from :func:`fuse_model` (the second half of :func:`compile`;
    ``fter_tvm.tune`` builds one fused module with and without its database). ``report`` is
    copied, not changed."""
    tgt = get_target(target)
    report = dict(report)
    if tuning_db is not None:
        report["tuning"] = tuning_summary(fused, tgt, tuning_db)
    with step(f"scheduling and building for {tgt.name}"):
        if isinstance(tgt, X86Target):
            return _build_x86(fused, report, tgt, tuning_db)
        from .esp32s3 import build_esp32s3   # the C backend pulls in runtime/ only when needed

        return build_esp32s3(fused, report, tgt, tuning_db, example_inputs)


def fuse_model(model, target, example_inputs=None, *, pack_format: str | None = None,
               strict: bool = False, dump_dir: str | Path | None = None) -> tuple[tvm.IRModule, dict]:
    """Import ``model`` and run the fter pipeline for ``target`` (the first half of
    :func:`compile`, shared with :func:`fter_tvm.tune`).

    Returns:
        ``(fused, report)``: the module whose ``main`` calls our kernels, and its report.
    Raises:
        the errors of :func:`compile`.
    """
    tgt = get_target(target)
    with step("importing the model"):
        mod = import_model(model, example_inputs)
    with step("fusing ternary layers"):
        fused = fter_pipeline(fmt=pack_format or tgt.pack_format, strict=strict, dump_dir=dump_dir,
                              low_memory=tgt.low_memory)(mod)
    report = build_report(fused)
    report["target"] = tgt.name
    report["pack_format"] = pack_format or tgt.pack_format
    if strict and report["fused"]["unfused"]:
        raise FusionError("strict mode: unfused nodes remain: " + ", ".join(report["fused"]["unfused"]))
    return fused, report


def _build_x86(fused: tvm.IRModule, report: dict, tgt: X86Target, tuning_db) -> X86Artifact:
    ex = x86_executable(fused, tgt, tuning_db)
    return X86Artifact(fused, report, _input_shape(fused), ex, tgt.num_threads)


def x86_executable(fused: tvm.IRModule, target="x86", tuning_db=None) -> "relax.VMExecutable":
    """Schedule a module from :func:`fuse_model` for x86 and build it with LLVM: the x86 path
    without the artifact (which takes one input tensor), for any number of inputs and outputs
    (ONNX's node tests run through it)."""
    from schedules.x86 import PASS_CONFIG, schedule_module

    tgt = get_target(target)
    scheduled = schedule_module(fused, tgt, tuning_db=tuning_db)
    with tvm.transform.PassContext(opt_level=3, config=PASS_CONFIG):
        return tvm.compile(scheduled, target=tvm.target.Target(tgt.tvm_target))
