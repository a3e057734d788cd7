"""What a compiled model contains: fused kernel counts, unfused nodes, MACs and bytes per layer."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant

from relay_passes.base import is_kernel_call

# ops that do real arithmetic on large tensors: if one survives fusion it is listed as unfused
HEAVY_OPS = ("relax.matmul", "relax.nn.conv2d", "relax.nn.layer_norm", "relax.nn.softmax",
             "relax.nn.dense", "relax.linear", "relax.nn.conv1d", "relax.nn.batch_norm")
FUSED_KINDS = ("ternary_matmul", "ternary_layernorm", "int8_attention")
# kernel parameters holding the prefix tokens / position embedding (reported apart from scales)
EMBEDDING_PARAMS = {"patch_embed": ("cls", "pos")}
# kernel kinds that count as one of FUSED_KINDS in the report
KIND_ALIASES = {"int8_attention_qkv": "int8_attention", "int8_attention_q": "int8_attention",
                "ternary_layernorm_float": "ternary_layernorm"}
# fused multi-layer kernels: how many of each FUSED_KIND they stand for
# (a split qkv projection is three kernels: its V part counts the layer once, K and Q zero)
COMPOSITES = {"ternary_mlp": {"ternary_matmul": 2}, "ternary_matmul_heads": {},
              "ternary_matmul_channels": {"ternary_matmul": 1},
              "int8_attention_block": {"int8_attention": 1, "ternary_matmul": 1},
              "patch_embed": {"ternary_matmul": 1}}


def _kernel_of(mod: tvm.IRModule, call):
    if is_kernel_call(call):
        func = mod[call.args[0]]
        if func.attrs is not None and "fter.kind" in func.attrs:
            return call.args[0].name_hint, str(func.attrs["fter.kind"]), {
                k: str(v) for k, v in func.attrs["fter.params"].items()}
    return None


def _bindings(mod: tvm.IRModule):
    for block in mod["main"].body.blocks:
        yield from block.bindings


def _macs(kind: str, p: dict) -> int:
    if kind in ("ternary_matmul", "ternary_matmul_float"):
        return int(p["t"]) * int(p["k"]) * int(p["n"])
    if kind == "ternary_mlp":
        return 2 * int(p["t"]) * int(p["d"]) * int(p["hidden"])
    if kind in ("int8_attention_q", "int8_attention_block"):    # + Q projection (+ output proj)
        n, h, hd = int(p["n"]), int(p["h"]), int(p["hd"])
        return 2 * h * n * n * hd + n * (h * hd) ** 2 * (2 if kind == "int8_attention_block" else 1)
    if kind == "patch_embed":
        return int(p["gh"]) * int(p["gw"]) * int(p["c"]) * int(p["p"]) ** 2 * int(p["d"])
    if kind == "ternary_matmul_channels":      # projected twice
        return 2 * int(p["t"]) * int(p["k"]) * int(p["n"])
    if kind == "ternary_matmul_heads":
        return int(p["t"]) * int(p["k"]) * int(p["h"]) * int(p["hd"])
    if kind == "int8_attention":
        b, h, n, hd = (int(p.get(x, 1)) for x in ("b", "h", "n", "hd"))
        return 2 * b * h * n * n * hd
    return 0


def build_report(mod: tvm.IRModule) -> dict:
    """Report of a module after the fter pipeline (before lowering)."""
    counts = {k: 0 for k in FUSED_KINDS}
    unfused, layers = [], []
    weight_bytes = {"packed_weights": 0, "scales": 0, "embeddings": 0, "other_constants": 0}
    for binding in _bindings(mod):
        value = binding.value
        kernel = _kernel_of(mod, value)
        if kernel is not None:
            name, kind, params = kernel
            kind = KIND_ALIASES.get(kind, kind)
            for part, n in COMPOSITES.get(kind, {kind: 1}).items():
                counts[part] = counts.get(part, 0) + n
            fields = list(value.args[1].fields)
            param_names = [str(p.name) for p in mod[value.args[0]].params]
            consts = [a for a in fields if isinstance(a, Constant)]
            nbytes = sum(c.value.numpy().nbytes for c in consts)
            for i, c in enumerate(fields):
                if isinstance(c, Constant):
                    arr = c.value.numpy()
                    key = ("embeddings" if param_names[i] in EMBEDDING_PARAMS.get(kind, ()) else
                           "packed_weights" if arr.dtype in (np.uint8, np.int8) else "scales")
                    weight_bytes[key] += arr.nbytes
            layers.append({"kernel": name, "kind": kind, "macs": _macs(kind, params),
                           "const_bytes": nbytes, "params": params})
        elif isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            for arg in value.args:
                if isinstance(arg, Constant) and hasattr(arg.value, "numpy"):   # not PrimValues
                    weight_bytes["other_constants"] += arg.value.numpy().nbytes
            if value.op.name in HEAVY_OPS:
                unfused.append(f"{binding.var.name} ({value.op.name})")
                layers.append({"kernel": binding.var.name, "kind": value.op.name,
                               "macs": 0, "const_bytes": 0, "params": {}})
    counts["unfused"] = unfused
    return {
        "fused": counts,
        "macs": sum(row["macs"] for row in layers),
        "weight_bytes": weight_bytes,
        "flash_bytes": sum(weight_bytes.values()),
        "layers": layers,
    }
