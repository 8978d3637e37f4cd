"""Attention heatmaps (log days 3.15-3.16): every head's map and the head average, per variant.

    python -m analysis.attention --out runs/attention
    python -m analysis.attention --variants gqa --embed-dim 256 --heads 8 --kv-heads 4 --seq-len 10

Defaults are the log's: embed 256, 8 heads, 4 kv heads (GQA), length 10, random input (seed 0).
Writes attention_<variant>.png (a grid of each head's map plus the average, query position
against key position, colour bar) and prints parameter counts and the key/value cache per
token of the three variants: the reason MQA and GQA exist.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from models.attention import MultiHeadAttention  # noqa: E402

VARIANTS = ("mha", "gqa", "mqa")


def kv_heads_for(variant: str, heads: int, kv_heads: int) -> int:
    return {"mha": heads, "gqa": kv_heads, "mqa": 1}[variant]


def size_table(embed_dim: int, heads: int, kv_heads: int) -> str:
    lines = [
        "| variant | kv heads | parameters | kv cache per token (numbers) |",
        "|---|---|---|---|",
    ]
    for variant in VARIANTS:
        m = MultiHeadAttention(embed_dim, heads, kv_heads_for(variant, heads, kv_heads))
        n = sum(p.numel() for p in m.parameters())
        lines.append(f"| {m.variant} | {m.num_kv_heads} | {n} | {m.kv_cache_per_token()} |")
    return "\n".join(lines)


def plot_heads(weights: torch.Tensor, title: str, path: Path) -> Path:
    """weights: (heads, tgt, src) for one sequence."""
    heads = weights.shape[0]
    panels = heads + 1
    cols = min(panels, 3 if panels <= 9 else 4)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    vmax = float(weights.max())
    maps = [*weights, weights.mean(dim=0)]
    names = [f"head {h}" for h in range(heads)] + ["average of heads"]
    image = None
    for ax, m, name in zip(axes.flat, maps, names):
        image = ax.imshow(m.numpy(), cmap="viridis", vmin=0.0, vmax=vmax)
        ax.set(title=name, xlabel="key position", ylabel="query position")
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight")
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render(variants, embed_dim, heads, kv_heads, seq_len, seed, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for variant in variants:
        torch.manual_seed(seed)
        m = MultiHeadAttention(embed_dim, heads, kv_heads_for(variant, heads, kv_heads))
        x = torch.randn(1, seq_len, embed_dim)
        with torch.no_grad():
            _, weights = m(x, x, x)
        title = (
            f"{m.variant}: {heads} query heads, {m.num_kv_heads} kv heads, "
            f"embed {embed_dim}, length {seq_len}"
        )
        paths.append(plot_heads(weights[0], title, out / f"attention_{variant}.png"))
    return paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.attention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder for the attention_<variant>.png maps")
    p.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="which of mha, gqa, mqa to draw (default all)",
    )
    p.add_argument("--embed-dim", type=int, default=256, help="embedding width (default 256)")
    p.add_argument("--heads", type=int, default=8, help="query heads (default 8)")
    p.add_argument("--kv-heads", type=int, default=4, help="key/value heads of GQA (default 4)")
    p.add_argument("--seq-len", type=int, default=10, help="sequence length (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and input (default 0)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(size_table(args.embed_dim, args.heads, args.kv_heads))
        paths = render(
            args.variants,
            args.embed_dim,
            args.heads,
            args.kv_heads,
            args.seq_len,
            args.seed,
            Path(args.out),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
