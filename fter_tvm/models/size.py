"""Model size at fp32 and with packed ternary weights (SPEC §2), the way the paper counts bytes."""

from __future__ import annotations

import math

from torch import nn

from timm.layers import LayerScale as TimmLayerScale

from .layers import TernaryBitConv2d, TernaryLayerNorm, TernaryLinear
from .quant import FP16_TOKENS as FP16_PARAMS   # stored fp16 (SPEC §1)
from .vit import LayerScale
WEIGHTS_PER_BYTE = {"2bit": 4, "base3": 5}  # 2-bit codes; 5 trits per byte (3^5 = 243 <= 256)


def _packed_rows(rows: int, cols: int, per_byte: int) -> int:
    return rows * math.ceil(cols / per_byte)   # each output channel starts on a byte boundary


def model_size_bytes(model: nn.Module) -> dict:
    """Bytes needed to store ``model``: all-fp32, and with 2-bit or base-3 packed ternary weights.

    Packed counts: ternary matrices packed row by row (each row byte-aligned), one fp32 scale per
    output channel (or per tensor), fp32 biases, ternary LayerNorm gamma/beta packed with one fp32
    scale each, LayerScale gammas folded into the per-channel scales (fp32 if per-tensor), cls / distillation /
    register tokens and position embedding fp16, any other parameter fp32.

    Returns:
        ``{"params", "ternary_params", "fp32", "2bit", "base3", "breakdown": {fmt: {part: bytes}}}``.
    """
    params = sum(p.numel() for p in model.parameters())
    out = {"params": params, "ternary_params": 0, "fp32": 4 * params}
    parts = {fmt: {"weights": 0, "scales": 0, "biases": 0, "embeddings": 0, "other": 0}
             for fmt in WEIGHTS_PER_BYTE}
    seen: set[int] = set()
    all_per_channel = all(m.per_channel for m in model.modules()
                          if isinstance(m, (TernaryLinear, TernaryBitConv2d)))

    def add(part: str, nbytes_by_fmt) -> None:
        for fmt, per_byte in WEIGHTS_PER_BYTE.items():
            parts[fmt][part] += nbytes_by_fmt(per_byte) if callable(nbytes_by_fmt) else nbytes_by_fmt

    for m in model.modules():
        if isinstance(m, (TernaryLinear, TernaryBitConv2d)):
            rows = m.weight.shape[0]
            cols = m.weight.numel() // rows
            out["ternary_params"] += m.weight.numel()
            add("weights", lambda k, r=rows, c=cols: _packed_rows(r, c, k))
            add("scales", 4 * (rows if m.per_channel else 1))
            seen.add(id(m.weight))
            if m.bias is not None:
                add("biases", 4 * m.bias.numel())
                seen.add(id(m.bias))
        elif isinstance(m, TernaryLayerNorm):
            for p in (m.weight, m.bias):
                out["ternary_params"] += p.numel()
                add("weights", lambda k, n=p.numel(): _packed_rows(1, n, k))
                add("scales", 4)
                seen.add(id(p))
        elif isinstance(m, (LayerScale, TimmLayerScale)):
            add("scales", 0 if all_per_channel else 4 * m.gamma.numel())
            seen.add(id(m.gamma))
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        if name.split(".")[-1] in FP16_PARAMS:
            add("embeddings", 2 * p.numel())
        else:
            add("other", 4 * p.numel())
    for fmt in WEIGHTS_PER_BYTE:
        out[fmt] = sum(parts[fmt].values())
    out["breakdown"] = parts
    return out
