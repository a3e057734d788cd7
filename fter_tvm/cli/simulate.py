"""``fter-tvm simulate MODEL``: compile for esp32s3 and run the C in an Xtensa instruction-set
simulator (QEMU: the ESP32-S3's LX7 with PIE where its tools are found, else the lx106); print
executed instructions in total and per kernel kind, with instructions per MAC."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..latency import LatencyModel, format_latency
from .model_source import add_model_arguments, compile_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--check", action="store_true",
                        help="also run the host-simulated build and compare the logits bit for bit")
    parser.add_argument("--json", action="store_true", help="print logits and stats as JSON")
    parser.add_argument("--numerics", choices=("float", "integer"), default=None,
                        help="fixed-point epilogues (integer, the default) or fp32 (float)")
    parser.add_argument("--core", choices=("esp32s3", "lx106"), default=None,
                        help="esp32s3: the LX7 with PIE (needs FTER_QEMU_XTENSA and the esp32s3 "
                             "binutils config, see runtime/esp32s3_sim.py); lx106: the PIE kernels' "
                             "C emulation; default: esp32s3 where its tools are found")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=2,
                        help="2 (default): count the halves of every split kernel stage apart, for "
                             "the two-core critical path; 1: the one-worker build")
    parser.add_argument("--flash-mb-s", type=float, default=LatencyModel.flash_mb_per_s,
                        help="flash read bandwidth of the latency estimate's flash bound, MB/s "
                             "(default: quad SPI at 80 MHz)")
    parser.add_argument("--clock-mhz", type=float, default=LatencyModel.clock_mhz,
                        help="CPU clock of the latency estimate, MHz")


def run(args: argparse.Namespace) -> int:
    from fter_tvm.targets import Esp32s3Target
    from runtime.cbuild import ToolMissingError

    try:
        model = LatencyModel(clock_mhz=args.clock_mhz, flash_mb_per_s=args.flash_mb_s)
        art, x = compile_from_args(args, Esp32s3Target(numerics=args.numerics))
        logits, stats = art.simulate(x, core=args.core, workers=args.workers, latency_model=model)
        host = art.run(x) if args.check else None
    except ToolMissingError as e:
        raise SystemExit(f"fter-tvm simulate: {e}") from None
    except ValueError as e:
        raise SystemExit(f"fter-tvm simulate: {e}") from None
    macs = art.report["macs"]
    flat = logits.reshape(-1)
    res = {"core": stats["core"], "workers": stats["workers"], "instructions": stats["instructions"],
           "critical_path_instructions": stats["critical_path_instructions"],
           "latency": stats["latency"],
           "by_kind": dict(sorted(stats["by_kind"].items())),
           "macs_by_kind": stats["macs_by_kind"], "per_mac_by_kind": stats["per_mac_by_kind"],
           "pie_by_kind": stats.get("pie_by_kind", {}), "micro_by_kind": stats["micro_by_kind"],
           "macs": macs, "instructions_per_mac": stats["instructions"] / macs if macs else None,
           "top5": [int(i) for i in np.argsort(-flat, kind="stable")[:5]],
           "logits": [float(v) for v in flat]}
    if host is not None:
        res["bit_identical_to_host"] = bool(np.array_equal(host.view(np.uint32), logits.view(np.uint32)))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    where = ("the ESP32-S3's LX7 core (QEMU esp32s3; PIE kernels in their own instructions)"
             if res["core"] == "esp32s3" else
             "Xtensa lx106 (QEMU; PIE kernels C-emulated, soft-float: a yardstick, not "
             "ESP32-S3 cycles)")
    print(f"simulated {args.model.ref} on {where}")
    print(f"  instructions  {res['instructions']:,}"
          + (f"  ({res['instructions_per_mac']:.3f} per MAC, {macs:,} MACs)" if macs else ""))
    pie = res["pie_by_kind"]
    print(f"    {'kind':<18}{'instructions':>14}  {'share':>7}  {'per MAC':>8}  {'micro-kernels':>14}"
          f"  {'per MAC':>8}" + (f"  {'emulated PIE':>13}  {'PIE/MAC':>8}" if pie else ""))
    for kind, n in sorted(res["by_kind"].items(), key=lambda kv: -kv[1]):
        kmacs = res["macs_by_kind"].get(kind, 0)
        micro = res["micro_by_kind"].get(kind, 0)
        row = (f"    {kind:<18}{n:>14,}  {100 * n / max(res['instructions'], 1):6.1f}%  "
               + (f"{n / kmacs:8.3f}" if kmacs else f"{'':>8}") + f"  {micro:>14,}  "
               + (f"{micro / kmacs:8.3f}" if kmacs and micro else f"{'':>8}"))
        if pie:
            p = pie.get(kind, 0)
            row += f"  {p:>13,}  " + (f"{p / kmacs:8.3f}" if kmacs and p else f"{'':>8}")
        print(row)
    if stats["workers"] == 2:
        crit = res["critical_path_instructions"]
        print(f"  two cores     {crit:,} instructions on the critical path "
              f"({crit / max(res['instructions'], 1):.3f} of the one-core count)")
    for line in format_latency(res["latency"]):
        print(line)
    print(f"  top-5 classes {res['top5']}")
    if host is not None:
        same = res["bit_identical_to_host"]
        print("  host-sim      " + ("bit-identical logits" if same else "LOGITS DIFFER"))
    return 0 if host is None or res["bit_identical_to_host"] else 1
