"""A ternary ViT (an FTerViT or a ``ternarize()``d timm ViT/DeiT) evaluated in the integer numerics
mode, in PyTorch's hands.

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

from .quant import WEIGHT_EPS
from .vit import FTerViT


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _codes(w: torch.Tensor, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """``quant.ternary_codes`` with the absmean summed the way the compiler folds it (NumPy's
    float32 pairwise mean, ``relay_passes.fold_constant_numpy``), not torch's: the two can differ
    by an ulp, and an ulp of a scale can flip an int8 code downstream."""
    w = _np(w)
    mean = np.mean(np.abs(w), axis=tuple(range(1, w.ndim)) if per_channel else None,
                   keepdims=per_channel)
    alpha = np.maximum(mean, np.float32(WEIGHT_EPS)).astype(np.float32)
    return np.clip(np.round(w / alpha), -1, 1), alpha


def _linear(layer, gamma=None, fp16_bias: bool = False):
    """Decoded codes ``[out, in]`` int8, per-channel scale and bias (LayerScale folded, the bias
    optionally rounded to fp16)."""
    codes, alpha = _codes(layer.weight.detach(), layer.per_channel)
    codes = codes.reshape(codes.shape[0], -1).astype(np.int8)
    alpha = np.broadcast_to(np.reshape(alpha, -1), (codes.shape[0],)).astype(np.float32)
    bias = _np(layer.bias) if layer.bias is not None else np.zeros(codes.shape[0], np.float32)
    if gamma is not None:
        g = _np(gamma)
        alpha, bias = (alpha * g).astype(np.float32), (bias * g).astype(np.float32)
    if fp16_bias:
        bias = bias.astype(np.float16).astype(np.float32)
    return codes, alpha, bias


def _layernorm(norm, x):
    g, ag = _codes(norm.weight.detach(), per_channel=False)
    b, ab = _codes(norm.bias.detach(), per_channel=False)
    scales = np.array([float(ag), float(ab)], np.float32)
    return ref.layernorm_quant(x, g.astype(np.int8), b.astype(np.int8), scales, norm.eps)


def _gamma(ls):
    return getattr(ls, "gamma", None)   # ours or timm's LayerScale; nn.Identity: none


def _identity(m) -> bool:
    return m is None or isinstance(m, torch.nn.Identity)


def _parts(model) -> tuple:
    """``(patch conv, patch size, cls, pos with a row for cls, blocks, final norm, head)`` of an
    FTerViT or a ternarized timm VisionTransformer in the form both compile to (one class token,
    token pooling); ValueError names what else a model has."""
    if isinstance(model, FTerViT):
        patch, p, timm_like = model.patch_embed, model.cfg.patch_size, False
    elif hasattr(model, "patch_embed") and hasattr(model.patch_embed, "proj"):
        patch, p, timm_like = model.patch_embed.proj, int(model.patch_embed.patch_size[0]), True
    else:
        raise ValueError(f"integer_logits covers FTerViT models and ternarize()d timm "
                         f"VisionTransformers, got {type(model).__name__}")
    if timm_like:
        unsupported = [name for name, bad in (
            ("a prefix other than one class token (distillation/register tokens, no class token)",
             getattr(model, "num_prefix_tokens", 1) != 1 or getattr(model, "cls_token", None) is None),
            (f"global_pool={getattr(model, 'global_pool', '')!r}", getattr(model, "global_pool", "token") != "token"),
            ("fc_norm", not _identity(getattr(model, "fc_norm", None))),
            ("pre_norm", not _identity(getattr(model, "norm_pre", None))),
            ("a distillation head", getattr(model, "head_dist", None) is not None),
        ) if bad]
        if unsupported:
            raise ValueError("integer_logits does not cover " + ", ".join(unsupported))
    if any(not _identity(b.attn.q_norm) for b in model.blocks):
        raise ValueError("integer_logits does not cover qk_norm models")
    d = model.cls_token.shape[-1]
    cls = _np(model.cls_token).reshape(-1).astype(np.float16).astype(np.float32)
    pos = _np(model.pos_embed).reshape(-1, d).astype(np.float16).astype(np.float32)
    if pos.shape[0] == (model.patch_embed.num_patches if timm_like else model.cfg.num_patches):
        pos = np.concatenate([np.zeros((1, d), np.float32), pos])   # no position on the cls token
    return patch, p, cls, pos, model.blocks, model.norm, model.head


def _one_image(model, img: np.ndarray, fp16_bias: bool) -> np.ndarray:
    patch, p, cls, pos, blocks, norm, head = _parts(model)
    w, a, b = _linear(patch, fp16_bias=fp16_bias)
    x = ref.patch_embed(img, w, a, b, cls, pos, p)
    for blk in blocks:
        attn = blk.attn
        d, h = x.shape[-1], attn.num_heads
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
    q, s = _layernorm(norm, x[:1])
    wh, ah, bh = _linear(head, fp16_bias=fp16_bias)
    acc = q.astype(np.int64) @ wh.T.astype(np.int64)
    return (acc.astype(np.float32) * (ah[None, :] * s[:, None]) + bh[None, :])[0]


def integer_logits(model, x: torch.Tensor, *, ste: bool = False,
                   fp16_bias: bool = False) -> torch.Tensor:
    """Logits of ``model`` on ``x [B, C, H, W]`` in the integer numerics mode.

    Args:
        model: an :class:`FTerViT` or a ``ternarize()``d timm VisionTransformer with one class
            token and token pooling (ViT, DeiT, DeiT-III with LayerScale and ``no_embed_class``),
            in eval-mode numerics.
        ste: return ``float_logits + (integer - float).detach()``, so gradients flow through the
            float model while the values are the integer mode's.
        fp16_bias: round every bias to fp16 (the esp32s3 target's default ``fp16_rounded``
            rounds the biases its StoreSideTensorsFp16 pass selects, not necessarily all, so
            exact agreement holds with ``Esp32s3Target(fp16_rounded=())`` and this False).
    Raises:
        ValueError: a model this function does not cover (qk_norm; for timm models also
            distillation or register tokens, no class token, average pooling, fc_norm, pre_norm),
            named in the message.
    """
    _parts(model)   # refuse before any work
    with torch.no_grad():
        out = np.stack([_one_image(model, _np(img), fp16_bias) for img in x])
    result = torch.from_numpy(out)
    if ste:
        ref = model(x)
        return ref + (result.to(ref.dtype) - ref).detach()
    return result
