"""Classification metrics from one confusion matrix over a whole split (vectorised).

    cm = confusion_matrix(pred, target, num_classes)   # rows: true class, columns: predicted
    classification_metrics(cm)  # {"accuracy", "precision", "recall", "f1"}; macro averages

Macro averages follow scikit-learn's `average="macro", zero_division=0`: over the classes that
occur in the targets or the predictions, a class with no predicted (or no true) sample counting
0 precision (or recall).
"""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts; cm[t, p] = samples of class t predicted p."""
    flat = target.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def classification_metrics(cm: torch.Tensor) -> dict[str, float]:
    cm = cm.double()
    tp = cm.diagonal()
    true_count = cm.sum(dim=1)
    pred_count = cm.sum(dim=0)
    present = (true_count + pred_count) > 0
    precision = torch.where(pred_count > 0, tp / pred_count.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(true_count > 0, tp / true_count.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), 0.0)
    n_present = max(int(present.sum()), 1)
    total = float(cm.sum())
    return {
        "accuracy": float(tp.sum()) / total if total else 0.0,
        "precision": float(precision[present].sum()) / n_present,
        "recall": float(recall[present].sum()) / n_present,
        "f1": float(f1[present].sum()) / n_present,
    }
