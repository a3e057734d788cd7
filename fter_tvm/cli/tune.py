"""``fter-tvm tune MODEL --target esp32s3 --trials N --work-dir DIR``: search schedules of the
model's ternary kernels into a database that ``fter-tvm compile --tuning-db DIR`` applies."""

from __future__ import annotations

import argparse
from pathlib import Path

from .model_source import example_input, load_model, model_source, npy_file, shape


def _positive_int(s: str) -> int:
    if not s.isdigit() or int(s) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return int(s)


def _host_port(s: str) -> str:
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {s!r}")
    return s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", type=model_source,
                        help="FTerViT checkpoint (.pt/.json), ONNX file, or a timm ViT/DeiT name")
    parser.add_argument("--target", choices=("esp32s3", "x86"), default="esp32s3",
                        help="x86: wall time (local or RPC); esp32s3: instructions in the Xtensa ISS")
    parser.add_argument("--trials", type=_positive_int, default=64,
                        help="measurements over all kernels, counting those already in DIR (64)")
    parser.add_argument("--work-dir", type=Path, default=Path("fter_tuning"), metavar="DIR",
                        help="database directory; re-running resumes (default ./fter_tuning)")
    parser.add_argument("--input-shape", type=shape, default=None, help="e.g. 1,3,224,224")
    parser.add_argument("--input", type=npy_file, default=None, metavar="FILE.npy",
                        help="input for the end-to-end comparison (default: noise from --seed)")
    parser.add_argument("--seed", type=int, default=0, help="seed of inputs, timm weights, search")
    parser.add_argument("--pack-format", choices=("b3", "b2"), default=None,
                        help="ternary packing (compile with the same one)")
    parser.add_argument("--kinds", default=None, metavar="K1,K2",
                        help="kernel kinds to tune (default: every kind with a design space)")
    parser.add_argument("--rpc-tracker", type=_host_port, default=None, metavar="HOST:PORT",
                        help="x86: measure on the servers of this TVM RPC tracker")
    parser.add_argument("--rpc-key", default=None, help="device key of the RPC servers")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip compiling and measuring the whole model tuned vs untuned")


def run(args: argparse.Namespace) -> int:
    if args.rpc_tracker and not args.rpc_key:
        raise SystemExit("fter-tvm tune: --rpc-tracker needs --rpc-key")
    import torch

    from fter_tvm.tune import tune

    try:
        model, shape_ = load_model(args.model, args.input_shape, args.seed)
        x = example_input(shape_, args.input, args.seed)
        tune(model, target=args.target, trials=args.trials, work_dir=args.work_dir,
             example_inputs=None if isinstance(model, str) else (torch.from_numpy(x),),
             pack_format=args.pack_format, kinds=args.kinds.split(",") if args.kinds else None,
             rpc_tracker=args.rpc_tracker, rpc_key=args.rpc_key, seed=args.seed,
             compare=not args.no_compare, progress=(lambda line: None) if args.quiet else print)
    except ValueError as e:
        raise SystemExit(f"fter-tvm tune: {e}") from None
    if not args.quiet:
        print(f"database: {args.work_dir} (fter-tvm compile ... --tuning-db {args.work_dir})")
    return 0
