"""ternarize(): convert a timm ``VisionTransformer`` (ViT / DeiT / DeiT-III) into an FTerViT copy.

Every module of the source model is checked against a table of what FTerViT can represent
(path pattern -> accepted types); anything else raises ``ValueError`` naming its path and type,
so a variant we do not model (distillation token, avg pooling, qk-norm, register tokens, ...)
never converts silently into a different network.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .vit import FTerViT, FTerViTConfig

try:  # timm is a dependency, but keep the error readable if it is broken
    from timm.layers import DropPath, LayerScale, Mlp, PatchDropout, PatchEmbed
    from timm.layers import LayerNorm as TimmLayerNorm
    from timm.layers.attention import Attention
    from timm.models.vision_transformer import Block, VisionTransformer
except ImportError as e:  # pragma: no cover
    raise ImportError(f"fter_tvm.models.ternarize needs timm: {e}") from e

_DROP = (nn.Dropout, nn.Identity, DropPath)  # train-time only; identity in eval

# (path regex, accepted exact types). Paths are disjoint; subclasses are rejected because they may
# change forward().
_TABLE: list[tuple[str, tuple[type, ...]]] = [
    (r"", (VisionTransformer,)),
    (r"patch_embed", (PatchEmbed,)),
    (r"patch_embed\.proj", (nn.Conv2d,)),
    (r"patch_embed\.norm", (nn.Identity,)),
    (r"pos_drop|head_drop", (nn.Dropout, nn.Identity)),
    (r"patch_drop", (nn.Identity, PatchDropout)),
    (r"norm_pre|fc_norm", (nn.Identity,)),
    (r"blocks", (nn.Sequential,)),
    (r"blocks\.\d+", (Block,)),
    (r"blocks\.\d+\.norm[12]|norm", (nn.LayerNorm, TimmLayerNorm)),
    (r"blocks\.\d+\.attn", (Attention,)),
    (r"blocks\.\d+\.attn\.(qkv|proj)", (nn.Linear,)),
    (r"blocks\.\d+\.attn\.(q_norm|k_norm|norm)", (nn.Identity,)),
    (r"blocks\.\d+\.attn\.(attn_drop|proj_drop)", (nn.Dropout, nn.Identity)),
    (r"blocks\.\d+\.ls[12]", (LayerScale, nn.Identity)),
    (r"blocks\.\d+\.drop_path[12]", _DROP),
    (r"blocks\.\d+\.mlp", (Mlp,)),
    (r"blocks\.\d+\.mlp\.fc[12]", (nn.Linear,)),
    (r"blocks\.\d+\.mlp\.act", (nn.GELU,)),
    (r"blocks\.\d+\.mlp\.norm", (nn.Identity,)),
    (r"blocks\.\d+\.mlp\.drop[12]", (nn.Dropout, nn.Identity)),
    (r"head", (nn.Linear,)),
]
_COMPILED = [(re.compile(p + r"\Z"), t) for p, t in _TABLE]


def _tname_of(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _tname(m: object) -> str:
    return _tname_of(type(m))


def _check_types(model: nn.Module) -> list[str]:
    problems = []
    for path, mod in model.named_modules():
        for rx, types in _COMPILED:
            if rx.match(path):
                if type(mod) not in types:
                    want = " or ".join(_tname_of(t) for t in types)
                    problems.append(f"'{path or '<root>'}' is {_tname(mod)}, expected {want}")
                break
        else:
            problems.append(f"'{path}' ({_tname(mod)}) has no FTerViT counterpart")
    return problems


def _check_details(m: VisionTransformer) -> list[str]:
    """Settings that the module types alone do not reveal."""
    p = []
    if getattr(m, "dist_token", None) is not None:
        p.append(f"'dist_token' (distillation token, {_tname(m)}) is not supported")
    if getattr(m, "reg_token", None) is not None:
        p.append("'reg_token' (register tokens) is not supported")
    if getattr(m, "cls_token", None) is None:
        p.append("'cls_token' is missing (class_token=False) — FTerViT classifies from the cls token")
    if getattr(m, "pos_embed", None) is None:
        p.append("'pos_embed' is missing — FTerViT needs a learned position embedding")
    if m.global_pool != "token":
        p.append(f"'<root>'.global_pool={m.global_pool!r} is not supported (only 'token')")
    if getattr(m, "attn_pool", None) is not None:
        p.append(f"'attn_pool' ({_tname(m.attn_pool)}) is not supported")
    if getattr(m, "dynamic_img_size", False):
        p.append("'<root>'.dynamic_img_size=True is not supported (static shapes only)")
    if getattr(m, "pool_include_prefix", False):
        p.append("'<root>'.pool_include_prefix=True is not supported")
    pe = getattr(m, "patch_embed", None)
    conv = getattr(pe, "proj", None)
    if isinstance(conv, nn.Conv2d):
        if (conv.kernel_size != conv.stride or conv.kernel_size[0] != conv.kernel_size[1]
                or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1
                or conv.padding_mode != "zeros"):
            p.append("'patch_embed.proj' must be a square stride==kernel conv without padding")
    if isinstance(pe, PatchEmbed):
        if pe.img_size is None or pe.img_size[0] != pe.img_size[1]:
            p.append(f"'patch_embed'.img_size={pe.img_size} is not supported (square images only)")
        if getattr(pe, "dynamic_img_pad", False) or not getattr(pe, "flatten", True):
            p.append("'patch_embed' with dynamic padding / NHWC output is not supported")
    for name, mod in m.named_modules():
        if isinstance(mod, nn.GELU) and mod.approximate != "none":
            p.append(f"'{name}' is GELU(approximate={mod.approximate!r}); FTerViT uses exact erf GELU")
        if isinstance(mod, Attention):
            if getattr(mod, "gate", None) is not None:
                p.append(f"'{name}.gate' (gated attention) is not supported")
            if mod.attn_dim != mod.qkv.in_features:
                p.append(f"'{name}' has attn_dim {mod.attn_dim} != dim {mod.qkv.in_features}")
        is_main_norm = name == "norm" or name.endswith((".norm1", ".norm2"))
        if is_main_norm and isinstance(mod, nn.LayerNorm) and mod.normalized_shape != (m.embed_dim,):
            p.append(f"'{name}' normalizes {mod.normalized_shape}, expected ({m.embed_dim},)")
    return p


def _config_from_timm(m: VisionTransformer, per_channel: bool) -> FTerViTConfig:
    blk = m.blocks[0]
    dim = m.embed_dim
    hidden = blk.mlp.fc1.out_features
    eps = {mod.eps for mod in m.modules() if isinstance(mod, nn.LayerNorm)}
    ls = [type(b.ls1) is LayerScale for b in m.blocks] + [type(b.ls2) is LayerScale for b in m.blocks]
    qkv_bias = {b.attn.qkv.bias is not None for b in m.blocks}
    heads = {b.attn.num_heads for b in m.blocks}
    hiddens = {b.mlp.fc1.out_features for b in m.blocks}
    problems = []
    if len(eps) != 1:
        problems.append(f"LayerNorms use different eps values {sorted(eps)}")
    if len(set(ls)) != 1:
        problems.append("LayerScale is present in some blocks but not in others")
    if len(qkv_bias) != 1 or len(heads) != 1 or len(hiddens) != 1:
        problems.append("blocks differ in qkv bias, head count or MLP width")
    if int(dim * (hidden / dim)) != hidden:
        problems.append(f"'blocks.0.mlp.fc1' width {hidden} is not expressible as int(dim * mlp_ratio)")
    if problems:
        raise ValueError("cannot ternarize this VisionTransformer:\n  " + "\n  ".join(problems))
    return FTerViTConfig(
        img_size=m.patch_embed.img_size[0],
        patch_size=m.patch_embed.proj.kernel_size[0],
        in_chans=m.patch_embed.proj.in_channels,
        num_classes=m.head.out_features,
        embed_dim=dim,
        depth=len(m.blocks),
        num_heads=blk.attn.num_heads,
        mlp_ratio=hidden / dim,
        layer_scale_init=float(blk.ls1.init_values) if ls[0] else None,
        per_channel=per_channel,
        qkv_bias=blk.attn.qkv.bias is not None,
        eps=eps.pop(),
        no_embed_class=bool(m.no_embed_class),
    )


def _source_name(name: str) -> str:
    return name.replace("patch_embed.", "patch_embed.proj.", 1) if name.startswith("patch_embed.") else name


def ternarize(model: nn.Module, per_channel: bool = True) -> FTerViT:
    """Convert a timm ``VisionTransformer`` into an FTerViT copy with the same (latent) weights.

    Every Linear (qkv, proj, fc1, fc2, head), the patch conv and every LayerNorm become ternary
    layers; cls token, position embedding and LayerScale gammas are copied. Absent biases
    (``proj_bias=False``, LayerNorm without bias) become zeros; ``qkv_bias`` is kept as is.

    Args:
        model: a ``timm.models.vision_transformer.VisionTransformer`` (not modified).
        per_channel: ternary scale per output channel (True) or per tensor (False).
    Returns:
        An ``FTerViT`` in the same train/eval mode as ``model``.
    Raises:
        ValueError: the model contains a module or setting FTerViT does not represent; the
            message names every offending module path and type.
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"'<root>' is {_tname(model)}, expected timm VisionTransformer")
    problems = _check_types(model) + _check_details(model)
    if problems:
        raise ValueError("cannot ternarize this VisionTransformer:\n  " + "\n  ".join(problems))
    out = FTerViT(_config_from_timm(model, per_channel))

    src = {k: v.detach() for k, v in model.state_dict().items()}
    used = set()
    new_state = {}
    with torch.no_grad():
        for name, dst in out.state_dict().items():
            key = _source_name(name)
            if key in src:
                if src[key].shape != dst.shape:
                    raise ValueError(f"'{key}' has shape {tuple(src[key].shape)}, expected {tuple(dst.shape)}")
                new_state[name] = src[key].to(dst.dtype).clone()
                used.add(key)
            elif name.endswith(".bias"):
                new_state[name] = torch.zeros_like(dst)   # layer built without bias
            elif name.endswith(".weight") and "norm" in name:
                new_state[name] = torch.ones_like(dst)    # LayerNorm without affine weight
            else:
                raise ValueError(f"no source tensor for '{name}' (looked for '{key}')")
    leftover = sorted(set(src) - used)
    if leftover:
        raise ValueError(f"tensors with no FTerViT counterpart: {leftover}")
    out.load_state_dict(new_state)
    return out.train(model.training)
