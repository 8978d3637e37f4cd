"""Multi-head attention with grouped key/value heads: MHA, GQA and MQA in one module.

    mha = MultiHeadAttention(256, num_heads=8)                  # num_kv_heads = 8
    gqa = MultiHeadAttention(256, num_heads=8, num_kv_heads=4)  # query head h uses kv h // 2
    mqa = MultiHeadAttention(256, num_heads=8, num_kv_heads=1)
    out, weights = gqa(x, x, x)    # out (batch, tgt, 256), weights (batch, 8, tgt, src)

Each head has its own slice of the q / k / v projections (head_dim = embed_dim / num_heads) and
scores are scaled by 1/sqrt(head_dim); the log scaled by 1/sqrt(embed_dim) and shared one small
projection across heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(
        self, embed_dim: int, num_heads: int, num_kv_heads: int | None = None, bias: bool = False
    ):
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if embed_dim <= 0 or num_heads <= 0 or num_kv_heads <= 0:
            raise ValueError("embed_dim, num_heads and num_kv_heads must be positive")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(
                f"num_heads {num_heads} is not divisible by num_kv_heads {num_kv_heads}"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = embed_dim // num_heads
        kv_dim = num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, kv_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, kv_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @property
    def variant(self) -> str:
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"

    def kv_cache_per_token(self) -> int:
        """Numbers cached per token per layer at inference: keys and values."""
        return 2 * self.num_kv_heads * self.head_dim

    def split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, heads, self.head_dim).transpose(1, 2)  # (batch, heads, n, head_dim)

    def forward(
        self, query, key, value, attn_mask=None, is_causal: bool = False, need_weights: bool = True
    ):
        """query (batch, tgt, embed), key / value (batch, src, embed). attn_mask: bool (True =
        attend) or additive float, broadcastable to (batch, heads, tgt, src)."""
        if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
            raise ValueError("query, key and value must be (batch, length, embed_dim)")
        if (
            query.shape[-1] != self.embed_dim
            or key.shape[-1] != self.embed_dim
            or (value.shape[-1] != self.embed_dim)
        ):
            raise ValueError(
                f"last dimension must be embed_dim {self.embed_dim}, got "
                f"{query.shape[-1]}, {key.shape[-1]}, {value.shape[-1]}"
            )
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"mismatched batch / source lengths: query {tuple(query.shape)}, "
                f"key {tuple(key.shape)}, value {tuple(value.shape)}"
            )
        q = self.split(self.q_proj(query), self.num_heads)  # (b, H, tgt, d)
        k = self.split(self.k_proj(key), self.num_kv_heads)  # (b, KV, src, d)
        v = self.split(self.v_proj(value), self.num_kv_heads)
        group = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(group, dim=1)  # query head h uses kv head h // group
        v = v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (b, H, tgt, src)
        tgt, src = scores.shape[-2:]
        if is_causal:
            causal = torch.ones(tgt, src, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(query.shape[0], tgt, self.embed_dim)
        return self.out_proj(out), (weights if need_weights else None)
