"""The compile report as files: ``report.json``, ``report.png`` (live arena bytes over the kernel
sequence) and a self-contained ``report.html`` (summary, the plot, a per-layer table).

All three are deterministic: sorted JSON keys, matplotlib's default style with a fixed size, dpi
and no PNG metadata, and no timestamps anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import tvm
from tvm.ir.expr import Constant

from .report import _bindings, _kernel_of

# storage format of a constant, by dtype: packed ternary codes are the only uint8 constants
_FORMAT_OF_DTYPE = {"uint8": "packed_ternary", "float32": "fp32", "float16": "fp16"}
_KIND_COLORS = {"ternary_matmul": "#1f77b4", "attention_matmul": "#d62728", "layernorm": "#2ca02c",
                "quantize": "#9467bd", "softmax": "#ff7f0e", "gelu": "#8c564b", "other": "#7f7f7f",
                "decode_f16": "#17becf", "outside kernels": "#e377c2"}


def layer_weight_bytes(fused_mod: tvm.IRModule) -> list[tuple[str, dict[str, int]]]:
    """Constant bytes of every fused kernel call of ``fused_mod`` by storage format
    (``packed_ternary``, ``fp32``, ``fp16``, or the dtype), in call order: ``(kernel, {format: B})``."""
    out = []
    for binding in _bindings(fused_mod):
        kernel = _kernel_of(fused_mod, binding.value)
        if kernel is None:
            continue
        by_format: dict[str, int] = {}
        for arg in binding.value.args[1].fields:
            if isinstance(arg, Constant):
                arr = arg.value.numpy()
                key = _FORMAT_OF_DTYPE.get(str(arr.dtype), str(arr.dtype))
                by_format[key] = by_format.get(key, 0) + arr.nbytes
        out.append((kernel[0], dict(sorted(by_format.items()))))
    return out


def with_layer_formats(report: dict, fused_mod: tvm.IRModule) -> dict:
    """A copy of ``report`` whose fused ``layers`` rows carry ``weight_bytes`` by format."""
    formats = iter(layer_weight_bytes(fused_mod))
    layers = []
    for row in report.get("layers", []):
        row = dict(row)
        if not row["kind"].startswith("relax."):   # unfused plain ops have no constants of their own
            name, by_format = next(formats, (None, None))
            if name == row["kernel"]:
                row["weight_bytes"] = by_format
        layers.append(row)
    return dict(report, layers=layers)


def layer_rows(report: dict, timeline: list[int], stats: dict | None) -> list[dict]:
    """One row per kernel step of the executor: name, kind, MACs and weight bytes of the fused
    layer it runs (if any), live arena bytes at that step, simulated instructions (if simulated)."""
    layers = [row for row in report.get("layers", []) if not row["kind"].startswith("relax.")]
    per_call = {c["index"]: c["instructions"] for c in (stats or {}).get("per_call", [])}
    rows, li = [], 0
    calls = list(report.get("kernel_calls", []))
    if len(timeline) > len(calls):   # the executor's final output copy is one more step
        calls.append({"index": len(calls), "name": "copy_output", "kind": "other"})
    for call in calls:
        row = {"step": call["index"], "kernel": call["name"], "kind": call["kind"], "macs": 0,
               "weight_bytes": {}, "live_arena_bytes": timeline[call["index"]],
               "instructions": per_call.get(call["index"])}
        if li < len(layers) and layers[li]["kernel"] == call["name"]:
            row["macs"] = layers[li]["macs"]
            row["weight_bytes"] = layers[li].get("weight_bytes", {"constants": layers[li]["const_bytes"]})
            li += 1
        rows.append(row)
    return rows


def timeline_png(rows: list[dict], arena_bytes: int, sram_budget: int | None = None) -> bytes:
    """PNG of live arena bytes per kernel step, coloured by kernel kind, with the arena size."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context():
        matplotlib.rcdefaults()   # the user's matplotlibrc must not change our bytes
        fig = Figure(figsize=(9, 3.4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        steps = np.array([r["step"] for r in rows])
        live = np.array([r["live_arena_bytes"] for r in rows]) / 1024
        kinds = [r["kind"] for r in rows]
        for kind in sorted(set(kinds)):
            sel = np.array([k == kind for k in kinds])
            ax.bar(steps[sel], live[sel], width=0.9, color=_KIND_COLORS.get(kind, "#bcbd22"), label=kind)
        ax.axhline(arena_bytes / 1024, color="black", linestyle="--", linewidth=1,
                   label=f"arena {arena_bytes} B")
        if sram_budget and sram_budget < 2 * arena_bytes:   # only when it is on a readable scale
            ax.axhline(sram_budget / 1024, color="#d62728", linestyle=":", linewidth=1,
                       label=f"SRAM budget {sram_budget} B")
        ax.set_xlabel("kernel step")
        ax.set_ylabel("live arena KiB")
        ax.set_title("Arena: bytes live at each kernel call")
        ax.set_xlim(-0.5, max(len(rows), 1) - 0.5)
        ax.set_ylim(0, max(live.max(initial=0), arena_bytes / 1024) * 1.35)   # room for the legend
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, ncol=4, loc="upper left")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def latency_png(est: dict) -> bytes:
    """PNG of the latency estimate: one horizontal bar for one core, one for two cores (if
    simulated with two workers), each stacked by kernel kind, and the flash bound as a line."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bars = [("1 core", "ms_one_core")]
    if est.get("two_cores_ms") is not None:
        bars.append(("2 cores", "ms_two_cores"))
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        fig = Figure(figsize=(9, 1.2 + 0.6 * len(bars)))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for y, (label, key) in enumerate(bars):
            left = 0.0
            for kind, row in est["by_kind"].items():
                ax.barh(y, row[key], left=left, height=0.6, color=_KIND_COLORS.get(kind, "#bcbd22"),
                        label=kind if y == 0 else None)
                left += row[key]
        ax.axvline(est["flash_bound_ms"], color="black", linestyle="--", linewidth=1,
                   label=f"flash bound {est['flash_bound_ms']:.1f} ms")
        ax.set_yticks(range(len(bars)), [b[0] for b in bars])
        ax.invert_yaxis()
        ax.set_xlabel(f"estimated ms ({est['assumptions']['text']})", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside the bars
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _latency_section(est: dict | None) -> str:
    if est is None:
        return ""
    two = est["two_cores_ms"] is not None
    headers = ["kernel kind", "instructions", "ms, 1 core"] + (
        ["critical path instructions", "ms, 2 cores"] if two else [])
    fmt = lambda v: None if v is None else f"{v:.2f}"  # noqa: E731
    body = [[k, r["instructions"], fmt(r["ms_one_core"])]
            + ([r["critical_path_instructions"], fmt(r["ms_two_cores"])] if two else [])
            for k, r in est["by_kind"].items()]
    body.append(["total", sum(r["instructions"] for r in est["by_kind"].values()),
                 fmt(est["one_core_ms"])] + (
        [sum(r["critical_path_instructions"] for r in est["by_kind"].values()),
         fmt(est["two_cores_ms"])] if two else []))
    png = base64.b64encode(latency_png(est)).decode()
    return f"""<h2>Latency estimate ({html.escape(str(est['core']))} core)</h2>
<p>Simulated instructions turned into time: {html.escape(est['assumptions']['text'])}.
Two cores: per split kernel stage the longer half, plus everything that runs on one worker.
Flash bound: {est['weight_bytes_read']:,} B of weights per inference at
{est['assumptions']['flash_mb_per_s']:g} MB/s = {est['flash_bound_ms']:.2f} ms.
Estimate (the larger of compute and flash): {est['estimate_one_core_ms']:.2f} ms on one core{
    f", {est['estimate_two_cores_ms']:.2f} ms on two" if two else ""} -- not measured on a board.</p>
<img alt="estimated milliseconds per kernel kind" src="data:image/png;base64,{png}">
{_table(headers, body, 1)}
"""


def report_json(report: dict) -> bytes:
    """Canonical JSON of a report: sorted keys, numpy scalars as plain numbers."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"{type(o).__name__} in the report is not JSON serialisable")

    return (json.dumps(report, indent=2, sort_keys=True, default=default) + "\n").encode()


def _table(headers: list[str], body: list[list], numeric_from: int) -> str:
    def cell(i, v, tag):
        cls = ' class="n"' if i >= numeric_from else ""
        text = "" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))
        return f"<{tag}{cls}>{html.escape(text)}</{tag}>"

    head = "<tr>" + "".join(cell(i, h, "th") for i, h in enumerate(headers)) + "</tr>"
    rows = "\n".join("<tr>" + "".join(cell(i, v, "td") for i, v in enumerate(r)) + "</tr>" for r in body)
    return f"<table>\n{head}\n{rows}\n</table>"


def report_html(report: dict, rows: list[dict], png: bytes) -> bytes:
    """A self-contained HTML page (inline CSS, the PNG as a data URI)."""
    formats = sorted({f for r in rows for f in r["weight_bytes"]})
    simulated = any(r["instructions"] is not None for r in rows)
    headers = ["step", "kernel", "kind", "MACs"] + [f"{f} B" for f in formats] + ["live arena B"]
    headers += ["instructions"] if simulated else []
    body = []
    for r in rows:
        line = [r["step"], r["kernel"], r["kind"], r["macs"]] + [r["weight_bytes"].get(f, 0) for f in formats]
        body.append(line + [r["live_arena_bytes"]] + ([r["instructions"]] if simulated else []))
    total = ["", "total", "", sum(r["macs"] for r in rows)]
    total += [sum(r["weight_bytes"].get(f, 0) for r in rows) for f in formats]
    total += [max((r["live_arena_bytes"] for r in rows), default=0)]
    total += [sum(r["instructions"] or 0 for r in rows)] if simulated else []
    body.append(total)
    project = report.get("project", {})
    summary = [
        ["target", report.get("target")], ["packing format", report.get("pack_format")],
        ["flash: weights (C arrays)", report.get("c_weights_bytes")],
        *[[f"flash: {k}", v] for k, v in sorted(report.get("weight_bytes", {}).items())],
        ["peak arena", report.get("arena_bytes")], ["arena placement", project.get("arena_place")],
        ["kernel workspace", report.get("workspace_bytes")],
        ["app partition", project.get("app_partition_bytes")], ["MACs", report.get("macs")],
        *[[f"fused {k}", v] for k, v in sorted(report.get("fused", {}).items()) if k != "unfused"],
        ["unfused nodes", ", ".join(report.get("fused", {}).get("unfused", [])) or "none"],
    ]
    if report.get("simulation"):
        summary.append(["simulated instructions (lx106 ISS)", report["simulation"]["instructions"]])
    title = html.escape(f"fter-tvm report: {project.get('name', 'model')}")
    sim_note = ("; instructions executed in the Xtensa lx106 simulator (soft-float: a yardstick, "
                "not ESP32-S3 cycles)" if simulated else
                " (call <code>simulate()</code> before exporting to add simulated instructions)")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; }}
th {{ background: #f0f0f0; }} td.n, th.n {{ text-align: right; }}
tr:last-child td {{ font-weight: bold; }}
</style></head><body>
<h1>{title}</h1>
<h2>Summary</h2>
{_table(["quantity", "value"], summary, 1)}
<h2>Arena over the kernel sequence</h2>
<img alt="live arena bytes per kernel step" src="data:image/png;base64,{base64.b64encode(png).decode()}">
{_latency_section((report.get("simulation") or {}).get("latency"))}
<h2>Per layer</h2>
<p>One row per kernel call of the executor. Weight bytes by storage format (packed ternary codes,
fp32 scales and biases, fp16 embeddings); live arena bytes at that step{sim_note}.</p>
{_table(headers, body, 3)}
</body></html>
"""
    return page.encode()


def report_files(report: dict, timeline: list[int], stats: dict | None,
                 fused_mod: tvm.IRModule | None = None) -> dict[str, bytes]:
    """``report.json``, ``report.png`` and ``report.html`` for an esp32s3 build.

    Args:
        report: the artifact's report (plus a ``project`` section when exported).
        timeline: live arena bytes per kernel step (``ArenaPlan.timeline``).
        stats: the latest ``simulate()`` stats, or None.
        fused_mod: the fused module, to split each layer's weight bytes by storage format.
    """
    if fused_mod is not None:
        report = with_layer_formats(report, fused_mod)
    report = dict(report, arena_timeline=list(timeline))
    if stats is not None:
        report["simulation"] = stats
    rows = layer_rows(report, timeline, stats)
    png = timeline_png(rows, report.get("arena_bytes", max(timeline, default=0)),
                       report.get("project", {}).get("sram_arena_budget"))
    return {"report.json": report_json(report), "report.png": png,
            "report.html": report_html(report, rows, png)}
