"""``fter-tvm simulate MODEL``: compile for esp32s3 and run the C in the Xtensa instruction-set
simulator (QEMU, lx106); print executed instructions in total and by kernel kind."""

from __future__ import annotations

import argparse
import json

import numpy as np

from .model_source import add_model_arguments, compile_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--check", action="store_true",
                        help="also run the host-simulated build and compare the logits bit for bit")
    parser.add_argument("--json", action="store_true", help="print logits and stats as JSON")


def run(args: argparse.Namespace) -> int:
    from runtime.cbuild import ToolMissingError

    try:
        art, x = compile_from_args(args, "esp32s3")
        logits, stats = art.simulate(x)
        host = art.run(x) if args.check else None
    except ToolMissingError as e:
        raise SystemExit(f"fter-tvm simulate: {e}") from None
    except ValueError as e:
        raise SystemExit(f"fter-tvm simulate: {e}") from None
    macs = art.report["macs"]
    flat = logits.reshape(-1)
    res = {"instructions": stats["instructions"], "by_kind": dict(sorted(stats["by_kind"].items())),
           "macs": macs, "instructions_per_mac": stats["instructions"] / macs if macs else None,
           "top5": [int(i) for i in np.argsort(-flat, kind="stable")[:5]],
           "logits": [float(v) for v in flat]}
    if host is not None:
        res["bit_identical_to_host"] = bool(np.array_equal(host.view(np.uint32), logits.view(np.uint32)))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"simulated {args.model.ref} on Xtensa lx106 (QEMU; soft-float, instruction counts are a "
          "yardstick, not ESP32-S3 cycles)")
    print(f"  instructions  {res['instructions']:,}"
          + (f"  ({res['instructions_per_mac']:.1f} per MAC, {macs:,} MACs)" if macs else ""))
    for kind, n in sorted(res["by_kind"].items(), key=lambda kv: -kv[1]):
        print(f"    {kind:<18}{n:>14,}  {100 * n / max(res['instructions'], 1):5.1f} %")
    print(f"  top-5 classes {res['top5']}")
    if host is not None:
        same = res["bit_identical_to_host"]
        print("  host-sim      " + ("bit-identical logits" if same else "LOGITS DIFFER"))
    return 0 if host is None or res["bit_identical_to_host"] else 1
