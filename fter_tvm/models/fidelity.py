"""Fidelity checks that can fail: random-init models whose blocks matter, and a comparison of
compiled logits with PyTorch's that judges top-1 only where the reference is not near-tied.

A random-init DeiT-III has LayerScale ~1e-5: its blocks barely touch the residual stream, so a
compiler that dropped every block would still match PyTorch to 1e-6 (a 2-block DeiT-III at
timm's init: logits ~6e-5, all blocks removed moves them by 9e-7). timm also zero-inits biases
and starts tokens at ~1e-6. :func:`randomize_near_zero` gives such parameters
seeded random values before a comparison (LayerScale O(1)).

Random-init logits are often near-tied, so :func:`fidelity` judges top-1 agreement only on the
inputs whose reference top-2 margin exceeds the measured max |Δlogit|. What can fail is mostly
the error itself (``max_abs_dlogit``, ``rel_err``, checked against a tolerance stated in the
test): a flip needs the two logits to move towards each other by the margin in total, so with a
threshold of 2 x max |Δlogit| no flip could ever be judged; at 1 x, a judged flip means both
moved by more than half the margin, in opposite directions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .quant import FP16_TOKENS
from .vit import LayerScale

NEAR_ZERO = 1e-3        # a parameter whose largest |value| is below this counts as near-zero init
MARGIN_FACTOR = 1.0     # top-1 is judged where the top-2 margin exceeds this x max |Δlogit|


def _is_layer_scale(module: nn.Module) -> bool:
    from timm.layers import LayerScale as TimmLayerScale

    return isinstance(module, (LayerScale, TimmLayerScale))


@torch.no_grad()
def randomize_near_zero(model: nn.Module, seed: int = 0, gamma_range=(0.5, 1.5),
                        std: float = 0.02) -> list[str]:
    """Give LayerScale gammas and near-zero parameters O(1) seeded random values, in place.

    Args:
        model: any ``nn.Module`` (FTerViT, a ternarized timm model, its FP32 teacher).
        seed: seed of the new values (the same model and seed give the same values).
        gamma_range: LayerScale gammas (ours and timm's) are drawn uniformly from this range
            (positive, so the block keeps its sign) whatever their current size.
        std: every other parameter whose largest |value| is below :data:`NEAR_ZERO` (zero biases,
            ~1e-6 tokens) is drawn from ``N(0, std²)``; timm's own scale for weights. Tokens and
            position embeddings (``FP16_TOKENS``) are rounded to fp16, as the model defines
            them. Biases of O(1) would drown the input: the logits of a random-init model would
            then hardly depend on it (measured on a 2-block DeiT-III: logit std across inputs
            3e-4 with std=0.5, 2e-3 with 0.02).

    Returns:
        the names of the parameters changed, in ``named_parameters`` order.
    """
    g = torch.Generator().manual_seed(seed)
    gammas = {id(m.gamma) for m in model.modules() if _is_layer_scale(m)}
    changed = []
    for name, p in model.named_parameters():
        if id(p) in gammas:
            lo, hi = gamma_range
            p.copy_(lo + (hi - lo) * torch.rand(p.shape, generator=g, dtype=p.dtype))
        elif p.numel() and float(p.abs().max()) < NEAR_ZERO:
            p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))
            if name.rsplit(".", 1)[-1] in FP16_TOKENS:
                p.copy_(p.half().to(p.dtype))
        else:
            continue
        changed.append(name)
    return changed


def fidelity(ref, got, margin_factor: float = MARGIN_FACTOR) -> dict:
    """Compare logits ``got`` (compiled) with ``ref`` (PyTorch), one row per input.

    Args:
        ref, got: arrays of the same shape, ``[inputs, classes]`` (a single row may be 1-D).
        margin_factor: top-1 is judged on the inputs whose reference top-2 margin exceeds
            ``margin_factor x max |Δlogit|``.

    Returns:
        ``{"max_abs_dlogit", "rel_err" (max |Δ| / max |ref|), "inputs", "margins" (top-2 margin
        per input), "judged" (how many inputs had a clear margin), "top1_agree" (fraction of the
        judged that agree; None when none was judged), "top1_agree_all" (fraction over all),
        "top1_errors" (indices of judged inputs whose top-1 differs), "margin_factor"}``.

    Raises:
        ValueError: the shapes differ or there are fewer than two classes.
    """
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        raise ValueError(f"fidelity: shapes differ, ref {ref.shape} vs got {got.shape}")
    ref, got = ref.reshape(-1, ref.shape[-1]), got.reshape(-1, got.shape[-1])
    if ref.shape[1] < 2:
        raise ValueError(f"fidelity: need at least two classes, got {ref.shape[1]}")
    dmax = float(np.abs(ref - got).max())
    top2 = np.sort(ref, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    judged = margins > margin_factor * dmax
    agree = ref.argmax(1) == got.argmax(1)
    return {
        "max_abs_dlogit": dmax,
        "rel_err": dmax / max(float(np.abs(ref).max()), np.finfo(np.float32).tiny),
        "inputs": len(ref),
        "margins": margins.tolist(),
        "judged": int(judged.sum()),
        "top1_agree": float(agree[judged].mean()) if judged.any() else None,
        "top1_agree_all": float(agree.mean()),
        "top1_errors": np.flatnonzero(judged & ~agree).tolist(),
        "margin_factor": margin_factor,
    }


def format_fidelity(f: dict) -> str:
    """One line: max |Δlogit|, relative error and the judged top-1 agreement."""
    judged = (f"top-1 {f['top1_agree']:.3f} on the {f['judged']} of {f['inputs']} inputs with a "
              f"clear margin" if f["judged"] else f"top-1 not judged (no top-2 margin of the "
              f"{f['inputs']} inputs exceeds {f['margin_factor']:g} x max |dlogit|)")
    return f"max |dlogit| {f['max_abs_dlogit']:.3g}, relative error {f['rel_err']:.2e}, {judged}"
