"""``fter_tvm.bench``: fter-tvm against its peers on one architecture, measured in the same run.

For a timm ViT/DeiT name: the FP32 timm model (random weights) runs in PyTorch eager, in ONNX
Runtime (fp32) and in ONNX Runtime with dynamic int8 quantization (``quantize_dynamic``); its
ternarized copy (``fter_tvm.models.ternarize``) is compiled by fter-tvm. Batch 1, the same thread
count everywhere; each engine gets warm-up runs, then the median of ``runs`` timed runs, taken in
interleaved blocks (see :func:`_interleaved_median_ms`).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = ("fter-tvm", "torch-fp32", "ort-fp32", "ort-int8")


BLOCK = 5      # timed runs per engine per round
SETTLE_S = 0.3  # pause before each block: the previous engine's idle threads stop spinning


def _interleaved_median_ms(engines: dict, runs: int, warmup: int) -> dict:
    """Median ms per engine. After ``warmup`` calls each, engines take turns in blocks of BLOCK
    timed calls (one untimed call first, to re-warm caches and thread pools): on a machine shared
    with other jobs, load that comes and goes then falls on every engine alike, where one long
    stretch per engine would hand the quiet minutes to whichever ran first.

    The engines share the process, and each one's thread pool (OpenMP for torch, ORT's, TVM's)
    busy-waits for a while after its last task; on 2 cores that starved the next engine (torch
    measured 45x slower right after the others), so every block starts after SETTLE_S of quiet.
    """
    for fn in engines.values():
        time.sleep(SETTLE_S)
        for _ in range(warmup):
            fn()
    times = {name: [] for name in engines}
    while min(len(t) for t in times.values()) < runs:
        for name, fn in engines.items():
            time.sleep(SETTLE_S)
            fn()
            for _ in range(min(BLOCK, runs - len(times[name]))):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t) * 1e3) for name, t in times.items()}


def _ort_sessions(fp_model, x, threads: int, workdir: Path):
    """ONNX export of the FP model and its dynamic-int8 twin, as ORT sessions."""
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp_path, int8_path = workdir / "model_fp32.onnx", workdir / "model_int8.onnx"
    torch.onnx.export(fp_model, (x,), str(fp_path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    quantize_dynamic(str(fp_path), str(int8_path), weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return {name: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
            for name, p in (("ort-fp32", fp_path), ("ort-int8", int8_path))}


def _settled(fn, *args):
    time.sleep(SETTLE_S)
    return fn(*args)


def kernel_profile(art, x, runs: int = 5) -> list[dict]:
    """Time every call the Relax VM makes (PrimFuncs and builtins) over ``runs`` inferences.

    Returns rows ``{"name", "calls", "ms", "share"}`` per callee, slowest first: ``ms`` is the
    median over the runs of that callee's time per inference (robust to a preempted run on a
    shared machine). The instrumentation adds a few microseconds per call, so builtins look
    slower than they are and ``share`` is the honest column.
    """
    import tvm

    vm = art._vm
    per_run, calls, start = [], collections.Counter(), {}

    def instrument(_func, name, before, _ret, *_args):
        if before:
            start[name] = time.perf_counter()
        else:
            per_run[-1][name] += time.perf_counter() - start[name]
            calls[name] += 1
        return 0

    xt = tvm.runtime.tensor(np.ascontiguousarray(x, dtype=np.float32))
    vm["main"](xt)
    vm.set_instrument(instrument)
    try:
        for _ in range(runs):
            per_run.append(collections.defaultdict(float))
            vm["main"](xt)
    finally:
        vm.set_instrument(lambda *_a: 0)
    ms = {name: float(np.median([r[name] for r in per_run])) * 1e3 for name in calls}
    whole = sum(ms.values())
    rows = [{"name": k, "calls": calls[k] // runs, "ms": v, "share": v / whole} for k, v in ms.items()]
    return sorted(rows, key=lambda r: -r["ms"])


PEAK_PROBE = Path(__file__).resolve().parent.parent / "runtime" / "bench" / "x86_peak.c"
# probe name (x86_peak.c output) -> label in the table
PEAK_NAMES = {"int8_vpdpbusd": "int8 (vpdpbusd)", "int8_vpmaddubsw": "int8 (vpmaddubsw+vpaddw)",
              "int16_vpmaddwd": "int16 (vpmaddwd+vpaddd)", "fp32_fma": "fp32 FMA"}


def machine_peak(threads: int) -> dict[str, float]:
    """GMAC/s of this machine's multiply-accumulate instructions on ``threads`` threads at once:
    ``runtime/bench/x86_peak.c`` (12 independent chains per thread, inline asm), built with the
    host C compiler. Keys are the probe names of :data:`PEAK_NAMES` the CPU supports.

    Raises:
        RuntimeError: no C compiler, or the probe failed (its stderr is in the message).
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("machine_peak needs a C compiler (gcc or cc) on PATH")
    with tempfile.TemporaryDirectory() as d:
        exe = Path(d) / "x86_peak"
        for cmd in ([cc, "-O2", "-pthread", str(PEAK_PROBE), "-o", str(exe)], [str(exe), str(threads)]):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {proc.stderr.strip()}")
    return {name: float(value) for name, value in (line.split() for line in proc.stdout.splitlines())}


def bench(model_name: str, target="x86", runs: int = 20, warmup: int = 5, threads: int = 2,
          seed: int = 0, model_kwargs: dict | None = None, profile: bool = False,
          fidelity_inputs: int = 8) -> dict:
    """Benchmark fter-tvm against PyTorch eager and ONNX Runtime (fp32, dynamic int8).

    Args:
        model_name: timm model name (a ViT/DeiT that ``ternarize`` accepts).
        target: fter-tvm target; only ``"x86"`` (or an ``X86Target``) runs on this machine.
        runs, warmup: timed and untimed inferences per engine (the median of ``runs`` is reported).
        threads: threads for every engine (TVM thread pool, torch, ORT intra-op).
        seed: seed of the random weights and of the inputs. LayerScale gammas and near-zero
            parameters of the ternarized model get O(1) random values first
            (:func:`fter_tvm.models.randomize_near_zero`): at timm's init (LayerScale 1e-5 in
            DeiT-III) the blocks barely touch the logits and any error in them would go unseen.
        model_kwargs: extra ``timm.create_model`` arguments (e.g. a tiny config for tests).
        profile: also time each kernel of the fter-tvm build (``kernel_profile``, with GMAC/s where
            the report knows the kernel's MACs) and measure the machine's peak rates
            (:func:`machine_peak`) for the gap to peak.
        fidelity_inputs: random inputs on which fter-tvm's logits are compared with PyTorch's.

    Returns:
        ``{"model", "threads", "runs", "ms": {engine: ms}, "compile_s", "max_abs_dlogit",
        "rel_err", "top1_agree", "fidelity", "ratio_vs_ort_int8", "report", "profile", "peak"}``;
        ``fidelity`` (:func:`fter_tvm.models.fidelity`) compares fter-tvm with the ternarized
        PyTorch model on ``fidelity_inputs`` inputs; ``max_abs_dlogit``, ``rel_err`` and
        ``top1_agree`` (judged only where PyTorch's top-2 margin is clear, None if nowhere) are
        copied from it.

    Raises:
        ValueError: a target other than x86, or a model ``ternarize`` rejects.
    """
    import timm
    import torch

    from . import compile as fter_compile
    from .models import fidelity, randomize_near_zero, ternarize
    from .targets import X86Target, get_target

    tgt = get_target(target)
    if not isinstance(tgt, X86Target):
        raise ValueError(f"bench runs on this machine: target must be x86, got {tgt.name!r}")
    if tgt.num_threads != threads:
        from dataclasses import replace

        tgt = replace(tgt, num_threads=threads)
    torch.manual_seed(seed)
    fp = timm.create_model(model_name, pretrained=False, **(model_kwargs or {})).eval()
    student = ternarize(fp).eval()
    randomize_near_zero(student, seed=seed)
    shape = (1, *fp.default_cfg.get("input_size", (3, 224, 224)))
    if model_kwargs and "img_size" in model_kwargs:
        shape = (1, fp.patch_embed.proj.in_channels, *fp.patch_embed.img_size)
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(*shape, generator=g) for _ in range(max(1, fidelity_inputs))]
    x, xn = xs[0], xs[0].numpy()

    t0 = time.perf_counter()
    art = fter_compile(student, tgt, (x,))
    compile_s = time.perf_counter() - t0
    with torch.no_grad():
        ref = np.concatenate([student(xi).numpy() for xi in xs])
    fid = fidelity(ref, np.concatenate([art.run(xi.numpy()) for xi in xs]))

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as d, torch.no_grad():
            sessions = _ort_sessions(fp, x, threads, Path(d))
            engines = {"fter-tvm": lambda: art.run(xn), "torch-fp32": lambda: fp(x)}
            engines.update({name: (lambda s=sess: s.run(None, {"x": xn}))
                            for name, sess in sessions.items()})
            ms = _interleaved_median_ms(engines, runs, warmup)
    finally:
        torch.set_num_threads(torch_threads)
    return {
        "model": model_name, "threads": threads, "runs": runs, "ms": ms,
        "compile_s": compile_s,
        "max_abs_dlogit": fid["max_abs_dlogit"], "rel_err": fid["rel_err"],
        "top1_agree": fid["top1_agree"], "fidelity": fid,
        "ratio_vs_ort_int8": ms["fter-tvm"] / ms["ort-int8"],
        "report": art.report,
        "profile": _with_rates(_settled(kernel_profile, art, xn), art.report) if profile else None,
        "peak": _settled(machine_peak, threads) if profile else None,
    }


def _with_rates(rows: list[dict], report: dict) -> list[dict]:
    """Add ``gmacs`` (GMAC/s) to the profile rows of kernels whose MACs the report counts."""
    macs = {layer["kernel"]: layer["macs"] for layer in report["layers"]}
    for row in rows:
        m = macs.get(row["name"], 0)
        row["gmacs"] = m * row["calls"] / (row["ms"] * 1e6) if m and row["ms"] > 0 else None
    return rows


def format_table(result: dict) -> str:
    """The human table: ms per engine and each engine's speedup over it; last line the ratio."""
    from .models import format_fidelity

    ms = result["ms"]
    lines = [f"{result['model']}: batch 1, {result['threads']} threads, median of {result['runs']} runs",
             f"{'engine':<12}{'ms':>10}{'fter-tvm speedup':>18}"]
    for name in ENGINES:
        lines.append(f"{name:<12}{ms[name]:>10.2f}{ms[name] / ms['fter-tvm']:>17.2f}x")
    lines.append(f"fter-tvm compile {result['compile_s']:.1f} s; vs ternarized torch (LayerScale and "
                 f"near-zero parameters randomized): {format_fidelity(result['fidelity'])}")
    if result.get("profile"):
        lines.append(f"{'kernel':<52}{'calls':>6}{'ms':>9}{'share':>8}{'GMAC/s':>8}")
        for row in result["profile"][:15]:
            rate = f"{row['gmacs']:>8.1f}" if row.get("gmacs") else ""
            lines.append(f"{row['name'][:51]:<52}{row['calls']:>6}{row['ms']:>9.3f}"
                         f"{100 * row['share']:>7.1f}%{rate}")
    if result.get("peak"):
        peak = result["peak"]
        lines.append(f"machine peak, {result['threads']} threads (GMAC/s): " + ", ".join(
            f"{PEAK_NAMES.get(k, k)} {v:.1f}" for k, v in peak.items()))
        best_int = max((v for k, v in peak.items() if k.startswith("int8")), default=None)
        if best_int:
            rate = result["report"]["macs"] / (result["ms"]["fter-tvm"] * 1e6)
            lines.append(f"fter-tvm end to end {rate:.1f} GMAC/s = {100 * rate / best_int:.0f}% "
                         f"of the int8 peak")
    lines.append(f"ratio_vs_ort_int8={result['ratio_vs_ort_int8']:.3f}")
    return "\n".join(lines)
