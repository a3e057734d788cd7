"""An independently written BitNet b1.58-style ViT, as a user might spell one: its own activation
quantizer (127/absmax), absmean ternary weights per output channel or per tensor, the LayerNorm
inside each linear written out as mean/variance, ternary patch-embedding weights on the float
image (no quantizer in front), mean or class-token pooling. Used by tests/test_models_coverage.py
and the property tests."""

from __future__ import annotations

import torch
from torch import nn


class SignQuant(nn.Module):
    """Its own activation quantizer spelling: multiply by 127/absmax, round, clamp, divide."""

    def forward(self, x):
        r = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
        return (x * r).round().clamp(-128, 127) / r


def bit_weight(w, per_channel: bool = True):
    """Absmean ternary weights: one scale per output channel (row of ``w``) or per tensor."""
    s = (w.abs().mean(dim=1, keepdim=True) if per_channel else w.abs().mean()).clamp(min=1e-5)
    return (w / s).round().clamp(-1, 1) * s


class BitLinearLN(nn.Linear):
    """BitNet b1.58 linear with its LayerNorm inside (written out as mean/variance), then the
    quantizer and ternary weights."""

    def __init__(self, d_in, d_out, bias=True, per_channel=True):
        super().__init__(d_in, d_out, bias=bias)
        self.per_channel = per_channel

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        x = (x - mu) * torch.rsqrt(var + 1e-5)
        return nn.functional.linear(SignQuant()(x), bit_weight(self.weight, self.per_channel), self.bias)


class FloatPatchEmbed(nn.Conv2d):
    """Ternary conv weights on the raw image: no quantizer in front."""

    def __init__(self, in_chans, d, patch, bias=True, per_channel=True):
        super().__init__(in_chans, d, patch, stride=patch, bias=bias)
        self.per_channel = per_channel

    def forward(self, x):
        w = bit_weight(self.weight.flatten(1), self.per_channel)
        return nn.functional.conv2d(x, w.view_as(self.weight),
                                    self.bias, stride=self.stride)


class BitBlock(nn.Module):
    def __init__(self, d, heads, hidden=None, **lin):
        super().__init__()
        hidden = hidden or 2 * d
        self.h, self.hd = heads, d // heads
        self.qkv, self.proj = BitLinearLN(d, 3 * d, **lin), BitLinearLN(d, d, **lin)
        self.fc1, self.fc2 = BitLinearLN(d, hidden, **lin), BitLinearLN(hidden, d, **lin)
        self.q = SignQuant()

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.hd).permute(2, 0, 3, 1, 4)
        q, k = self.q(q), self.q(k)
        v = self.q(v.transpose(-1, -2)).transpose(-1, -2)
        att = torch.softmax(q @ k.transpose(-1, -2) * self.hd ** -0.5, dim=-1)
        att = torch.clamp(torch.round(att * 255), 0, 255) / 255
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(x)))


class BitNetViT(nn.Module):
    """``pool="mean"``: the head reads the mean over the patch tokens; ``"token"``: a learned
    class token is prepended and the head reads it."""

    def __init__(self, d=32, depth=2, heads=2, classes=7, img=16, patch=4, in_chans=1,
                 hidden=None, bias=True, per_channel=True, pool="mean"):
        super().__init__()
        if pool not in ("mean", "token"):
            raise ValueError(f"pool must be 'mean' or 'token', not {pool!r}")
        lin = dict(bias=bias, per_channel=per_channel)
        self.pool = pool
        self.embed = FloatPatchEmbed(in_chans, d, patch, **lin)
        tokens = (img // patch) ** 2 + (pool == "token")
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.1) if pool == "token" else None
        self.pos = nn.Parameter(torch.randn(1, tokens, d) * 0.1)
        self.blocks = nn.Sequential(*[BitBlock(d, heads, hidden, **lin) for _ in range(depth)])
        self.head = BitLinearLN(d, classes, **lin)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(x + self.pos)
        return self.head(x.mean(dim=1) if self.pool == "mean" else x[:, 0])
