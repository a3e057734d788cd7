"""FTerViT: a ViT/DeiT whose every matrix and LayerNorm is ternary (SPEC §1).

The module tree mirrors timm's ``VisionTransformer`` so state-dict names line up
(``blocks.3.attn.qkv.weight``, ``blocks.3.ls1.gamma``, ``head.weight``...); only the patch
embedding differs (``patch_embed.weight`` instead of ``patch_embed.proj.weight``).
The forward is ``torch.export``-friendly: static shapes, no data-dependent control flow, no
in-place ops on inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Int8Attention, TernaryBitConv2d, TernaryLayerNorm, TernaryLinear
from .quant import _ste


@dataclass
class FTerViTConfig:
    """Architecture of an FTerViT; JSON-serialisable through ``dataclasses.asdict``."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    layer_scale_init: float | None = None   # None: no LayerScale; float: DeiT-III LayerScale
    per_channel: bool = True                # ternary scales per output channel (else per tensor)
    qkv_bias: bool = True
    eps: float = 1e-6                       # LayerNorm epsilon
    no_embed_class: bool = False            # DeiT-III: pos embed covers patches only, not cls

    def __post_init__(self):
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)   # same rule as timm's Block


def fp16_round(p: torch.Tensor) -> torch.Tensor:
    """Value of ``p`` stored as fp16 (cls token, position embedding); STE while training."""
    r = p.half().float()
    return _ste(p, r) if p.requires_grad and torch.is_grad_enabled() else r


class LayerScale(nn.Module):
    """DeiT-III LayerScale: per-channel multiply by ``gamma`` (folded into the previous layer's scale
    by the compiler)."""

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """TernaryLinear fc1 -> exact (erf) GELU in fp32 -> TernaryLinear fc2."""

    def __init__(self, dim: int, hidden: int, per_channel: bool):
        super().__init__()
        self.fc1 = TernaryLinear(dim, hidden, per_channel=per_channel)
        self.fc2 = TernaryLinear(hidden, dim, per_channel=per_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, cfg: FTerViTConfig):
        super().__init__()
        d = cfg.embed_dim
        self.norm1 = TernaryLayerNorm(d, eps=cfg.eps)
        self.attn = Int8Attention(d, cfg.num_heads, qkv_bias=cfg.qkv_bias, per_channel=cfg.per_channel)
        self.ls1 = nn.Identity() if cfg.layer_scale_init is None else LayerScale(d, cfg.layer_scale_init)
        self.norm2 = TernaryLayerNorm(d, eps=cfg.eps)
        self.mlp = Mlp(d, cfg.mlp_hidden, cfg.per_channel)
        self.ls2 = nn.Identity() if cfg.layer_scale_init is None else LayerScale(d, cfg.layer_scale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class FTerViT(nn.Module):
    """Fully ternary ViT: ternary patch embed, blocks, final LayerNorm and head; fp16 cls/pos.

    Args:
        config: an ``FTerViTConfig`` or a dict of its fields.
    Input ``[B, in_chans, img_size, img_size]`` float32, output logits ``[B, num_classes]``.
    """

    def __init__(self, config: FTerViTConfig | dict):
        super().__init__()
        cfg = config if isinstance(config, FTerViTConfig) else FTerViTConfig(**config)
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = TernaryBitConv2d(cfg.in_chans, d, cfg.patch_size, per_channel=cfg.per_channel)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        pos_len = cfg.num_patches + (0 if cfg.no_embed_class else 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_len, d))
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.depth)])
        self.norm = TernaryLayerNorm(d, eps=cfg.eps)
        self.head = TernaryLinear(d, cfg.num_classes, per_channel=cfg.per_channel)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm-style init: truncated normal(0.02) for matrices and embeddings, zero biases."""
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, (TernaryLinear, TernaryBitConv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, TernaryLayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def config(self) -> dict:
        """The architecture as a plain dict (JSON round-trip with ``from_config``)."""
        return dataclasses.asdict(self.cfg)

    @classmethod
    def from_config(cls, config: dict) -> "FTerViT":
        """Build a freshly initialised model from ``config`` (a dict from ``.config``).

        Raises:
            ValueError: unknown or invalid fields.
        """
        known = {f.name for f in dataclasses.fields(FTerViTConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown FTerViT config fields: {unknown}")
        return cls(FTerViTConfig(**config))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)          # [B, N, D]
        cls = fp16_round(self.cls_token).expand(x.shape[0], -1, -1)
        pos = fp16_round(self.pos_embed)
        if self.cfg.no_embed_class:
            x = torch.cat([cls, x + pos], dim=1)
        else:
            x = torch.cat([cls, x], dim=1) + pos
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])
