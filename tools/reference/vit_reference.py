"""Minimal PyTorch reference Vision Transformer using timm parameter names.

Written from a description of timm's ``VisionTransformer`` (the plain
"token" pooling variant), not copied from timm. It exists only to produce
parity fixtures for the TypeScript backbone in ``packages/backbone``.

Semantics:
  * patch embedding: Conv2d(in_chans, D, kernel=p, stride=p), flattened to
    [B, N, D] in row-major (h, w) patch order;
  * a class token is prepended, then a learned position embedding
    [1, 1 + N, D] is added to every token;
  * pre-norm blocks: ``x = x + drop_path(attn(norm1(x)))`` then
    ``x = x + drop_path(mlp(norm2(x)))``;
  * attention uses a fused qkv Linear(D, 3D); its output is reshaped to
    (B, N, 3, H, dh), i.e. rows ordered q|k|v and head-major inside each;
    logits are ``q @ k^T * dh**-0.5``, softmax, ``@ v``, then ``proj``;
  * MLP: Linear(D, hidden) -> exact (erf) GELU -> Linear(hidden, D);
  * LayerNorm eps 1e-6 everywhere; final LayerNorm over all tokens;
  * head (Linear(D, num_classes)) is applied to token 0 (no pre-logits,
    no fc_norm).

Images are NCHW, as usual in PyTorch.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def _trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    # Truncated at +/- 2 std (timm truncates at absolute +/-2, which for
    # std .02 never bites; both are fine for a reference whose parameters
    # are overwritten by the fixture script anyway).
    with torch.no_grad():
        return nn.init.trunc_normal_(t, mean=0.0, std=std, a=-2 * std, b=2 * std)


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode or when p == 0)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        if img_size % patch_size != 0:
            raise ValueError("img_size must be divisible by patch_size")
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size * self.grid_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # [B, D, gh, gw]
        return x.flatten(2).transpose(1, 2)  # [B, N, D]


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward_with_logits(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # [3, B, H, N, dh]
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = (q @ k.transpose(-2, -1)) * self.scale  # [B, H, N, N]
        attn = logits.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out), logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_logits(x)[0]


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf GELU
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        eps: float,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path2 = DropPath(drop_path)

    def forward_with_logits(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        a, logits = self.attn.forward_with_logits(self.norm1(x))
        x = x + self.drop_path1(a)
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x, logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_logits(x)[0]


class VisionTransformer(nn.Module):
    def __init__(
        self,
        img_size: int,
        patch_size: int,
        in_chans: int,
        num_classes: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        eps: float = 1e-6,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio, qkv_bias, eps, rates[i]) for i in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=eps)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        _trunc_normal_(self.pos_embed, std=0.02)
        with torch.no_grad():
            nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                # timm keeps PyTorch's default conv init for patch_embed in the
                # plain ViT; lecun-ish uniform is fine here.
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(m.weight, -bound, bound)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        return x + self.pos_embed

    def forward_intermediates(
        self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, List[torch.Tensor], List[torch.Tensor], torch.Tensor]:
        """Returns (logits, block_outputs, attn_logits, final_normed_cls).

        block_outputs: per block, the residual stream [B, N, D] (pre final norm).
        attn_logits: per block, pre-softmax scaled logits [B, H, N, N].
        final_normed_cls: token 0 after the final LayerNorm, [B, D].
        """
        x = self.embed(x)
        block_outputs: List[torch.Tensor] = []
        attn_logits: List[torch.Tensor] = []
        for blk in self.blocks:
            x, logits = blk.forward_with_logits(x)
            block_outputs.append(x)
            attn_logits.append(logits)
        x = self.norm(x)
        cls = x[:, 0]
        return self.head(cls), block_outputs, attn_logits, cls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.head(x[:, 0])
