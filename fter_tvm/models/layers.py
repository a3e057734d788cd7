"""FTerViT building blocks: ternary linear / patch conv / LayerNorm and int8 attention (SPEC §1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .quant import fake_quant_act, fake_quant_prob, fake_ternary


class TernaryLinear(nn.Linear):
    """``y = (alpha_c * s_t) * sum_k W_t[c,k] q[t,k] + b_c``: ternary weights, int8 per-token input."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 per_channel: bool = True, per_token: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.per_channel = per_channel
        self.per_token = per_token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = fake_quant_act(x, self.per_token)
        return F.linear(xq, fake_ternary(self.weight, self.per_channel), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", per_channel={self.per_channel}"


class TernaryBitConv2d(nn.Conv2d):
    """Patch embedding: a stride == kernel conv computed as im2col + TernaryLinear.

    Each patch is a token: its ``C*p*p`` values are quantized per patch to int8, and the conv
    weight is ternarized per output channel (or per tensor).
    """

    def __init__(self, in_channels: int, out_channels: int, patch: int, bias: bool = True,
                 per_channel: bool = True):
        super().__init__(in_channels, out_channels, patch, stride=patch, bias=bias)
        self.per_channel = per_channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.kernel_size[0]
        gh, gw = h // p, w // p
        # im2col for stride == kernel is a pure reshape/permute: [B, gh*gw, C*p*p] in (c, kh, kw) order
        cols = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * p * p)
        wmat = fake_ternary(self.weight, self.per_channel).reshape(self.out_channels, c * p * p)
        y = F.linear(fake_quant_act(cols), wmat, self.bias)  # [B, N, D]
        return y.permute(0, 2, 1).reshape(b, self.out_channels, gh, gw)


class TernaryLayerNorm(nn.LayerNorm):
    """LayerNorm whose gamma and beta are ternary vectors with one absmean scale each."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = fake_ternary(self.weight, per_channel=False)
        beta = fake_ternary(self.bias, per_channel=False)
        return F.layer_norm(x, self.normalized_shape, gamma, beta, self.eps)


class Int8Attention(nn.Module):
    """Multi-head self attention with integer QK^T and P.V.

    Q and K are quantized per token (per head) to int8, V per channel over the tokens (so its
    scale factors out of the P.V sum), softmax runs in fp32 and its probabilities are put on the
    uint8 grid 1/255 before P.V.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, per_channel: bool = True,
                 qk_norm: bool = False, eps: float = 1e-6):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = TernaryLinear(dim, dim * 3, bias=qkv_bias, per_channel=per_channel)
        self.proj = TernaryLinear(dim, dim, per_channel=per_channel)
        # timm's qk_norm (a LayerNorm over each head's channels) and scale_norm (before proj)
        self.q_norm = TernaryLayerNorm(self.head_dim, eps=eps) if qk_norm else nn.Identity()
        self.k_norm = TernaryLayerNorm(self.head_dim, eps=eps) if qk_norm else nn.Identity()
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        if attn_mask is not None or is_causal:   # timm's Block passes them through
            raise ValueError("Int8Attention has no attention mask")
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                      # [B, H, N, hd]
        q = fake_quant_act(self.q_norm(q))
        k = fake_quant_act(self.k_norm(k))
        v = fake_quant_act(v.transpose(-2, -1)).transpose(-2, -1)   # per channel over tokens
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        o = fake_quant_prob(attn) @ v
        return self.proj(self.norm(o.transpose(1, 2).reshape(b, n, c)))
