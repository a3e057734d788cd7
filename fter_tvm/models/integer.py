"""An FTerViT evaluated in the integer numerics mode, in PyTorch's hands.

:func:`integer_logits` runs the model the way ``compile(model, Esp32s3Target(numerics="integer"))``
does -- the same fused steps (patch embedding, LayerNorm + quantizer, K per head, V per channel,
the attention block, the MLP, the final LayerNorm on the class token, the head), each from
``schedules.integer``'s NumPy reference of the integer kernel -- so a user can measure the mode's
accuracy before compiling, and train against it: with ``ste=True`` the forward values are the
integer ones and the gradients those of the float model (straight-through).
"""

from __future__ import annotations

import numpy as np
import torch

from schedules.integer import intmath_ref as ref

from .quant import ternary_codes
from .vit import FTerViT, LayerScale


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _linear(layer, gamma=None, fp16_bias: bool = False):
    """Decoded codes ``[out, in]`` int8, per-channel scale and bias (LayerScale folded, the bias
    optionally rounded to fp16)."""
    codes, alpha = ternary_codes(layer.weight.detach(), layer.per_channel)
    codes = _np(codes).reshape(codes.shape[0], -1).astype(np.int8)
    alpha = np.broadcast_to(_np(alpha).reshape(-1), (codes.shape[0],)).astype(np.float32)
    bias = _np(layer.bias) if layer.bias is not None else np.zeros(codes.shape[0], np.float32)
    if gamma is not None:
        g = _np(gamma)
        alpha, bias = (alpha * g).astype(np.float32), (bias * g).astype(np.float32)
    if fp16_bias:
        bias = bias.astype(np.float16).astype(np.float32)
    return codes, alpha, bias


def _layernorm(norm, x):
    g, ag = ternary_codes(norm.weight.detach(), per_channel=False)
    b, ab = ternary_codes(norm.bias.detach(), per_channel=False)
    scales = np.array([float(ag), float(ab)], np.float32)
    return ref.layernorm_quant(x, _np(g).astype(np.int8), _np(b).astype(np.int8), scales,
                                  norm.eps)


def _gamma(ls):
    return ls.gamma if isinstance(ls, LayerScale) else None


def _one_image(model: FTerViT, img: np.ndarray, fp16_bias: bool) -> np.ndarray:
    cfg = model.cfg
    w, a, b = _linear(model.patch_embed, fp16_bias=fp16_bias)
    cls = _np(model.cls_token).reshape(-1).astype(np.float16).astype(np.float32)
    pos = _np(model.pos_embed)[0].astype(np.float16).astype(np.float32)
    x = ref.patch_embed(img, w, a, b, cls, pos, cfg.patch_size)
    d, h = cfg.embed_dim, cfg.num_heads
    for blk in model.blocks:
        attn = blk.attn
        q, s = _layernorm(blk.norm1, x)
        wqkv, aqkv, bqkv = _linear(attn.qkv, fp16_bias=fp16_bias)
        k, k_amax = ref.heads(q, s, wqkv[d:2 * d], aqkv[d:2 * d], bqkv[d:2 * d], h)
        v, v_amax = ref.channels(q, s, wqkv[2 * d:], aqkv[2 * d:], bqkv[2 * d:])
        wp, ap, bp = _linear(attn.proj, _gamma(blk.ls1), fp16_bias)
        x = ref.attention_block(x, q, s, wqkv[:d], aqkv[:d], bqkv[:d], k, k_amax, v, v_amax,
                                   wp, ap, bp, h, float(attn.scale))
        q, s = _layernorm(blk.norm2, x)
        w1, a1, b1 = _linear(blk.mlp.fc1, fp16_bias=fp16_bias)
        w2, a2, b2 = _linear(blk.mlp.fc2, _gamma(blk.ls2), fp16_bias)
        x = ref.mlp(q, s, w1, a1, b1, w2, a2, b2, x)
    q, s = _layernorm(model.norm, x[:1])
    wh, ah, bh = _linear(model.head, fp16_bias=fp16_bias)
    acc = q.astype(np.int64) @ wh.T.astype(np.int64)
    return (acc.astype(np.float32) * (ah[None, :] * s[:, None]) + bh[None, :])[0]


def integer_logits(model: FTerViT, x: torch.Tensor, *, ste: bool = False,
                   fp16_bias: bool = False) -> torch.Tensor:
    """Logits of ``model`` on ``x [B, C, H, W]`` in the integer numerics mode.

    Args:
        model: an :class:`FTerViT` (eval mode numerics; ``qk_norm`` and ``no_embed_class`` models
            are not covered).
        ste: return ``float_logits + (integer - float).detach()``, so gradients flow through the
            float model while the values are the integer mode's.
        fp16_bias: round every bias to fp16 (the esp32s3 target's default ``fp16_rounded``
            rounds the biases its StoreSideTensorsFp16 pass selects, not necessarily all, so
            exact agreement holds with ``Esp32s3Target(fp16_rounded=())`` and this False).
    Raises:
        ValueError: a model this function does not cover.
    """
    if not isinstance(model, FTerViT):
        raise ValueError(f"integer_logits covers FTerViT models, got {type(model).__name__}")
    if model.cfg.no_embed_class or any(not isinstance(b.attn.q_norm, torch.nn.Identity)
                                       for b in model.blocks):
        raise ValueError("integer_logits does not cover no_embed_class or qk_norm models")
    with torch.no_grad():
        out = np.stack([_one_image(model, _np(img), fp16_bias) for img in x])
    result = torch.from_numpy(out)
    if ste:
        ref = model(x)
        return ref + (result.to(ref.dtype) - ref).detach()
    return result
