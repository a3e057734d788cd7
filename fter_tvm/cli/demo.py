"""``fter-tvm demo``: the digits FTerViT — accuracy of teacher and ternary student, model sizes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _existing_path(s: str) -> Path:
    p = Path(s)
    if not (p.exists() or p.with_suffix(".json").exists()):
        raise argparse.ArgumentTypeError(f"checkpoint not found: {s}")
    return p


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retrain", action="store_true",
                        help="train teacher and student now (about 1-3 min) instead of loading the "
                             "shipped checkpoint")
    parser.add_argument("--out", type=Path, default=None,
                        help="with --retrain: directory to save digits_fter_vit.{pt,json} in")
    parser.add_argument("--checkpoint", type=_existing_path, default=None,
                        help="evaluate this checkpoint instead of the shipped one")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--no-compile", action="store_true",
                        help="only accuracy and sizes; skip the x86/esp32s3 builds and simulators")
    parser.add_argument("--project", type=Path, default=Path("out/fter_digits"),
                        help="where to write the ESP-IDF project and report (default: %(default)s)")
    parser.add_argument("--sim", type=int, default=8, metavar="N",
                        help="test images to run in the Xtensa simulator (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from fter_tvm.data import digits_split
    from fter_tvm.models import load_checkpoint, model_size_bytes
    from fter_tvm.models.checkpoint import DEMO_CHECKPOINT, read_checkpoint_json
    from fter_tvm.train import evaluate, train_demo

    torch.set_num_threads(2)
    if args.retrain:
        r = train_demo(args.out, progress=not args.no_progress)
        model = r.pop("student")
        res = {"source": "trained now", **r}
    else:
        path = args.checkpoint or DEMO_CHECKPOINT
        model = load_checkpoint(path)
        meta = read_checkpoint_json(path).get("meta", {})
        *_, x_te, y_te = digits_split(seed=meta.get("settings", {}).get("seed", 0))
        res = {"source": str(path), "student_acc": evaluate(model, x_te, y_te),
               "teacher_acc": meta.get("teacher_acc"), "recorded": meta, "config": model.config}
    sizes = model_size_bytes(model)
    res["sizes"] = {k: sizes[k] for k in ("params", "fp32", "2bit", "base3")}
    if not args.no_compile:
        from fter_tvm.demo import compile_demo

        *_, x_te, y_te = digits_split()
        res["compiled"] = compile_demo(model, x_te, y_te, args.project, n_sim=args.sim)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        _print_human(res, args.retrain)
        if "compiled" in res:
            from fter_tvm.demo import print_compile_demo

            print_compile_demo(res["compiled"])
    return 0


def _print_human(res: dict, retrained: bool) -> None:
    c, sz = res["config"], res["sizes"]
    print(f"FTerViT digits demo ({res['source']})")
    print(f"  model   img {c['img_size']}x{c['img_size']}x{c['in_chans']}, patch {c['patch_size']}, "
          f"dim {c['embed_dim']}, depth {c['depth']}, heads {c['num_heads']}, "
          f"mlp x{c['mlp_ratio']:g}, {c['num_classes']} classes, {sz['params']:,} params")
    teacher = res.get("teacher_acc")
    note = "" if retrained else "  (recorded when the checkpoint was trained)"
    if teacher is not None:
        print(f"  teacher FP32    test accuracy {100 * teacher:6.2f} %{note}")
    print(f"  student ternary test accuracy {100 * res['student_acc']:6.2f} %  (360 held-out digits)")
    if retrained:
        print(f"  train time {res['total_s']:.1f} s wall (teacher {res['teacher_s']:.1f} s, "
              f"phase 1 KD {res['kd_s']:.1f} s, phase 2 QAT {res['qat_s']:.1f} s)")
        if res.get("checkpoint"):
            print(f"  saved {res['checkpoint']}")
    print(f"  size    fp32 {sz['fp32']:,} B | 2-bit {sz['2bit']:,} B ({sz['fp32'] / sz['2bit']:.1f}x) "
          f"| base-3 {sz['base3']:,} B ({sz['fp32'] / sz['base3']:.1f}x)")
