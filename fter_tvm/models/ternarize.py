"""ternarize(): make a timm ``VisionTransformer`` (ViT / DeiT / DeiT-III / distilled) fully ternary.

The model keeps its own forward (cls / distillation / register tokens, token or average pooling,
``fc_norm``, ``pre_norm``, LayerScale, both heads of a distilled DeiT); its layers are replaced
module by module: Linear -> TernaryLinear, the patch Conv2d -> TernaryBitConv2d, LayerNorm ->
TernaryLayerNorm, timm ``Attention`` -> Int8Attention (with its q/k norms). Any other module that
owns weights raises ``ValueError`` naming its path and type, so nothing stays full precision silently.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .layers import Int8Attention, TernaryBitConv2d, TernaryLayerNorm, TernaryLinear
from .quant import FP16_TOKENS   # parameters of the root that are not matrices: stored fp16

try:  # timm is a dependency, but keep the error readable if it is broken
    from timm.layers import LayerScale
    from timm.layers.attention import Attention
    from timm.models.vision_transformer import VisionTransformer
except ImportError as e:  # pragma: no cover
    raise ImportError(f"fter_tvm.models.ternarize needs timm: {e}") from e

_KEEP = (LayerScale,)   # per-channel vectors the compiler folds into the previous layer's scales


def _tname(m: object) -> str:
    t = type(m)
    return f"{t.__module__}.{t.__qualname__}"


def _copy_affine(dst: nn.Module, src: nn.Module) -> None:
    """Copy weight/bias; an absent bias (or LayerNorm affine) becomes zeros (ones)."""
    with torch.no_grad():
        if src.weight is not None:
            dst.weight.copy_(src.weight.reshape(dst.weight.shape))
        else:
            dst.weight.fill_(1.0)
        if dst.bias is not None:
            dst.bias.copy_(src.bias) if src.bias is not None else dst.bias.zero_()


def _linear(m: nn.Linear, per_channel: bool) -> TernaryLinear:
    t = TernaryLinear(m.in_features, m.out_features, bias=m.bias is not None, per_channel=per_channel)
    _copy_affine(t, m)
    return t


def _conv(name: str, m: nn.Conv2d, per_channel: bool) -> TernaryBitConv2d:
    if (m.kernel_size != m.stride or m.kernel_size[0] != m.kernel_size[1] or m.padding != (0, 0)
            or m.dilation != (1, 1) or m.groups != 1):
        raise ValueError(f"'{name}' ({_tname(m)}) is not a square stride == kernel patch conv "
                         "without padding: it cannot be a TernaryBitConv2d")
    t = TernaryBitConv2d(m.in_channels, m.out_channels, m.kernel_size[0], bias=m.bias is not None,
                         per_channel=per_channel)
    _copy_affine(t, m)
    return t


def _layer_norm(m: nn.LayerNorm) -> TernaryLayerNorm:
    t = TernaryLayerNorm(m.normalized_shape, eps=m.eps)
    _copy_affine(t, m)
    return t


def _attention(name: str, m: Attention, per_channel: bool) -> Int8Attention:
    problems = []
    if getattr(m, "gate", None) is not None:
        problems.append(f"'{name}.gate' (gated attention) has no ternary counterpart")
    if m.attn_dim != m.qkv.in_features or m.proj.out_features != m.qkv.in_features:
        problems.append(f"'{name}' has attn_dim {m.attn_dim} != dim {m.qkv.in_features}")
    if problems:
        raise ValueError("; ".join(problems))
    qk_norm = not isinstance(m.q_norm, nn.Identity)
    a = Int8Attention(m.qkv.in_features, m.num_heads, qkv_bias=m.qkv.bias is not None,
                      per_channel=per_channel, qk_norm=qk_norm,
                      eps=getattr(m.q_norm, "eps", 1e-6))
    a.qkv, a.proj = _linear(m.qkv, per_channel), _linear(m.proj, per_channel)
    if qk_norm:
        a.q_norm, a.k_norm = _layer_norm(m.q_norm), _layer_norm(m.k_norm)
    if not isinstance(m.norm, nn.Identity):
        a.norm = _layer_norm(m.norm)
    return a


def _replacement(name: str, m: nn.Module, per_channel: bool) -> nn.Module | None:
    """The ternary module for ``m``; None keeps ``m`` (its children are visited)."""
    if type(m) is Attention:
        return _attention(name, m, per_channel)
    if type(m) is nn.Linear:
        return _linear(m, per_channel)
    if type(m) is nn.Conv2d:
        return _conv(name, m, per_channel)
    if isinstance(m, nn.LayerNorm):   # torch's and timm's (a subclass with the same math)
        return _layer_norm(m)
    if isinstance(m, nn.GELU) and m.approximate != "none":
        raise ValueError(f"'{name}' is GELU(approximate={m.approximate!r}); FTerViT uses exact erf GELU")
    if isinstance(m, _KEEP) and not getattr(m, "inplace", False):
        return None
    if next(m.parameters(recurse=False), None) is not None:
        raise ValueError(f"'{name}' ({_tname(m)}) has weights but no ternary counterpart")
    return None


def _convert(parent: nn.Module, prefix: str, per_channel: bool, problems: list[str]) -> None:
    for child_name, child in parent.named_children():
        path = f"{prefix}{child_name}"
        try:
            new = _replacement(path, child, per_channel)
        except ValueError as e:
            problems.append(str(e))
            continue
        if new is None:
            _convert(child, path + ".", per_channel, problems)
        else:
            setattr(parent, child_name, new)


def _check_root(m: VisionTransformer) -> list[str]:
    p = []
    if getattr(m, "dynamic_img_size", False):
        p.append("'<root>'.dynamic_img_size=True is not supported (static shapes only)")
    if getattr(m, "attn_pool", None) is not None:
        p.append(f"'attn_pool' ({_tname(m.attn_pool)}) is not supported")
    return p


def ternarize(model: nn.Module, per_channel: bool = True) -> nn.Module:
    """A fully ternary copy of a timm ``VisionTransformer`` that keeps the model's own forward.

    Every Linear (qkv, proj, fc1, fc2, head, head_dist), the patch conv and every LayerNorm
    (blocks, final, ``fc_norm``, ``norm_pre``, q/k norms) become ternary layers; attention becomes
    int8 attention. cls / distillation / register tokens and the position embedding are rounded
    to fp16 values (they are stored fp16); LayerScale gammas are kept.

    Args:
        model: a ``timm.models.vision_transformer.VisionTransformer`` or subclass (not modified).
        per_channel: ternary scale per output channel (True) or per tensor (False).
    Returns:
        The converted copy, in the same train/eval mode as ``model``.
    Raises:
        ValueError: a module with weights has no ternary counterpart, or a setting (dynamic image
            size, attention pooling) is not representable; the message names every offending path.
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"'<root>' is {_tname(model)}, expected timm VisionTransformer")
    problems = _check_root(model)
    out = copy.deepcopy(model)
    _convert(out, "", per_channel, problems)
    for name, p in out.named_parameters(recurse=False):
        if name not in FP16_TOKENS:
            problems.append(f"'{name}' (a {tuple(p.shape)} parameter of the root) has no ternary "
                            "counterpart")
    if problems:
        raise ValueError("cannot ternarize this VisionTransformer:\n  " + "\n  ".join(problems))
    with torch.no_grad():
        for name in FP16_TOKENS:
            p = getattr(out, name, None)
            if isinstance(p, nn.Parameter):
                p.copy_(p.half().float())
    return out.train(model.training)
