"""The attention model space: nnisuite.models.transformer.RowTransformer with its attention
searched.

    space = AttentionSpace(8, 8, 10)                       # digits: 8 rows of 8 pixels
    model = space.freeze({"kind": "GQA", "heads": 4, "embed_dim": 64, "depth": 2, "seed": 0})

Choices, each with the label a reader sees in NNI's web UI and the tables:
- `kind`: MHA, GQA or MQA, i.e. num_kv_heads = heads, heads / 2, 1 (log days 3.15-3.16);
- `heads`: query heads, 2, 4 or 8;
- `embed_dim`: embedding width, 32 or 64;
- `depth`: encoder blocks, an NNI `Repeat` of 1 to 3;
- `seed`: one value per repeated training, as in nnisuite.nas.space.DepthSpace.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings(
    "ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning
)

import nni  # noqa: E402
from nni.mutable import ensure_frozen  # noqa: E402
from nni.nas.nn.pytorch import ModelSpace, Repeat  # noqa: E402
from nni.nas.space import model_context  # noqa: E402
from torch import nn  # noqa: E402

from nnisuite.config.nas_settings import ATTENTION_CHOICES  # noqa: E402
from nnisuite.models.costs import KV_CACHE  # noqa: E402
from nnisuite.models.transformer import EncoderBlock  # noqa: E402

KINDS, HEADS, EMBED_DIMS, DEPTHS = (
    ATTENTION_CHOICES[k] for k in ("kind", "heads", "embed_dim", "depth")
)


def kv_heads(kind: str, heads: int) -> int:
    return {"MHA": heads, "GQA": max(1, heads // 2), "MQA": 1}[kind]


class AttentionSpace(ModelSpace):
    def __init__(self, rows: int, columns: int, num_classes: int, repeats: int = 1):
        super().__init__()
        self.rows, self.columns = rows, columns
        self.seed = ensure_frozen(self.add_mutable(nni.choice("seed", list(range(repeats)))))
        self.kind = ensure_frozen(self.add_mutable(nni.choice("kind", list(KINDS))))
        self.heads = ensure_frozen(self.add_mutable(nni.choice("heads", list(HEADS))))
        self.embed_dim = ensure_frozen(self.add_mutable(nni.choice("embed_dim", list(EMBED_DIMS))))
        self.kv_heads = kv_heads(self.kind, self.heads)
        e, h, kv = self.embed_dim, self.heads, self.kv_heads
        self.embed = nn.Linear(columns, e)
        self.position = nn.Parameter(_zeros(rows, e))
        self.blocks = Repeat(
            lambda index: EncoderBlock(e, h, kv), nni.choice("depth", list(DEPTHS))
        )
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, num_classes)

    def freeze(self, sample: dict) -> AttentionSpace:
        """A fixed model of this space: the constructor run again with the sample in context."""
        with model_context(sample):
            return self.__class__(*self.trace_args, **self.trace_kwargs)

    def forward(self, x):
        h = self.embed(x.reshape(x.shape[0], self.rows, self.columns)) + self.position
        return self.head(self.norm(self.blocks(h)).mean(dim=1))

    def describe(self) -> dict:
        """The architecture in numbers, for the NAS table (a frozen model)."""
        depth = len(self.blocks)
        head_dim = self.embed_dim // self.heads
        return {
            "kind": self.kind,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "embed_dim": self.embed_dim,
            "depth": depth,
            # keys and values of every block, float32
            KV_CACHE: 2 * self.kv_heads * head_dim * depth * 4,
            "transformer_kwargs": {
                "rows": self.rows,
                "columns": self.columns,
                "num_classes": self.head.out_features,
                "embed_dim": self.embed_dim,
                "num_heads": self.heads,
                "num_kv_heads": self.kv_heads,
                "depth": depth,
            },
        }


def _zeros(rows: int, embed_dim: int):
    import torch

    position = torch.zeros(1, rows, embed_dim)
    nn.init.normal_(position, std=0.02)
    return position
