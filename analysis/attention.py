"""Attention heatmaps (log days 3.15-3.16): every head's map and the head average.

    python -m nnisuite.analysis.attention --out runs/attention                        # random input
    python -m nnisuite.analysis.attention --variants gqa --embed-dim 256 --heads 8 --kv-heads 4 \
        --seq-len 10
    python -m nnisuite.analysis.attention --model runs/nas-attn/best_model.pt --out runs/attention

With --model (a trained nnisuite.models.transformer.RowTransformer, as `python -m nnisuite.nas
--config experiments/nas_attention.yaml` keeps its best): for --images test images of the dataset it
was trained on, the image beside each head's map and the head average of the last encoder
block, over the image's rows (query row against key row): attention_trained_<i>.png.

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
from typing import TYPE_CHECKING

from nnisuite.flags import Parser
from nnisuite.outputs import check_writable, folder_flag, save_figure
from nnisuite.trials.data import DATASETS, DatasetError

if TYPE_CHECKING:
    import torch

VARIANTS = ("mha", "gqa", "mqa")


def pyplot():
    """matplotlib's pyplot (Agg), imported when the first map is drawn: a bad flag is reported
    before PyTorch and matplotlib load (3 s of CPU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def kv_heads_for(variant: str, heads: int, kv_heads: int) -> int:
    return {"mha": heads, "gqa": kv_heads, "mqa": 1}[variant]


def size_table(embed_dim: int, heads: int, kv_heads: int) -> str:
    lines = [
        "| variant | kv heads | parameters | kv cache per token (numbers) |",
        "|---|---|---|---|",
    ]
    from nnisuite.models.attention import MultiHeadAttention

    for variant in VARIANTS:
        m = MultiHeadAttention(embed_dim, heads, kv_heads_for(variant, heads, kv_heads))
        n = sum(p.numel() for p in m.parameters())
        lines.append(f"| {m.variant} | {m.num_kv_heads} | {n} | {m.kv_cache_per_token()} |")
    return "\n".join(lines)


def plot_heads(weights: torch.Tensor, title: str, path: Path) -> Path:
    """weights: (heads, tgt, src) for one sequence."""
    plt = pyplot()
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
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


def render(variants, embed_dim, heads, kv_heads, seq_len, seed, out: Path) -> list[Path]:
    import torch

    from nnisuite.models.attention import MultiHeadAttention

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


def load_model(path: str | Path):
    """A trained RowTransformer saved by nnisuite.nas.evaluator.save_model. Read with
    `weights_only=True`: tensors and plain values only, so a file from someone else cannot run
    code here (a pickled module or any other object is refused). ValueError, one line, for
    anything that is not such a file."""

    import torch

    from nnisuite.models.transformer import RowTransformer

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--model {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises anything for a foreign file
        what = "holds objects beyond weights" if "Weights only" in str(exc) else "unreadable"
        raise ValueError(
            f"--model {path}: not a saved attention classifier ({what}; loaded as weights "
            "only, never as code)"
        ) from None
    kwargs = state.get("transformer_kwargs") if isinstance(state, dict) else None
    if not isinstance(kwargs, dict) or not isinstance(state.get("state_dict"), dict):
        raise ValueError(
            f"--model {path}: not a saved attention classifier (no transformer_kwargs)"
        )
    try:
        model = RowTransformer(**kwargs)
        model.load_state_dict(state["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"--model {path}: its weights do not fit its model ({first})") from None
    return model.eval(), kwargs


def render_trained(path, dataset: str | None, images: int, out: Path) -> list[Path]:
    from nnisuite.trials.data import load_dataset

    plt = pyplot()
    model, kwargs = load_model(path)
    rows, columns = kwargs["rows"], kwargs["columns"]
    dataset = dataset or ("digits" if (rows, columns) == (8, 8) else "fashion-mnist")
    data = load_dataset(dataset)
    if tuple(data.image_shape) != (rows, columns):
        raise ValueError(
            f"{path} reads {rows}x{columns} images; {dataset}'s are "
            f"{data.image_shape[0]}x{data.image_shape[1]}: give the --dataset it was trained on"
        )
    x, y = data.test_x[:images], data.test_y[:images]
    maps = model.attention_maps(x)[-1]  # last block: (images, heads, rows, rows)
    predicted = model(x).argmax(1)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    kind = (
        "MHA"
        if kwargs["num_kv_heads"] == kwargs["num_heads"]
        else ("MQA" if kwargs["num_kv_heads"] == 1 else "GQA")
    )
    for i in range(len(x)):
        weights = maps[i]
        heads = weights.shape[0]
        panels = heads + 2  # the image, each head, their average
        cols = min(panels, 5)
        grid = math.ceil(panels / cols)
        fig, axes = plt.subplots(grid, cols, figsize=(2.9 * cols, 2.9 * grid + 0.6), squeeze=False)
        flat = list(axes.flat)
        flat[0].imshow(x[i].reshape(rows, columns).numpy(), cmap="gray")
        flat[0].set_title(f"test image {i}\nclass {int(y[i])}, predicted {int(predicted[i])}")
        flat[0].axis("off")
        vmax = float(weights.max())
        maps_i = [*weights, weights.mean(0)]
        names = [f"head {h}" for h in range(heads)] + ["average of heads"]
        image = None
        for k, (ax, m, name) in enumerate(zip(flat[1:], maps_i, names), start=1):
            image = ax.imshow(m.numpy(), cmap="viridis", vmin=0, vmax=vmax)
            ax.set_title(name)
            ax.set_xlabel("key row")
            if k % cols == 0:  # the first column
                ax.set_ylabel("query row")
        for ax in flat[panels:]:
            ax.axis("off")
        fig.colorbar(image, ax=flat[1:panels], shrink=0.8, label="attention weight")
        fig.suptitle(
            f"trained {kind}: {kwargs['num_heads']} heads, {kwargs['num_kv_heads']} kv heads, "
            f"embed {kwargs['embed_dim']}, depth {kwargs['depth']}; last block on {dataset}"
        )
        path_i = out / f"attention_trained_{i}.png"
        save_figure(fig, path_i, dpi=80)
        plt.close(fig)
        paths.append(path_i)
    return paths


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.analysis.attention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for the attention_<variant>.png maps"
    )
    p.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        help="which of mha, gqa, mqa to draw (default all; not with --model)",
    )
    p.add_argument("--embed-dim", type=int, help="embedding width (default 256; not with --model)")
    p.add_argument("--heads", type=int, help="query heads (default 8; not with --model)")
    p.add_argument("--kv-heads", type=int, help="key/value heads of GQA (default 4; not --model)")
    p.add_argument("--seq-len", type=int, help="sequence length (default 10; not with --model)")
    p.add_argument("--seed", type=int, help="seed of weights and input (default 0; not --model)")
    p.add_argument("--model", help="a trained attention classifier (best_model.pt of a NAS run)")
    p.add_argument("--dataset", help="with --model: its data (default: by its input shape)")
    p.add_argument("--images", type=int, help="with --model: test images to draw (default 3)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    untrained = {"variants": list(VARIANTS), "embed_dim": 256, "heads": 8, "kv_heads": 4}
    untrained |= {"seq_len": 10, "seed": 0}
    given = [f"--{k.replace('_', '-')}" for k in untrained if getattr(args, k) is not None]
    if args.model and given:
        parser.error(f"{', '.join(given)} shape the untrained maps; a --model has its own")
    if not args.model and (args.dataset is not None or args.images is not None):
        parser.error("--dataset and --images draw a trained model's maps: give --model too")
    for name, value in untrained.items():
        setattr(args, name, value if getattr(args, name) is None else getattr(args, name))
    args.images = 3 if args.images is None else args.images
    limits = {"embed_dim": 8192, "heads": 256, "kv_heads": 256, "seq_len": 4096, "images": 100}
    for name, most in limits.items():
        if not 1 <= getattr(args, name) <= most:
            flag = f"--{name.replace('_', '-')}"
            parser.error(f"{flag} must be in 1..{most}, got {getattr(args, name)}")
    if not 0 <= args.seed < 2**32:
        parser.error(f"--seed must be in 0..2**32-1, got {args.seed}")
    if args.dataset is not None and args.dataset not in DATASETS:
        parser.error(f"--dataset {args.dataset!r} unknown; choose one of {', '.join(DATASETS)}")
    problem = check_writable(Path(args.out), "--out")
    if problem:
        parser.error(problem)
    if args.model:
        try:
            paths = render_trained(args.model, args.dataset, args.images, Path(args.out))
        except (OSError, ValueError, KeyError, DatasetError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("wrote " + ", ".join(str(p) for p in paths))
        return 0
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
