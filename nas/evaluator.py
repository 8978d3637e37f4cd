"""The NAS evaluator: trains one sampled architecture with the shared engine and reports it
with the MLP trial's contract (intermediate per epoch, exactly one final).

NNI runs `evaluate_architecture(model, **settings)` in a fresh trial process per architecture;
nothing is shared between trials (the log appended to global lists).
"""

from __future__ import annotations

import torch

from nas.settings import DEFAULTS
from trials.data import load_dataset
from trials.engine import FitConfig, fit
from trials.report import NNIReporter


def reseed_parameters(model: torch.nn.Module, seed: int) -> None:
    """Initialise the weights from `seed`, whatever RNG state built the model."""
    torch.manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters") and module is not model:
            module.reset_parameters()


def hidden_widths(model) -> list[int]:
    return [block.linear.out_features for block in model.hidden]


def evaluate_architecture(
    model,
    *,
    dataset=DEFAULTS["dataset"],
    data_dir=DEFAULTS["data_dir"],
    epochs=DEFAULTS["epochs"],
    lr=DEFAULTS["lr"],
    batch_size=DEFAULTS["batch_size"],
    optimizer=DEFAULTS["optimizer"],
    momentum=DEFAULTS["momentum"],
    threads=None,
    split_seed=0,
) -> dict:
    """Train and report one architecture. The data split is the same for every architecture
    (split_seed); the architecture's `seed` choice sets weights and batch order."""
    if threads:
        torch.set_num_threads(int(threads))
    reporter = NNIReporter()
    seed = int(getattr(model, "seed", 0))
    data = load_dataset(dataset, data_dir, seed=split_seed)
    reseed_parameters(model, seed)
    config = FitConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        momentum=momentum,
        seed=seed,
    )
    result = fit(model, data, config, on_epoch=reporter.intermediate)
    widths = hidden_widths(model)
    final = result.final | {
        "seed": seed,
        "depth": len(widths),
        "widths": "-".join(map(str, widths)),
    }
    reporter.final(final)
    return final
