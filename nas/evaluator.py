"""The NAS evaluator: trains one sampled architecture with the shared engine and reports it
with the MLP trial's contract (intermediate per epoch, exactly one final).

NNI runs `evaluate_architecture(model, **settings)` in a fresh trial process per architecture;
nothing is shared between trials (the log appended to global lists). The final result carries
the architecture in numbers (the model's `describe()`: depth and widths, or attention kind,
heads, kv heads, KV-cache bytes per token) and the mean seconds per epoch; with save_model the
trained weights go to the trial's output folder as model.pt (with how to rebuild the model).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nnisuite.config.nas_settings import DEFAULTS
from nnisuite.outputs import replaced
from nnisuite.trials.data import load_dataset
from nnisuite.trials.engine import FitConfig, fit
from nnisuite.trials.report import NNIReporter


def reseed_parameters(model: torch.nn.Module, seed: int) -> None:
    """Initialise the weights from `seed`, whatever RNG state built the model."""
    torch.manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters") and module is not model:
            module.reset_parameters()


def hidden_widths(model) -> list[int]:
    return [block.linear.out_features for block in model.hidden]


def describe(model) -> dict:
    """The architecture's numbers for the table (scalars only)."""
    if hasattr(model, "describe"):
        return {k: v for k, v in model.describe().items() if not isinstance(v, dict)}
    widths = hidden_widths(model)
    return {"depth": len(widths), "widths": "-".join(map(str, widths))}


def save_model(model, folder: str) -> None:
    """model.pt: the weights and how to rebuild the model
    (nnisuite.models.transformer.RowTransformer)."""
    kwargs = model.describe().get("transformer_kwargs") if hasattr(model, "describe") else None
    state = {"state_dict": model.state_dict(), "transformer_kwargs": kwargs}
    with replaced(Path(folder) / "model.pt") as tmp:  # a link planted there is replaced
        torch.save(state, tmp)


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
    trial_seeds=DEFAULTS["trial_seeds"],
    threads=None,
    split_seed=0,
    save=False,
) -> dict:
    """Train and report one architecture. The data split is the same for every architecture
    (split_seed); the architecture's `seed` choice sets weights and batch order. With
    trial_seeds > 1 the trial trains the architecture once per seed (seed, seed + 1, ...) and
    reports the mean (`default`) with its spread (`default_std`): what a strategy then
    optimizes; the intermediate results are the per-epoch means."""
    import copy
    import statistics

    if threads:
        torch.set_num_threads(int(threads))
    reporter = NNIReporter()
    first_seed = int(getattr(model, "seed", 0))
    data = load_dataset(dataset, data_dir, seed=split_seed)
    results, kept = [], None
    for seed in range(first_seed, first_seed + int(trial_seeds)):
        run = copy.deepcopy(model) if trial_seeds > 1 else model
        reseed_parameters(run, seed)
        config = FitConfig(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            momentum=momentum,
            seed=seed,
        )
        on_epoch = reporter.intermediate if trial_seeds == 1 else None
        results.append(fit(run, data, config, on_epoch=on_epoch))
        if kept is None or results[-1].final["default"] > kept[1]:
            kept = (run, results[-1].final["default"])
    if trial_seeds > 1:
        for epoch_rows in zip(*(r.history for r in results)):
            keys = [k for k in epoch_rows[0] if k != "epoch"]
            mean = {k: statistics.fmean(row[k] for row in epoch_rows) for k in keys}
            reporter.intermediate({"epoch": epoch_rows[0]["epoch"], **mean})
    finals = [r.final for r in results]
    final = dict(finals[0])
    for key, value in finals[0].items():
        if isinstance(value, float):
            final[key] = statistics.fmean(f[key] for f in finals)
    final["diverged"] = any(f["diverged"] for f in finals)
    if trial_seeds > 1:
        final["default_std"] = statistics.stdev(f["default"] for f in finals)
        final["test_accuracy_std"] = statistics.stdev(f["test_accuracy"] for f in finals)
    epoch_s = [row["epoch_seconds"] for r in results for row in r.history]
    final |= {"seed": first_seed, "trial_seeds": int(trial_seeds)} | describe(model)
    final["epoch_seconds"] = sum(epoch_s) / len(epoch_s) if epoch_s else 0.0
    if save and os.environ.get("NNI_OUTPUT_DIR"):
        save_model(kept[0], os.environ["NNI_OUTPUT_DIR"])  # the best of its seeds
    reporter.final(final)
    return final
