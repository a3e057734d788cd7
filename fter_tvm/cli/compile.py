"""``fter-tvm compile MODEL --target esp32s3 -o DIR``: compile a ternary ViT; for esp32s3 write the
ESP-IDF project (with report.json/.html), for x86 print the report (and write report.json)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .model_source import add_model_arguments, compile_from_args


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _project_name(s: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", s):
        raise argparse.ArgumentTypeError(f"project name {s!r}: use letters, digits, '_' and '-'")
    return s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--target", choices=("esp32s3", "x86"), default="esp32s3",
                        help="esp32s3: an ESP-IDF project; x86: an LLVM build (report only)")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                        help="esp32s3: the project directory (required); x86: writes DIR/report.json")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it is not empty")
    parser.add_argument("--name", type=_project_name, default="fter_app", help="ESP-IDF project name")
    parser.add_argument("--runs", type=_positive_int, default=5, help="inferences app_main times")
    parser.add_argument("--strict", action="store_true", help="fail if any layer stays unfused")
    parser.add_argument("--numerics", choices=("float", "integer"), default=None,
                        help="esp32s3: LayerNorm/softmax/GELU/quantizers in fixed point (integer, "
                             "the default with the PIE kernels) or fp32 (float)")
    board = parser.add_argument_group("board limits (default: ESP32-S3-EYE)")
    board.add_argument("--flash-mb", type=_positive_int, default=None, help="flash size in MB (8)")
    board.add_argument("--psram-mb", type=int, default=None, help="PSRAM in MB, 0 for none (8)")
    board.add_argument("--sram-budget-kb", type=_positive_int, default=None,
                       help="internal SRAM for the arena before it moves to PSRAM, KiB (320)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _target(args):
    from dataclasses import replace

    from fter_tvm.targets import BoardLimits, Esp32s3Target

    if args.target != "esp32s3":
        if args.numerics not in (None, "float"):
            raise SystemExit(f"fter-tvm compile: --numerics {args.numerics} is an esp32s3 setting")
        return args.target
    mb = 1024 * 1024
    limits = {k: v for k, v in (("flash_bytes", args.flash_mb and args.flash_mb * mb),
                                ("psram_bytes", None if args.psram_mb is None else args.psram_mb * mb),
                                ("sram_arena_budget", args.sram_budget_kb and args.sram_budget_kb * 1024))
              if v is not None}
    return Esp32s3Target(board=replace(BoardLimits(), **limits), numerics=args.numerics)


def run(args: argparse.Namespace) -> int:
    if args.target == "esp32s3" and args.output is None:
        raise SystemExit("fter-tvm compile: --target esp32s3 needs -o DIR (the ESP-IDF project)")
    if args.output is not None and args.output.exists() and not args.overwrite and (
            not args.output.is_dir() or any(args.output.iterdir())):
        raise SystemExit(f"fter-tvm compile: {args.output} exists and is not empty (use --overwrite)")
    from fter_tvm.esp32s3 import ModelTooLargeError
    from fter_tvm.report_page import report_json

    try:
        art, x = compile_from_args(args, _target(args))
        if args.target == "esp32s3":
            art.export_project(args.output, x, name=args.name, num_runs=args.runs,
                               overwrite=args.overwrite)
        elif args.output is not None:
            args.output.mkdir(parents=True, exist_ok=True)
            (args.output / "report.json").write_bytes(report_json(art.report))
    except (ModelTooLargeError, ValueError, OSError) as e:
        raise SystemExit(f"fter-tvm compile: {e}") from None
    if args.json:
        print(report_json(art.report).decode(), end="")
    elif not args.quiet:
        mem = None
        if args.target == "esp32s3":
            from fter_tvm.project import kernel_scratch_bytes, kernel_tables_bytes, plan_memory

            aot = art.aot
            mem = plan_memory(aot.weights_bytes, aot.arena_bytes, aot.workspace_bytes, art.tgt.board,
                              tables_bytes=kernel_tables_bytes(art),
                              scratch_bytes=kernel_scratch_bytes(art))
        _print_summary(art.report, args, mem)
    return 0


def _print_summary(r: dict, args, mem=None) -> None:
    fused = r["fused"]
    print(f"compiled {args.model.ref} for {r['target']} ({r['pack_format']} packing)")
    print(f"  fused   " + ", ".join(f"{k} {v}" for k, v in sorted(fused.items()) if k != "unfused")
          + f"; unfused: {', '.join(fused['unfused']) or 'none'}")
    print(f"  MACs    {r['macs']:,}")
    print(f"  flash   {r.get('c_weights_bytes', r['flash_bytes']):,} B weights ("
          + ", ".join(f"{k} {v:,}" for k, v in sorted(r["weight_bytes"].items())) + ")")
    if "arena_bytes" in r:
        print(f"  RAM     arena {r['arena_bytes']:,} B + workspace {r['workspace_bytes']:,} B")
    if args.output is not None:
        what = "ESP-IDF project" if r["target"] == "esp32s3" else "report"
        print(f"  wrote   {what} to {args.output}"
              + ("  (idf.py set-target esp32s3 build flash monitor)" if r["target"] == "esp32s3" else ""))
    if mem is not None:
        print(f"  board   arena in {mem.arena_place}, app partition {mem.app_partition_bytes:,} B "
              f"of {mem.flash_size_mb} MB flash")
