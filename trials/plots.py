"""Per-epoch plots of a standalone run, rendered headless: accuracy.png and loss.png.

plot_history(history, out_dir)   # history: the per-epoch dicts of metrics.json
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ACCURACY_CURVES = {
    "default": "accuracy",
    "val_precision": "precision",
    "val_recall": "recall",
    "val_f1": "F1",
}


def plot_history(history: list[dict], out: Path) -> None:
    epochs = [row["epoch"] for row in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in ACCURACY_CURVES.items():
        ax.plot(epochs, [row[key] for row in history], marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel="validation score", title="Validation metrics per epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [row["train_loss"] for row in history], marker="o", markersize=3, label="train")
    ax.plot(
        epochs, [row["val_loss"] for row in history], marker="o", markersize=3, label="validation"
    )
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss per epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
