"""Which kernels have an integer form, and the swap a target applies before scheduling."""

from __future__ import annotations

from tvm import tirx

from .kernels import (patch_embed, ternary_layernorm_quant, ternary_matmul_channels,
                              ternary_matmul_heads, ternary_mlp)
from .attention import int8_attention_block

INTEGER_FORMS = {
    "ternary_layernorm": lambda p: ternary_layernorm_quant(int(p["t"]), int(p["d"]), float(p["eps"])),
    "ternary_mlp": lambda p: ternary_mlp(int(p["t"]), int(p["d"]), int(p["hidden"]), p["fmt"],
                                         bool(int(p["inplace"]))),
    "ternary_matmul_heads": lambda p: ternary_matmul_heads(int(p["t"]), int(p["k"]), int(p["h"]),
                                                           int(p["hd"]), p["fmt"]),
    "ternary_matmul_channels": lambda p: ternary_matmul_channels(int(p["t"]), int(p["k"]),
                                                                 int(p["n"]), p["fmt"]),
    "patch_embed": lambda p: patch_embed(int(p["c"]), int(p["gh"]), int(p["gw"]), int(p["p"]),
                                         int(p["d"]), p["fmt"], p["embed"],
                                         int(p.get("prefix", 1))),
    "int8_attention_block": lambda p: int8_attention_block(int(p["n"]), int(p["h"]), int(p["hd"]),
                                                           p["fmt"], float(p["scale"])),
}


def integer_form(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """``func`` rebuilt in its integer form (kernel attributes kept, ``fter.numerics`` added), or
    ``func`` itself when its kind has none (it stays float: the report lists it)."""
    kind = str(func.attrs["fter.kind"])
    if kind not in INTEGER_FORMS:
        return func
    params = {k: str(v) for k, v in func.attrs["fter.params"].items()}
    new = INTEGER_FORMS[kind](params)
    attrs = {k: v for k, v in func.attrs.items()}
    attrs["fter.numerics"] = "integer"
    return new.with_attr(attrs)
