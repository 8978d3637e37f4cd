"""A small transformer classifier that reads an image as a sequence of rows (log days
3.15-3.16's attention, put to work): MHA, GQA or MQA by its number of key/value heads.

    model = RowTransformer(28, 28, 10, embed_dim=64, num_heads=4, num_kv_heads=1, depth=2)
    logits = model(x)            # x: (batch, 28 * 28) or (batch, 28, 28) -> (batch, 10)
    maps = model.attention_maps(x)   # per block: (batch, heads, rows, rows)

Rows (28 tokens of 28 features for the MNIST family, 8 of 8 for digits) -> a linear input
projection plus a learned position embedding -> `depth` pre-norm encoder blocks (LayerNorm ->
nnisuite.models.attention.MultiHeadAttention -> residual; LayerNorm -> MLP (4x, GELU) ->
residual) -> a final LayerNorm -> the mean over rows -> a linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from nnisuite.models.attention import MultiHeadAttention


class EncoderBlock(nn.Module):
    """Pre-norm: x + attention(norm(x)), then x + mlp(norm(x)). Keeps the last attention
    weights (batch, heads, tokens, tokens) when `keep_weights` is set."""

    def __init__(self, embed_dim: int, num_heads: int, num_kv_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads, num_kv_heads, bias=True)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, mlp_ratio * embed_dim),
            nn.GELU(),
            nn.Linear(mlp_ratio * embed_dim, embed_dim),
        )
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, tokens, embed)
        h = self.norm1(x)
        out, weights = self.attn(h, h, h, need_weights=self.keep_weights)
        self.weights = weights
        x = x + out
        return x + self.mlp(self.norm2(x))


class RowTransformer(nn.Module):
    def __init__(
        self,
        rows: int,
        columns: int,
        num_classes: int,
        embed_dim: int = 64,
        num_heads: int = 4,
        num_kv_heads: int | None = None,
        depth: int = 1,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.rows, self.columns = rows, columns
        self.embed = nn.Linear(columns, embed_dim)
        self.position = nn.Parameter(torch.zeros(1, rows, embed_dim))
        nn.init.normal_(self.position, std=0.02)
        kv = num_heads if num_kv_heads is None else num_kv_heads
        self.blocks = nn.Sequential(*[EncoderBlock(embed_dim, num_heads, kv) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.rows, self.columns)  # (batch, rows, columns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.tokens(x)) + self.position
        h = self.norm(self.blocks(h))
        return self.head(h.mean(dim=1))

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each block's attention weights for `x`: (batch, heads, rows, rows)."""
        for block in self.blocks:
            block.keep_weights = True
        try:
            self.eval()
            self(x)
            return [block.weights for block in self.blocks]
        finally:
            for block in self.blocks:
                block.keep_weights = False
                block.weights = None
