"""The end-to-end demo: the trained digits FTerViT through both targets and the simulators."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch


def _top1(logits: np.ndarray) -> np.ndarray:
    return logits.reshape(len(logits), -1).argmax(1)


def compile_demo(model, x: torch.Tensor, y: torch.Tensor, project_dir: Path | None,
                 n_sim: int = 8, overwrite: bool = True) -> dict:
    """Compile ``model`` for x86 and esp32s3, run every test image on x86 and on the host-sim
    C build, ``n_sim`` of them in the Xtensa ISS, and export the ESP-IDF project.

    Returns a dict of accuracies, agreements with PyTorch, memory and instruction figures.
    """
    import fter_tvm

    with torch.no_grad():
        ref = model(x).numpy()
    labels = y.numpy()
    out = {"images": len(x), "torch_acc": float(np.mean(_top1(ref) == labels))}
    example = (x[:1],)
    from fter_tvm.targets import Esp32s3Target

    # x86; esp32s3 as compiled by default (integer numerics with the PIE kernels); esp32s3 with
    # fp32 epilogues. The default esp32s3 build is the one simulated and exported.
    builds = {"x86": "x86", "esp32s3": "esp32s3", "esp32s3_float": Esp32s3Target(numerics="float")}
    arts = {}
    for key, target in builds.items():
        t0 = time.time()
        arts[key] = art = fter_tvm.compile(model, target, example)
        out[f"{key}_compile_s"] = time.time() - t0
        got = np.concatenate([art.run(x[i:i + 1]) for i in range(len(x))])
        out[f"{key}_acc"] = float(np.mean(_top1(got) == labels))
        out[f"{key}_agree"] = float(np.mean(_top1(got) == _top1(ref)))
        out[f"{key}_max_dlogit"] = float(np.abs(got - ref).max())
    art = arts["esp32s3"]
    r = art.report
    out["esp32s3_numerics"] = r["numerics"]["mode"]
    out.update(flash_weights=r["c_weights_bytes"], arena=r["arena_bytes"],
               workspace=r["workspace_bytes"], macs=r["macs"], fused=r["fused"])
    identical, counts, by_kind = 0, [], {}
    for i in range(min(n_sim, len(x))):
        y_sim, stats = art.simulate(x[i:i + 1])
        identical += int(y_sim.tobytes() == art.run(x[i:i + 1]).tobytes())
        counts.append(stats["instructions"])
        for k, v in stats["by_kind"].items():
            by_kind[k] = by_kind.get(k, 0) + v / max(1, min(n_sim, len(x)))
    out.update(sim_images=len(counts), sim_bit_identical=identical,
               instructions=float(np.mean(counts)) if counts else 0.0,
               by_kind={k: int(v) for k, v in sorted(by_kind.items())})
    if project_dir is not None:
        out["project"] = str(art.export_project(project_dir, x[:1], overwrite=overwrite))
    return out


def print_compile_demo(res: dict) -> None:
    n = res["images"]
    print(f"  PyTorch fake-quant accuracy {100 * res['torch_acc']:.2f} % on {n} test digits")
    names = {"x86": "x86 (TVM VM)",
             "esp32s3": f"esp32s3 host-sim, {res.get('esp32s3_numerics', 'integer')} (default)",
             "esp32s3_float": "esp32s3 host-sim, float mode"}
    for t, name in names.items():
        if f"{t}_acc" not in res:
            continue
        print(f"  {name:31s} accuracy {100 * res[f'{t}_acc']:.2f} %, top-1 agreement "
              f"{100 * res[f'{t}_agree']:.2f} %, max |dlogit| {res[f'{t}_max_dlogit']:.3g} "
              f"(compile {res[f'{t}_compile_s']:.0f} s)")
    f = res["fused"]
    print(f"  fused: {f['ternary_matmul']} ternary matmuls, {f['ternary_layernorm']} ternary "
          f"LayerNorms, {f['int8_attention']} int8 attentions, unfused: {f['unfused'] or 'none'}")
    print(f"  esp32s3: weights {res['flash_weights']:,} B flash, arena {res['arena']:,} B, "
          f"workspace {res['workspace']:,} B")
    if res["sim_images"]:
        ins = res["instructions"]
        print(f"  Xtensa ISS (lx106): {res['sim_bit_identical']}/{res['sim_images']} outputs "
              f"bit-identical to host-sim; {ins / 1e6:.1f} M instructions/inference, "
              f"{ins / res['macs']:.1f} per MAC ({res['macs']:,} MACs)")
        print("    by kind: " + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in res["by_kind"].items()))
    if res.get("project"):
        print(f"  ESP-IDF project + report: {res['project']}  (idf.py set-target esp32s3 build flash monitor)")
