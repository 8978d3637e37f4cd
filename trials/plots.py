"""Per-epoch plots of a standalone run, rendered headless: accuracy.png and loss.png.

plot_history(history, out_dir)   # history: the per-epoch dicts of metrics.json
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nnisuite.outputs import save_figure

ACCURACY_CURVES = {
    "default": "accuracy",
    "val_precision": "precision",
    "val_recall": "recall",
    "val_f1": "F1",
}


def plot_curves(path: Path, epochs, curves: dict[str, list], ylabel: str, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        ax.plot(epochs, values, marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def plot_history(history: list[dict], out: Path) -> None:
    epochs = [row["epoch"] for row in history]
    accuracy = {label: [row[key] for row in history] for key, label in ACCURACY_CURVES.items()}
    plot_curves(
        out / "accuracy.png", epochs, accuracy, "validation score", "Validation metrics per epoch"
    )
    losses = {
        "train": [row["train_loss"] for row in history],
        "validation": [row["val_loss"] for row in history],
    }
    plot_curves(out / "loss.png", epochs, losses, "cross-entropy loss", "Loss per epoch")
