"""The best model of a study, in the user's hands: the configuration chosen by validation
accuracy, retrained over seeds on the study's splits, tested once, saved as a model that loads
without nnisuite, with a model card. HPO studies of nnisuite's trials (nnisuite.trials.mlp,
nnisuite.trials.rnn) and NAS studies (`python -m nnisuite.nas`: the depth space and the attention
search) alike.

    python -m nnisuite.deploy.best ID --out best/         # after `python -m nnisuite.study.run ...`
    python -m nnisuite.deploy.best ID --experiment-dir D --out DIR --seeds 5 --epochs 30
    nnisuite best ID --out DIR

What it does:
1. reads the study (NNI's database) and takes the SUCCEEDED trial with the highest validation
   accuracy (NNI's `default` of nnisuite's trials; the test figures are never looked at);
2. retrains that configuration (the trial command's flags and the tuner's parameters; for NAS
   the architecture rebuilt from NNI's record and the evaluator's settings; --epochs and
   --restore-best may change the recipe) with seeds 0..N-1 for the initial weights and the
   batch order, on the same splits as the study (its trial's --seed, NAS's split_seed);
3. picks the median seed by validation accuracy and saves, in --out:
   model.pt2        the model with its preprocessing, as torch.export's program: it takes raw
                    uint8 images (n, rows, cols) as the dataset's files hold them and returns
                    logits (n, classes); `torch.export.load(path).module()(images)` loads it
                    with torch alone (no nnisuite, no model code);
   weights.pt       {"state_dict"} for nnisuite's own model class (an attention classifier's
                    also "transformer_kwargs": `nnisuite attention --model` reads it);
   card.md          data and splits, configuration and its origin, recipe, metrics over seeds,
                    per-class accuracy, parameters, latency, the command that reproduces it;
   confusion.png    the saved model's confusion matrix on the test split;
   seeds.csv, best.json  every seed's figures; the whole record, machine-readable.
The card's test figures for the saved model are computed from model.pt2 as loaded from disk, on
the raw test images.

Why torch.export: it is PyTorch's current format for a whole program (TorchScript is in
maintenance), loads in any Python with torch (`torch.export.load`), keeps a dynamic batch
dimension and needs no model source. Exit codes: 0 done; 2 bad input (an unknown study, a
foreign trial: only nnisuite's own trials can be retrained, no finished trial); 4 --out cannot
be written.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from nnisuite.analysis.direction import usable
from nnisuite.flags import Parser
from nnisuite.models import costs
from nnisuite.outputs import folder_flag

CARD, MODEL, WEIGHTS = "card.md", "model.pt2", "weights.pt"
RECIPE = (
    "epochs",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "batch_size",
    "restore_best",
)
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


class BestError(RuntimeError):
    """A study that cannot give a best model; the message says why."""


def class_names(dataset: str, n: int) -> list[str]:
    if dataset == "fashion-mnist" and n == len(FASHION_CLASSES):
        return list(FASHION_CLASSES)
    return [str(i) for i in range(n)]


@dataclasses.dataclass
class Choice:
    """The trial a study's best model comes from."""

    experiment: str
    trial_id: str
    sequence: int | None
    validation: float  # the trial's own validation accuracy, as NNI recorded it
    test: float | None  # recorded, shown, never used to choose
    parameters: dict  # the tuned parameters, or a NAS trial's architecture choices
    # nnisuite.trials.mlp / .rnn, or the NAS model space (nnisuite.nas.space.DepthSpace)
    module: str
    args: list[str]  # the trial command's flags (HPO)
    tuner: str
    finished: int  # SUCCEEDED trials it was chosen from
    nas: dict | None = None  # a NAS trial's whole serialised model space (NNI's parameters)


def is_nas(params) -> bool:
    return (
        isinstance(params, dict)
        and isinstance(params.get("sample"), dict)
        and ("model_symbol" in params)
    )


def choose(exp) -> Choice:
    """The SUCCEEDED trial with the highest validation accuracy (ties: the earlier trial)."""
    from nnisuite.config.trial import Trial

    config = exp.config
    code_dir = config.get("trialCodeDirectory") or "."
    trial = Trial.parse(str(config.get("trialCommand", "")), Path(code_dir))
    nas = config.get("experimentType") == "nas"
    if not trial.own and not nas:
        raise BestError(
            f"experiment {exp.id} runs {trial.label!r}: `nnisuite best` retrains nnisuite's own "
            "trials (nnisuite.trials.mlp, .rnn) and NAS studies; for your own trial, its best "
            f"parameters are the first row of the trials.csv of `nnisuite export {exp.id}`"
        )
    done = [t for t in exp.trials if t.status == "SUCCEEDED" and usable(t.final.get("default"))]
    if not done:
        raise BestError(f"experiment {exp.id} has no SUCCEEDED trial with a final result")
    best = max(done, key=lambda t: (t.final["default"], -(t.sequence or 0)))
    tuner = config.get("tuner") or config.get("advisor") or {}
    common = {
        "experiment": exp.id,
        "trial_id": best.trial_id,
        "sequence": best.sequence,
        "validation": float(best.final["default"]),
        "test": best.final.get("test_accuracy"),
        "finished": len(done),
    }
    if nas:
        if not is_nas(best.parameters):
            raise BestError(f"experiment {exp.id}: trial {best.trial_id} holds no model space")
        symbol = str(best.parameters["model_symbol"].get("__nni_type__", "")).removeprefix("path:")
        sample = dict(best.parameters["sample"])
        return Choice(
            **common, parameters=sample, module=symbol, args=[], tuner="NAS strategy",
            nas=best.parameters,
        )  # fmt: skip
    return Choice(
        **common,
        parameters=dict(best.parameters),
        module=trial.command.module,
        args=list(trial.command.args),
        tuner=str(tuner.get("name") or tuner.get("className") or "none"),
    )


@dataclasses.dataclass
class Recipe:
    """How the chosen configuration trains: data, the engine's settings, a model per seed."""

    dataset: str
    data_dir: str | None
    split_seed: int  # the study's splits
    fit: object  # nnisuite.trials.engine.FitConfig (its seed set per retrain)
    make_model: object  # (seed, data) -> a fresh model, initialised from seed
    record: dict  # every setting, for best.json and the card


def recipe(choice: Choice, epochs, restore_best, data_dir, threads) -> Recipe:
    """The chosen trial's training, with the overrides applied."""
    if choice.nas is not None:
        return nas_recipe(choice, epochs, restore_best, data_dir)
    import torch

    from nnisuite.trials.runner import fit_config

    module, params = trial_params(choice, epochs, restore_best, data_dir, threads)

    def make_model(seed, data):
        torch.manual_seed(seed)
        return module.BUILD(params, data)

    return Recipe(
        params.dataset,
        params.data_dir,
        params.seed,
        fit_config(params),
        make_model,
        dataclasses.asdict(params),
    )


# the model spaces `nnisuite best` rebuilds from a NAS trial's record: nnisuite's own, nothing else
MODEL_SPACES = ("nnisuite.nas.space.DepthSpace", "nnisuite.nas.attention_space.AttentionSpace")


def plain(value) -> bool:
    """JSON data only: no NNI serialisation marker (`__nni_obj__` is a pickle, `__nni_type__`
    and `__symbol__` name code to import and call) anywhere inside."""
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and not k.startswith("__") and plain(v) for k, v in value.items()
        )
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def refused(what: str) -> str:
    return (
        f"the NAS record's {what} hold serialised objects or code references: refused (a "
        "record is read as data only; nothing in it is unpickled, imported or called)"
    )


def nas_model(record: dict):
    """A NAS trial's architecture rebuilt from NNI's record as data: its model space must be
    one of nnisuite's (MODEL_SPACES), built from the record's plain arguments and frozen at its
    sample. NNI's own `nni.load` would unpickle any `__nni_obj__` and import any `__nni_type__`
    the record holds: a database from someone else would run their code."""
    import importlib

    symbol = (record.get("model_symbol") or {}).get("__nni_type__", "")
    symbol = symbol.removeprefix("path:") if isinstance(symbol, str) else ""
    if symbol not in MODEL_SPACES:
        raise BestError(
            f"the NAS record's model space {symbol or '?'!r} is not one of nnisuite's "
            f"({', '.join(MODEL_SPACES)}): refused (a record is read as data only)"
        )
    args, kwargs, sample = (record.get(k) for k in ("model_args", "model_kwargs", "sample"))
    args, kwargs = args or [], kwargs or {}
    if not (plain(args) and plain(kwargs) and isinstance(kwargs, dict) and isinstance(args, list)):
        raise BestError(refused("model arguments"))
    if not (isinstance(sample, dict) and plain(sample)):
        raise BestError(refused("architecture sample"))
    module, name = symbol.rsplit(".", 1)
    space = getattr(importlib.import_module(module), name)(*args, **kwargs)
    return space.freeze(sample)


def nas_recipe(choice: Choice, epochs, restore_best, data_dir) -> Recipe:
    """A NAS trial: its architecture rebuilt from NNI's record (the model space's class and
    arguments, the sample), trained as nnisuite.nas.evaluator trained it."""
    import copy

    from nnisuite.config.nas_settings import DEFAULTS
    from nnisuite.nas.evaluator import reseed_parameters
    from nnisuite.trials.engine import FitConfig

    evaluator = dict((choice.nas.get("evaluator") or {}).get("__kwargs__") or {})
    evaluator.pop("function", None)  # a reference to nnisuite's evaluator: never imported here
    if not plain(evaluator):
        raise BestError(refused("its evaluator's settings"))
    kwargs = dict(DEFAULTS) | evaluator
    base = nas_model(choice.nas)
    fit = FitConfig(
        epochs=epochs or int(kwargs["epochs"]),
        lr=float(kwargs["lr"]),
        batch_size=int(kwargs["batch_size"]),
        optimizer=str(kwargs["optimizer"]),
        momentum=float(kwargs["momentum"]),
        restore_best=bool(restore_best),
        device="cpu",
    )

    def make_model(seed, data):
        model = copy.deepcopy(base)
        reseed_parameters(model, seed)
        return model

    dataset, folder = str(kwargs["dataset"]), data_dir or kwargs.get("data_dir")
    record = dataclasses.asdict(fit) | {"dataset": dataset, "architecture": choice.parameters}
    return Recipe(dataset, folder, int(kwargs.get("split_seed", 0)), fit, make_model, record)


def trial_params(choice: Choice, epochs, restore_best, data_dir, threads):
    """(module, the trial's parameters with the overrides applied)."""
    from nnisuite.trials.params import resolve_params
    from nnisuite.trials.runner import BUDGET, tuner_extras

    module = importlib.import_module(choice.module)
    tuned = dict(choice.parameters)
    extras = tuner_extras(tuned)
    params = resolve_params(module.PARAMS, choice.args, tuned, prog=choice.module)
    if BUDGET in extras:  # Hyperband / BOHB trained this many epochs
        params.epochs = max(1, round(float(extras[BUDGET])))
    if epochs is not None:
        params.epochs = epochs
    if restore_best is not None:
        params.restore_best = restore_best
    if data_dir is not None:
        params.data_dir = data_dir
    params.out, params.threads = None, threads  # threads: this machine's, not the study's share
    return module, params


def deployable(model, data):
    """The model with its preprocessing: raw uint8 images in, logits out."""
    import torch
    from torch import nn

    class Deployed(nn.Module):
        def __init__(self, model, mean: float, std: float):
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

        def forward(self, images):
            x = images.to(torch.float32).reshape(images.shape[0], -1)
            return self.model((x - self.mean) / self.std)

    return Deployed(model.cpu().eval(), data.mean, data.std).eval()


def weights(model) -> dict:
    """weights.pt: {"state_dict"}, and for an attention classifier the "transformer_kwargs"
    that rebuild it (nnisuite.nas.evaluator.save_model's format: nnisuite.analysis.attention --model
    reads it)."""
    state = {"state_dict": model.state_dict()}
    if hasattr(model, "describe"):
        kwargs = model.describe().get("transformer_kwargs")
        if kwargs:
            state["transformer_kwargs"] = kwargs
    return state


def export(deployed, image_shape, path: Path) -> None:
    import torch

    example = torch.zeros((2, *image_shape), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(deployed, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


def load(path: Path):
    import torch

    return torch.export.load(str(path)).module()


def predict(model, images, batch: int = 4096):
    import numpy as np
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + batch]))
            out.append(model(chunk).argmax(dim=1))
    return torch.cat(out)


def per_class(cm) -> list[float]:
    rows = cm.sum(dim=1).clamp(min=1)
    return (cm.diagonal().double() / rows.double()).tolist()


def plot_confusion(cm, names: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    fig, ax = plt.subplots(figsize=(0.6 * n + 3, 0.6 * n + 2.5))
    ax.imshow(cm.numpy(), cmap="Blues")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = float(cm.max())
    for i in range(n):
        for j in range(n):
            value = int(cm[i, j])
            color = "white" if value > top / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def retrain(how: Recipe, seeds: int, threads: int | None, say):
    """Train the configuration once per seed; returns (rows, models, data)."""
    import torch

    from nnisuite.trials.data import load_dataset

    if threads:
        torch.set_num_threads(threads)
    from nnisuite.trials.engine import fit

    data = load_dataset(how.dataset, how.data_dir, seed=how.split_seed)
    rows, models = [], []
    for seed in range(seeds):
        model = how.make_model(seed, data)
        config = dataclasses.replace(how.fit, seed=seed, device="cpu")
        t0 = time.perf_counter()
        result = fit(model, data, config)
        final = result.final
        row = {
            "seed": seed,
            "val_accuracy": final["default"],
            "test_accuracy": final["test_accuracy"],
            "epochs": final["epochs"],
            "best_epoch": final.get("best_epoch"),
            "restored_epoch": final.get("restored_epoch"),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        rows.append(row)
        models.append(model)
        say(
            f"seed {seed}: validation {row['val_accuracy']:.4f}, test {row['test_accuracy']:.4f}"
            f" ({row['seconds']:.0f} s)"
        )
    return rows, models, data


def mean_std(values) -> tuple[float, float]:
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def card_text(record: dict) -> str:
    c, r, saved = record["choice"], record["recipe"], record["saved"]
    names = record["classes"]
    val_m, val_s = record["validation"]
    test_m, test_s = record["test"]
    split = record["splits"]
    lines = [
        f"# Model card: {record['dataset']} {model_name(c['module'])}, best of study "
        f"{c['experiment']}",
        "",
        f"Test accuracy of this model: **{saved['test_accuracy']:.4f}** on the {split['test']} "
        f"test images; over {record['seeds']} seeds of the same recipe: validation "
        f"{val_m:.4f} +- {val_s:.4f}, test {test_m:.4f} +- {test_s:.4f} (mean +- std).",
        "",
        "## Input and output",
        "",
        f"- input: a `torch.uint8` tensor of shape `(n, {record['image_shape'][0]}, "
        f"{record['image_shape'][1]})`, raw pixels as the dataset's files hold them "
        f"({record['pixel_range']}); the standardisation is inside the model "
        f"(pixel - {record['mean']:.6g}) / {record['std']:.6g}, the training split's "
        "statistics",
        f"- output: logits `(n, {len(names)})`; classes {', '.join(names)}",
        f"- load: `torch.export.load('{MODEL}').module()` (torch >= 2.5; no nnisuite code); "
        f"weights alone: `torch.load('{WEIGHTS}')['state_dict']` for `{c['module']}`'s model",
        "",
        "## Data",
        "",
        f"- dataset: {record['dataset']}; splits drawn with seed {split['seed']}: "
        f"{split['train']} training, {split['validation']} validation, {split['test']} test "
        f"images ({split['how']})",
        "- the configuration was chosen on validation accuracy only; the test split was used "
        "once per trained model",
        "",
        "## Configuration and where it came from",
        "",
        f"- study {c['experiment']}, trial {c['trial_id']} (#{c['sequence']}), tuner {c['tuner']}:"
        f" the highest validation accuracy ({c['validation']:.4f}) of {c['finished']} "
        "SUCCEEDED trials",
        f"- {'architecture' if c['tuner'] == 'NAS strategy' else 'tuned parameters'}: "
        f"{json.dumps(c['parameters'], sort_keys=True)}",
        *([f"- trial command flags: `{shlex.join(c['args'])}`"] if c["args"] else []),
        "",
        "## Training recipe",
        "",
        "| " + " | ".join(r) + " |",
        "|" + "---|" * len(r),
        "| " + " | ".join(str(v) for v in r.values()) + " |",
        "",
        f"Seeds 0..{record['seeds'] - 1} set the initial weights and the batch order; the saved "
        f"model is seed {saved['seed']}, the median by validation accuracy.",
        "",
        "## Metrics over seeds",
        "",
        "| seed | validation | test | epochs | best epoch | restored | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in record["runs"]:
        lines.append(
            f"| {row['seed']} | {row['val_accuracy']:.4f} | {row['test_accuracy']:.4f} | "
            f"{row['epochs']} | {row['best_epoch']} | {row['restored_epoch'] or '-'} | "
            f"{row['seconds']} |"
        )
    lines += [
        f"| mean +- std | {val_m:.4f} +- {val_s:.4f} | {test_m:.4f} +- {test_s:.4f} | | | | |",
        "",
        f"## The saved model (seed {saved['seed']}) on the test split",
        "",
        f"Accuracy {saved['test_accuracy']:.4f} ({saved['correct']} of {saved['n']}), computed "
        f"from `{MODEL}` loaded from disk on the raw test images.",
        "",
        "| class | accuracy |",
        "|---|---|",
        *(f"| {n} | {a:.4f} |" for n, a in zip(names, saved["per_class"])),
        "",
        "![confusion matrix](confusion.png)",
        "",
        "## Size and speed",
        "",
        f"- parameters: {saved['parameters']:,}",
        f"- latency per sample on this machine's CPU ({record['machine']}, "
        f"{saved[costs.LATENCY_THREADS]} torch threads; median of {costs.LATENCY_REPEATS} "
        f"timed calls after {costs.LATENCY_WARMUP} of warm-up): "
        + ", ".join(
            f"batch {b}: {saved[costs.latency_key(b)] * 1e6:.1f} us" for b in costs.LATENCY_BATCHES
        ),
        "",
        "## Reproduce",
        "",
        f"    {record['command']}",
        "",
    ]
    return "\n".join(lines)


def model_name(module: str) -> str:
    """nnisuite.trials.mlp -> MLP; nnisuite.nas.space.DepthSpace -> DepthSpace architecture."""
    last = module.split(".")[-1]
    return last.upper() if module.startswith("trials.") else f"{last} architecture"


def machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores"


def build(args, say=print) -> dict:
    """Everything but the argument parsing; returns the record written to best.json."""
    import numpy as np
    import torch

    from nnisuite.analysis.atomic import staged
    from nnisuite.analysis.store import load_experiment
    from nnisuite.trials.data import raw_splits
    from nnisuite.trials.metrics import confusion_matrix

    exp = load_experiment(args.experiment, args.experiment_dir)
    choice = choose(exp)
    say(
        f"study {exp.id}: trial {choice.trial_id} (#{choice.sequence}) has the highest "
        f"validation accuracy, {choice.validation:.4f}, of {choice.finished} SUCCEEDED trials"
    )
    how = recipe(choice, args.epochs, args.restore_best, args.data_dir, args.threads)
    say(f"retraining {choice.module} with {how.record} over {args.seeds} seed(s)")
    rows, models, data = retrain(how, args.seeds, args.threads, say)
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["val_accuracy"], -i))
    median = order[(len(order) - 1) // 2]
    model = models[median]
    splits = raw_splits(how.dataset, how.data_dir, seed=how.split_seed)
    test_images, test_labels = splits[2]
    record = {
        "dataset": how.dataset,
        "choice": {k: v for k, v in dataclasses.asdict(choice).items() if k != "nas"},
        "recipe": {k: how.record.get(k) for k in RECIPE},
        "params": how.record,
        "seeds": args.seeds,
        "runs": rows,
        "validation": mean_std(r["val_accuracy"] for r in rows),
        "test": mean_std(r["test_accuracy"] for r in rows),
        "image_shape": list(data.image_shape),
        "pixel_range": f"{int(test_images.min())}..{int(test_images.max())} in the test split",
        "mean": data.mean,
        "std": data.std,
        "classes": class_names(how.dataset, data.num_classes),
        "splits": {
            "seed": how.split_seed,
            "train": len(splits[0][1]),
            "validation": len(splits[1][1]),
            "test": len(test_labels),
            "how": "stratified 60/20/20 of scikit-learn's digits"
            if how.dataset == "digits"
            else "validation drawn from the training file; test: the dataset's test file",
        },
        "machine": machine(),
        # a NAS model's space as data (checked plain by nas_model): `nnisuite compress` rebuilds it
        **(
            {
                "space": {
                    "symbol": choice.module,
                    "args": choice.nas.get("model_args") or [],
                    "kwargs": choice.nas.get("model_kwargs") or {},
                }
            }
            if choice.nas is not None
            else {}
        ),  # fmt: skip
        "command": shlex.join(
            [
                "python",
                "-m",
                "nnisuite.deploy.best",
                exp.id,
                *(["--experiment-dir", str(args.experiment_dir)] if args.experiment_dir else []),
                "--out",
                str(args.out),
                "--seeds",
                str(args.seeds),
                *(["--epochs", str(args.epochs)] if args.epochs else []),
                *(
                    ["--restore-best" if args.restore_best else "--no-restore-best"]
                    if args.restore_best is not None
                    else []
                ),
            ]
        ),
    }
    with staged(Path(args.out)) as folder:
        deployed = deployable(model, data)
        export(deployed, data.image_shape, folder / MODEL)
        torch.save(weights(model), folder / WEIGHTS)
        loaded = load(folder / MODEL)  # the card's figures come from the file, as a user loads it
        pred = predict(loaded, test_images)
        labels = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))
        cm = confusion_matrix(pred, labels, data.num_classes)
        correct = int(cm.diagonal().sum())
        record["saved"] = {
            "seed": rows[median]["seed"],
            "test_accuracy": correct / len(labels),
            "correct": correct,
            "n": len(labels),
            "per_class": per_class(cm),
            "confusion": cm.tolist(),
            "parameters": costs.count_parameters(model),
            **costs.latency(loaded, torch.zeros((1, *data.image_shape), dtype=torch.uint8)),
        }
        plot_confusion(
            cm,
            record["classes"],
            folder / "confusion.png",
            f"{how.dataset}, study {exp.id}, seed {rows[median]['seed']}: "
            f"test accuracy {record['saved']['test_accuracy']:.4f}",
        )
        (folder / CARD).write_text(card_text(record))
        (folder / "best.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        with open(folder / "seeds.csv", "w", newline="") as f:  # csv quotes what needs it
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    say(
        f"saved model (seed {record['saved']['seed']}): test accuracy "
        f"{record['saved']['test_accuracy']:.4f}; over {args.seeds} seeds: test "
        f"{record['test'][0]:.4f} +- {record['test'][1]:.4f}; card: {Path(args.out) / CARD}"
    )
    return record


def build_parser() -> argparse.ArgumentParser:
    from nnisuite.analysis.store import add_source_arguments
    from nnisuite.trials.params import positive_int

    p = Parser(
        prog="python -m nnisuite.deploy.best",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(p)
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for the model, its card and figures"
    )
    p.add_argument(
        "--seeds", type=positive_int, default=3, help="training seeds to retrain (default 3)"
    )
    p.add_argument("--epochs", type=positive_int, help="epochs to train (default: the trial's own)")
    p.add_argument(
        "--restore-best",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end each retrain on its best validation epoch (default: as the trial did)",
    )
    p.add_argument("--data-dir", help="where the dataset's files are (default: as the trial)")
    p.add_argument(
        "--threads", type=positive_int, help="torch threads (default: torch's, all cores)"
    )
    return p


def main(argv=None) -> int:
    from nnisuite.analysis.store import ExportError
    from nnisuite.outputs import check_writable
    from nnisuite.trials.data import DatasetError
    from nnisuite.trials.params import ParameterError

    args = build_parser().parse_args(argv)
    problem = check_writable(Path(args.out), "--out")
    if args.data_dir is not None and not Path(args.data_dir).expanduser().is_dir():
        problem = problem or f"--data-dir {args.data_dir}: no such folder"
    return exit_code(build, args, problem, (BestError, ExportError, ParameterError, DatasetError))


def exit_code(work, args, problem: str | None, refused: tuple) -> int:
    """`work(args)`'s exit code, as nnisuite's deploy commands give it: 2 with one line for a
    `problem` found before starting or any of the `refused` errors; 4 (EXIT_WRITE) when
    args.out cannot be written; else 0."""
    from nnisuite.analysis.atomic import EXIT_WRITE, WriteError

    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        work(args)
    except refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (WriteError, OSError) as exc:
        print(f"error: could not write {args.out}: {exc}", file=sys.stderr)
        return EXIT_WRITE
    return 0


if __name__ == "__main__":
    sys.exit(main())
