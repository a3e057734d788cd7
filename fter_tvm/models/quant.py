"""Reference quantizers of FTerViT (SPEC §1): the numerics every backend reproduces.

All functions are plain PyTorch and export cleanly with ``torch.export``: in eval mode they are
pure fake-quant math (abs / amax / mean / round / clamp / mul / div), which the Relax passes in
``relay_passes`` recognise by their math, not by these names. In training mode the same values flow
forward and gradients pass straight through (STE).

Constants fixed here and mirrored by the compiler (``relay_passes.numerics``) and the C runtime:

* weights: ``alpha = max(mean|W|, WEIGHT_EPS)`` per output channel (row) or per tensor,
  ``W_t = clamp(round(W / alpha), -1, 1)``; effective weight ``alpha * W_t``.
* activations (per token = last axis): ``s = max(max|x|, ACT_EPS) / 127``,
  ``q = clamp(round(x / s), -128, 127)``; dequantized ``q * s``.
* softmax probabilities: ``p_q = clamp(round(p * 255), 0, 255)``, value ``p_q / 255``.

``torch.round`` rounds half to even; the kernels use the same rule.
"""

from __future__ import annotations

import torch

WEIGHT_EPS = 1e-6
# the model's learned tokens and position embedding: fp16 values by the model definition (SPEC §1)
FP16_TOKENS = ("cls_token", "dist_token", "reg_token", "pos_embed")
ACT_EPS = 1e-5
INT8_MAX = 127.0
PROB_LEVELS = 255.0


def _ste(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward ``y``, backward identity into ``x`` (only built while training)."""
    return x + (y - x).detach()


def weight_scale(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """absmean scale: shape ``[out, 1, ...]`` per channel, or a 0-d tensor per tensor."""
    if per_channel:
        dims = tuple(range(1, w.dim()))
        return w.abs().mean(dim=dims, keepdim=True).clamp(min=WEIGHT_EPS)
    return w.abs().mean().clamp(min=WEIGHT_EPS)


def ternary_codes(w: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(W_t, alpha)`` with ``W_t`` in {-1, 0, +1} (float dtype) and the absmean scale."""
    alpha = weight_scale(w, per_channel)
    return torch.clamp(torch.round(w / alpha), -1.0, 1.0), alpha


def fake_ternary(w: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Effective weight ``alpha * W_t``; straight-through gradient while training."""
    codes, alpha = ternary_codes(w, per_channel)
    wq = codes * alpha
    return _ste(w, wq) if w.requires_grad and torch.is_grad_enabled() else wq


def act_scale(x: torch.Tensor, per_token: bool = True) -> torch.Tensor:
    """absmax int8 scale over the last axis (per token) or over the whole tensor."""
    if per_token:
        m = torch.amax(torch.abs(x), dim=-1, keepdim=True)
    else:
        m = torch.amax(torch.abs(x))
    return torch.clamp(m, min=ACT_EPS) / INT8_MAX


def quantize_act(x: torch.Tensor, per_token: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(q, s)``: int8-valued codes (float dtype) and their scale."""
    s = act_scale(x, per_token)
    return torch.clamp(torch.round(x / s), -128.0, INT8_MAX), s


def fake_quant_act(x: torch.Tensor, per_token: bool = True) -> torch.Tensor:
    """Dequantized int8 activation ``q * s``; straight-through gradient while training."""
    q, s = quantize_act(x, per_token)
    xq = q * s
    return _ste(x, xq) if x.requires_grad and torch.is_grad_enabled() else xq


def fake_quant_prob(p: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities on the uint8 grid 1/255; straight-through gradient while training."""
    pq = torch.clamp(torch.round(p * PROB_LEVELS), 0.0, PROB_LEVELS) / PROB_LEVELS
    return _ste(p, pq) if p.requires_grad and torch.is_grad_enabled() else pq
