"""The ESP32-S3 build: scheduled kernels -> C -> AOT executor; host-simulated and Xtensa-simulated runs."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tvm

from runtime import aot, lower
from runtime.host_sim import build_host, parse_counters, run_host, sanitize_requested
from runtime.xtensa_sim import build_xtensa, run_xtensa
from relay_passes.store_side_tensors_fp16 import StoreSideTensorsFp16
from schedules.esp32s3 import schedule_module, to_integer

from .artifact import Artifact, as_numpy
from .console import step
from .latency import LatencyModel, estimate_latency
from .targets import Esp32s3Target, ModelTooLargeError  # noqa: F401  (public here too)

MODEL_MAIN = Path(lower.__file__).parent / "sim" / "model_main.c"
KIND_PREFIXES = (("ternary_matmul_float", "ternary_matmul_float"), ("ternary_matmul", "ternary_matmul"), ("ternary_mlp", "ternary_matmul"),
                 ("int8_attention_block", "attention_matmul"), ("patch_embed", "ternary_matmul"),
                 ("int8_attention", "attention_matmul"),
                 ("ternary_layernorm", "layernorm"), ("quantize_act", "quantize"),
                 ("quantize_patches", "quantize"), ("quantize_act_tensor", "quantize"),
                 ("quantize_channels", "quantize"), ("decode_f16", "decode_f16"))


CORES = ("esp32s3", "lx106")



def kernel_kind(prim_func_name: str) -> str:
    for prefix, kind in KIND_PREFIXES:
        if prim_func_name.startswith(prefix):
            return kind
    if "softmax" in prim_func_name:
        return "softmax"
    if "gelu" in prim_func_name:
        return "gelu"
    return "other"


def _kernel_params(mod: tvm.IRModule):
    """The ``fter.params`` of every kernel in ``mod``, values as strings."""
    for _gv, func in mod.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc) and func.attrs is not None \
                and "fter.params" in func.attrs:
            yield {k: str(v) for k, v in func.attrs["fter.params"].items()}


def pie_max_k(mod: tvm.IRModule) -> int:
    """The longest reduction of any ternary matmul in ``mod`` (its kernels' ``fter.params``):
    the PIE matmul decodes a weight group into a static [K][16] scratch of this K
    (``FTER_PIE_MAX_K``)."""
    best = 16
    for p in _kernel_params(mod):
        ks = [int(p[key]) for key in ("k", "d", "hidden") if key in p]
        if "p" in p and "c" in p:
            ks.append(int(p["c"]) * int(p["p"]) ** 2)
        best = max([best, *ks])
    return best


def pie_max_n(mod: tvm.IRModule) -> int:
    """The most keys of any attention kernel in ``mod`` (its ``fter.params`` ``n`` beside an
    ``hd``), at least 64: the P·V row keeps [n] split buffers per worker (``FTER_PIE_MAX_N``,
    ``attention_pie.c``; its word-wise path needs 64) and falls back to the reference beyond."""
    return max([64, *(int(p["n"]) for p in _kernel_params(mod) if "n" in p and "hd" in p)])


def build_esp32s3(fused: tvm.IRModule, report: dict, tgt: Esp32s3Target, tuning_db=None,
                  example_inputs=None):
    if tgt.numerics_mode == "integer":
        fused, integer, left = to_integer(fused)
        report = dict(report, numerics={"mode": "integer", "integer_kernels": integer,
                                        "float_kernels": left})
    else:
        report = dict(report, numerics={"mode": "float"})
    scheduled = schedule_module(fused, tgt, tuning_db=tuning_db)
    lowered = lower.lower_for_aot(scheduled, after_fold=[StoreSideTensorsFp16(tgt.fp16_rounded)])
    kernels_c = lower.build_kernels_c(lowered)
    art = Esp32s3Artifact(fused, report, tgt, lowered, kernels_c)
    if example_inputs:   # kept as the sample input of exported projects
        art.example_input = as_numpy(example_inputs[0], art.input_shape)
    return art


class Esp32s3Artifact(Artifact):
    """Generated C for the ESP32-S3; ``run`` on the host, ``simulate`` in the Xtensa ISS."""

    target = "esp32s3"

    def __init__(self, fused, report, tgt: Esp32s3Target, lowered, kernels_c: str):
        self._tmp = Path(tempfile.mkdtemp(prefix="fter_esp32s3_"))
        self.aot = aot.generate_aot(lowered, kernels_c, self._tmp / "model")
        shape = list(self.aot.input_shape)
        super().__init__(fused, report, shape)
        self.tgt = tgt
        self.report.update(arena_bytes=self.aot.arena_bytes,
                           workspace_bytes=self.aot.workspace_bytes,   # per worker
                           c_weights_bytes=self.aot.weights_bytes,
                           kernel_calls=[{"index": c.index, "name": c.name,
                                          "kind": kernel_kind(c.name), "stages": list(c.stages)}
                                         for c in self.aot.calls])
        if "integer_kernels" in self.report.get("numerics", {}):
            # the fused module still holds kernels that fusion replaced: list the called ones
            called = {c.name for c in self.aot.calls}
            num = self.report["numerics"]
            self.report["numerics"] = dict(num, **{key: [k for k in num[key] if k in called]
                                                   for key in ("integer_kernels", "float_kernels")})
        self._check_board()
        self.pie_max_k = pie_max_k(lowered)
        self.pie_max_n = pie_max_n(lowered)
        self._exe: dict[tuple, Path] = {}
        self.example_input: np.ndarray | None = None
        self.last_stats: dict | None = None   # of the latest simulate(), for the project report

    def _check_board(self):
        b = self.tgt.board
        ram = self.aot.arena_bytes + self.aot.workspace_bytes
        if self.aot.weights_bytes > b.flash_bytes:
            raise ModelTooLargeError(f"weights need {self.aot.weights_bytes} B of flash, the board "
                                     f"has {b.flash_bytes} B")
        if ram > b.sram_bytes + b.psram_bytes:
            raise ModelTooLargeError(f"arena+workspace need {ram} B, the board has "
                                     f"{b.sram_bytes} B SRAM + {b.psram_bytes} B PSRAM")

    def _binary(self, where: str, workers: int = 1, extra_defines=None) -> Path:
        """The model's program for ``where``: "host", "lx106" or "esp32s3", with ``workers`` (1 or
        2) workers: on the host the second is a thread, in the simulators the halves run in
        turn and are counted apart. ``extra_defines`` (e.g. ``FTER_SPLIT_POINT(e)``) are added."""
        if workers not in (1, 2):
            raise ValueError(f"workers must be 1 or 2, not {workers!r}")
        sanitizer = sanitize_requested() if where == "host" else None
        key = (where, workers, sanitizer, tuple(sorted((extra_defines or {}).items())))
        if key not in self._exe:
            from runtime import esp32s3_sim

            build = {"host": functools.partial(build_host, sanitize=sanitizer),
                     "lx106": build_xtensa, "esp32s3": esp32s3_sim.build_esp32s3}[where]
            defines = {"FTER_WORKSPACE_BYTES": max(self.aot.workspace_bytes, 16), "FTER_PROFILE": None,
                       "FTER_PIE_MAX_K": self.pie_max_k, "FTER_PIE_MAX_N": self.pie_max_n,
                       "FTER_WORKERS": workers,
                       **(extra_defines or {})}
            if where != "host":   # per-call cycles inside the micro-kernels (stats "micro_*")
                defines["FTER_MICRO_TIMING"] = None
            if where == "lx106":
                defines["FTER_PIE_COUNT"] = None
            with step(f"building the C for {where}"):
                self._exe[key] = build([self.aot.model_c, self.aot.weights_c, MODEL_MAIN],
                                       self._tmp / f"build_{len(self._exe)}", defines,
                                       generated=[self.aot.kernels_c],
                                       extra_include_dirs=[self.aot.out_dir])
        return self._exe[key]

    def _logits(self, raw: bytes) -> np.ndarray:
        return np.frombuffer(raw, np.float32).reshape(self.aot.output_shape).copy()

    def run(self, x, workers: int = 1) -> np.ndarray:
        """Logits from the generated C compiled for and run on the host (host-sim); ``workers=2``
        runs the split kernel stages on two threads (same bits)."""
        output, _stdout = run_host(self._binary("host", workers),
                                   as_numpy(x, self.input_shape).tobytes())
        return self._logits(output)

    @property
    def weight_bytes_read(self) -> int:
        """Weight bytes the kernel calls read per inference (a weight used by two calls counts
        twice, as does one a call reads twice: the integer MLP once per half or per token block,
        ``fter.weight_reads``): what the flash bound of the latency estimate streams."""
        return sum(c.const_bytes * c.weight_reads for c in self.aot.calls)

    def simulate(self, x, core: str | None = None, workers: int = 2,
                 latency_model: LatencyModel = LatencyModel()) -> tuple[np.ndarray, dict]:
        """Logits and stats from the same C cross-compiled for an Xtensa core and run in QEMU.

        Args:
            x: input shaped like the example input.
            core: ``"esp32s3"`` -- the ESP32-S3's LX7 with the PIE kernels in their real
                instructions (needs an Xtensa QEMU with the esp32s3 machine and an assembler
                configured for the esp32s3 core: see ``runtime.esp32s3_sim``); ``"lx106"`` -- the
                ESP8266 core of Debian's toolchain, running the PIE kernels' exact C emulation;
                default: ``"esp32s3"`` where its tools are found, else ``"lx106"``.
            workers: 2 (default) runs the two-worker build serially, each half of a split stage
                after the other, and counts them apart; 1 runs the one-worker build.
        Returns:
            ``(logits, stats)``: ``stats["core"]``, ``["workers"]``, ``["instructions"]``
            (main(), everything one core executes), ``["critical_path_instructions"]`` (two
            cores: per split stage the longer half, plus everything else; = instructions with
            one worker), ``["critical_by_kind"]``, ``["latency"]`` (milliseconds per kind on one
            and two cores and the flash bound, under ``latency_model``: `fter_tvm.latency`),
            ``["by_kind"]`` (profiled calls by ternary_matmul / attention_matmul / layernorm /
            quantize / softmax / gelu / other), ``["macs_by_kind"]``, ``["per_mac_by_kind"]``,
            ``["per_call"]``, ``["micro_by_kind"]`` / ``["micro_per_mac_by_kind"]``: the part
            spent inside the C micro-kernels (granularity 25 instructions per call), the rest
            being the generated code around them (epilogues, quantizers, softmax);
            on the lx106 also ``["pie_by_kind"]``: the emulated PIE
            instructions per kind (what the LX7 executes as PIE, for modelling its speed).
            Both cores compile the generated C with Debian's lx106 gcc (no FPU: float epilogues
            run as soft-float on both).
        Raises:
            runtime.cbuild.ToolMissingError: a needed tool is missing (named in the message).
        """
        from runtime import esp32s3_sim

        core = core or ("esp32s3" if esp32s3_sim.available() else "lx106")
        if core not in CORES:
            raise ValueError(f"unknown core {core!r}; choose one of {CORES}")
        exe = self._binary(core, workers)
        with step(f"simulating on Xtensa {core}"):
            res = (esp32s3_sim.run_esp32s3 if core == "esp32s3" else run_xtensa)(
                exe, as_numpy(x, self.input_shape).tobytes())
        output, stdout, instructions = res
        # an inference: the run less the kernels' one-time tables (runtime/sim/model_main.c)
        instructions = int(instructions) - int(res.counters.get("setup", 0))
        pie_counts = parse_counters(stdout)   # "p<i>": raw counts, not CCOUNT-scaled
        macs = {row["kernel"]: row["macs"] for row in self.report.get("layers", [])}
        by_kind: dict[str, int] = {}
        critical_by_kind: dict[str, int] = {}
        micro_by_kind: dict[str, int] = {}
        pie_by_kind: dict[str, int] = {}
        macs_by_kind: dict[str, int] = {}
        per_call = []
        for call in self.aot.calls:
            n = int(res.counters.get(f"k{call.index}", 0))
            pie = int(pie_counts.get(f"p{call.index}", 0))
            micro = int(res.counters.get(f"m{call.index}", 0))
            saved = int(res.counters.get(f"s{call.index}", 0))   # the shorter halves
            kind = kernel_kind(call.name)
            by_kind[kind] = by_kind.get(kind, 0) + n
            critical_by_kind[kind] = critical_by_kind.get(kind, 0) + n - saved
            if micro:
                micro_by_kind[kind] = micro_by_kind.get(kind, 0) + micro
            macs_by_kind[kind] = macs_by_kind.get(kind, 0) + macs.get(call.name, 0)
            if pie:
                pie_by_kind[kind] = pie_by_kind.get(kind, 0) + pie
            per_call.append({"index": call.index, "name": call.name, "instructions": n,
                             "critical_path_instructions": n - saved,
                             "micro_instructions": micro, "pie_instructions": pie,
                             "macs": macs.get(call.name, 0)})
        critical = int(instructions) - sum(n - c for n, c in zip(by_kind.values(),
                                                                  critical_by_kind.values()))
        stats = {"core": core, "workers": workers, "instructions": int(instructions),
                 "critical_path_instructions": critical, "by_kind": by_kind,
                 "critical_by_kind": critical_by_kind,
                 "macs_by_kind": {k: v for k, v in macs_by_kind.items() if v},
                 "per_mac_by_kind": {k: by_kind[k] / v for k, v in macs_by_kind.items() if v},
                 "micro_by_kind": micro_by_kind,
                 "micro_per_mac_by_kind": {k: micro_by_kind.get(k, 0) / v
                                           for k, v in macs_by_kind.items() if v},
                 "per_call": per_call}
        if core == "lx106":
            stats["pie_by_kind"] = pie_by_kind
        stats["latency"] = estimate_latency(stats, self.weight_bytes_read, latency_model)
        self.last_stats = stats
        return self._logits(output), stats

    def export_project(self, out_dir, sample_input=None, *, name: str = "fter_app",
                       board=None, num_runs: int = 5, overwrite: bool = False,
                       workers: int = 2) -> Path:
        """Write a ready ESP-IDF project (``idf.py set-target esp32s3 build flash monitor``).

        The project runs the model on ``sample_input`` (default: the example input given to
        ``compile``, else a seeded random one) and holds the report as JSON, PNG and HTML (with
        simulated instructions per layer if ``simulate`` ran). See ``fter_tvm.project``.

        Args:
            out_dir: the project directory; must not exist or be empty unless ``overwrite``.
            sample_input: array or tensor shaped like the model input.
            name: the ESP-IDF project name.
            board: ``BoardLimits`` to size for (default: the target's).
            num_runs: inferences ``app_main`` times.
            overwrite: replace an existing ``out_dir``.
            workers: 2 (default) runs split kernel stages on both cores (a FreeRTOS task pinned
                to core 1), 1 everything on the calling task.
        Returns:
            ``Path(out_dir)``.
        Raises:
            ModelTooLargeError: the model does not fit ``board`` (nothing is written).
            FileExistsError: ``out_dir`` is not empty and ``overwrite`` is False.
        """
        from .project import export_project

        with step("writing the ESP-IDF project"):
            return export_project(self, out_dir, sample_input, name=name, board=board,
                                  num_runs=num_runs, overwrite=overwrite, workers=workers)

    def source_dir(self) -> Path:
        """Directory holding the generated C (model, kernels, weights)."""
        return self.aot.out_dir

    def __del__(self):
        shutil.rmtree(getattr(self, "_tmp", ""), ignore_errors=True)
