"""``fter-tvm bench --target x86 --model NAME``: fter-tvm vs PyTorch eager and ONNX Runtime
(fp32, dynamic int8) on one timm architecture; the last line is ``ratio_vs_ort_int8=...``."""

from __future__ import annotations

import argparse
import json


def _at_least(minimum: int):
    def check(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            v = minimum - 1
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {s!r}")
        return v

    return check


def _model_arg(s: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as int, float, true/false, or else a string."""
    key, sep, raw = s.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(raw.lower(), raw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("x86",), default="x86",
                        help="where to run (x86: this machine)")
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="timm ViT/DeiT name, e.g. deit_tiny_patch16_224 (random weights, "
                             "ternarized for fter-tvm)")
    parser.add_argument("--set", type=_model_arg, action="append", default=[], metavar="KEY=VALUE",
                        help="timm.create_model override, repeatable (e.g. --set img_size=384)")
    parser.add_argument("--runs", type=_at_least(1), default=20, help="timed runs per engine (20)")
    parser.add_argument("--warmup", type=_at_least(0), default=5, help="untimed runs per engine (5)")
    parser.add_argument("--threads", type=_at_least(1), default=2, help="threads per engine (2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and input (0)")
    parser.add_argument("--profile", action="store_true", help="also print per-kernel times")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (still "
                        "ending with the ratio line)")


def run(args: argparse.Namespace) -> int:
    from fter_tvm.bench import bench, format_table

    try:
        result = bench(args.model, target=args.target, runs=args.runs, warmup=args.warmup,
                       threads=args.threads, seed=args.seed, model_kwargs=dict(args.set),
                       profile=args.profile)
    except (RuntimeError, ValueError) as e:
        raise SystemExit(f"fter-tvm bench: {e}") from None
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "report"}, indent=2))
        print(f"ratio_vs_ort_int8={result['ratio_vs_ort_int8']:.3f}")
    else:
        print(format_table(result))
    return 0
