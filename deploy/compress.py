"""The best model of a study made small: pruned with NNI's pruners, shrunk with NNI's speedup,
fine-tuned on the study's splits with its recipe, optionally int8, measured against two
controls over the same seeds, and saved as models that load with torch alone.

    nnisuite best ID --out best/                      # first: the study's best model
    nnisuite compress best/ --out small/              # AGP to 0.75 sparsity, 3 seeds
    nnisuite compress best/ --out sweep/ --pruner l1,l2,fpgm --sparsity 0.5,0.75,0.9 --int8
    nnisuite compress best/ --out agp/ --pruner agp,taylor --sparsity 0.9 --epochs 10
    python -m nnisuite.deploy.compress best/ --out small/     # the same

For every pruner x sparsity point and every seed: the saved model (best/weights.pt, as
best/best.json describes it) loses `sparsity` of the units of each hidden layer, by the units'
L1 / L2 norm or FPGM score from its weights (NNI 3.0's L1NormPruner, L2NormPruner, FPGMPruner),
or while it trains for --prune-epochs (TaylorPruner's scores; AGPPruner and LinearPruner raise an
L1 pruner's sparsity in 10 steps), is shrunk to a dense smaller model by NNI's ModelSpeedup (over
torch.fx's graph: nnisuite.nni_patches.compression says why), and fine-tuned on the study's own
splits with the study's recipe (optimizer, learning rate, schedule, batch size; the seed sets
the batch order) for the rest of --epochs: every compressed model trains --epochs in all after
the dense best, pruning steps included, as long as the dense control. With --int8 each result is
also quantized with PyTorch's dynamic quantization (int8 weights of every Linear layer).

The controls, over the same seeds, without which a compression result overstates itself:
  dense, fine-tuned   the saved best model trained --epochs more with the same recipe;
  from scratch        the pruned widths, freshly initialised and trained with the recipe for
                      as many epochs as the compressed model had in all (the study's + --epochs).

In --out:
  card.md, compress.json   every point and control over seeds (validation and test accuracy,
                           parameters, size on disk, latency per sample at batch 1 and 256 on
                           --threads threads, widths), the recipe and the command;
  points.csv               one row per point, kind (compressed, int8, dense-finetuned, scratch)
                           and seed;
  tradeoff.png             test accuracy against parameters: every point, the controls, the
                           dense best, and the study's own trials where its database is found
                           (--experiment-dir; on the parameters front too);
  PRUNER-SPARSITY/         the point's median seed: model.pt2 (fp32, torch.export: raw uint8
                           images in, logits out, as best's model.pt2) and with --int8
                           model_int8.pt (TorchScript: `torch.jit.load(path)(images)`);
  nni.log                  NNI's own log lines (its speedup writes ~40 a model).
The saved models' test accuracy, size and latency are measured from the files as loaded.
Compressed: nnisuite.trials.mlp's models and the NAS depth space's (nnisuite.nas.space), with
activations that map 0 to 0 (ReLU, tanh, GELU); anything else (sigmoid, an RNN, attention) is
refused in one line. Exit codes: 0 done; 2 bad input; 4 --out
cannot be written.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import importlib
import json
import os
import shlex
import statistics
import sys
import warnings
from pathlib import Path

from nnisuite.flags import Parser
from nnisuite.models import costs
from nnisuite.nni_patches.compression import (
    PRUNERS,
    TRAINED,
    CompressionError,
    Training,
    prune,
    quiet,
)
from nnisuite.nni_patches.compression import widths as hidden_widths
from nnisuite.outputs import folder_flag

CARD, RECORD, POINTS, PLOT, LOG = (
    "card.md",
    "compress.json",
    "points.csv",
    "tradeoff.png",
    "nni.log",
)
MODEL, INT8 = "model.pt2", "model_int8.pt"
TRIALS = ("nnisuite.trials.mlp",)  # the trials whose models the channel pruners fit
DEPTH_SPACE = "nnisuite.nas.space.DepthSpace"  # the NAS model space they fit


def pruner_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in PRUNERS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a comma-separated list of {', '.join(PRUNERS)}"
        )
    return list(dict.fromkeys(names))


def sparsity_list(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or not all(0.0 < v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(
            f"{text!r}: comma-separated fractions between 0 and 1, such as 0.5,0.75,0.9"
        )
    return sorted(set(values))


def read_best(folder: Path):
    """(best.json's record, the saved weights): data only (JSON, and torch.load with
    weights_only: a weights file from someone else is never unpickled as code)."""
    import torch

    try:
        record = json.loads((folder / "best.json").read_text())
    except FileNotFoundError:
        raise CompressionError(f"{folder}: no best.json (the --out of `nnisuite best`)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CompressionError(f"{folder / 'best.json'}: not JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise CompressionError(f"{folder / 'best.json'}: not a record of `nnisuite best`")
    try:
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CompressionError(f"{folder}: no weights.pt (the --out of `nnisuite best`)") from None
    except Exception as exc:  # noqa: BLE001 - anything but plain tensors is refused
        raise CompressionError(
            f"{folder / 'weights.pt'}: not a plain weights file ({type(exc).__name__}); only "
            "tensors are read, nothing in it is run"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise CompressionError(f"{folder / 'weights.pt'}: no state_dict")
    return record, state["state_dict"]


def trial_module(record: dict) -> str:
    """The trial module or NAS model space best.json names, refused unless it is one whose
    hidden units NNI's channel pruners and speedup remove (one line)."""
    choice = record.get("choice") if isinstance(record.get("choice"), dict) else {}
    module = str(choice.get("module") or "?")
    module = module if module.startswith("nnisuite.") else f"nnisuite.{module}"  # older records
    if "architecture" in record["params"]:
        if module != DEPTH_SPACE:
            raise CompressionError(
                f"{module}'s models: not compressed (NNI's channel pruners cut a Linear "
                "layer's output units; an attention layer's projections are split into heads "
                f"that speedup does not keep whole; the NAS space compressed is {DEPTH_SPACE})"
            )
        if not isinstance(record.get("space"), dict):
            raise CompressionError(
                "best.json holds no model space's arguments (written by an older `nnisuite "
                "best`): run `nnisuite best` again"
            )
        return module
    if module not in TRIALS:
        raise CompressionError(
            f"{module}'s models: not compressed (NNI's channel pruners and speedup are used "
            f"here on {', '.join(TRIALS)} and {DEPTH_SPACE}; an RNN's recurrent weights are "
            "not Linear units)"
        )
    return module


@dataclasses.dataclass
class Setup:
    build: object  # () -> the best model's architecture (initial weights)
    fit: object  # nnisuite.trials.engine.FitConfig: the study's recipe
    dataset: str
    data: object  # the study's splits as tensors
    test: tuple  # raw uint8 test images and labels
    state: dict  # the saved best model's weights
    example: object  # one raw uint8 batch


def architecture(record: dict, name: str, data):
    """() -> a fresh model of best.json's architecture: the trial's BUILD with its parameters,
    or the NAS depth space rebuilt from best.json's plain arguments and frozen at its sample
    (nnisuite.deploy.best.nas_model: nnisuite's model spaces only, data only)."""
    from nnisuite.deploy.best import BestError, nas_model
    from nnisuite.trials.params import ParameterError

    if name == DEPTH_SPACE:
        space = record["space"]
        nas = {
            "model_symbol": {"__nni_type__": f"path:{space.get('symbol')}"},
            "model_args": space.get("args"),
            "model_kwargs": space.get("kwargs"),
            "sample": record["params"]["architecture"],
        }
        try:
            nas_model(nas)  # refused here, before any training, if it is not plain data
        except BestError as exc:
            raise CompressionError(str(exc)) from None
        return lambda: nas_model(nas)
    module = importlib.import_module(name)
    fields = {f.name for f in dataclasses.fields(module.PARAMS)}
    try:
        params = module.PARAMS(**{k: v for k, v in record["params"].items() if k in fields})
        params.check()
    except (TypeError, ParameterError) as exc:
        raise CompressionError(f"best.json's params: {exc}") from None
    return lambda: module.BUILD(params, data)


def setup(record: dict, state: dict, data_dir: str | None) -> Setup:
    import numpy as np
    import torch

    from nnisuite.trials.data import load_dataset, raw_splits
    from nnisuite.trials.engine import FitConfig

    name = trial_module(record)
    params = record["params"]
    fields = {f.name for f in dataclasses.fields(FitConfig)}
    try:
        fit = FitConfig(**{k: v for k, v in params.items() if k in fields})
        dataset = str(params["dataset"])
        split = record.get("splits") if isinstance(record.get("splits"), dict) else {}
        split_seed = int(split.get("seed", params.get("seed", 0)))
    except (TypeError, KeyError, ValueError) as exc:
        raise CompressionError(f"best.json's params: {type(exc).__name__}: {exc}") from None
    folder = data_dir if data_dir is not None else params.get("data_dir")
    data = load_dataset(dataset, folder, seed=split_seed)
    images, labels = raw_splits(dataset, folder, seed=split_seed)[2]
    labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    example = torch.zeros((2, *data.image_shape), dtype=torch.uint8)
    build = architecture(record, name, data)
    return Setup(build, fit, dataset, data, (images, labels), state, example)


def best_model(s: Setup):
    model = s.build()
    try:
        model.load_state_dict(s.state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CompressionError(f"weights.pt does not fit best.json's model: {first}") from None
    return model.eval()


def head_name(model) -> str:
    import torch

    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    return linear[-1]


def train(model, s: Setup, epochs: int, seed: int) -> dict:
    """`epochs` of the study's recipe on its splits (none: evaluated only); the engine's final
    (validation `default`, `test_accuracy`)."""
    import torch

    from nnisuite.trials.engine import fit

    config = dataclasses.replace(s.fit, epochs=epochs, seed=seed, device="cpu", save_to=None,
                                 resume_from=None)  # fmt: skip
    torch.manual_seed(seed)
    return fit(model, s.data, config).final


def training(s: Setup, epochs: int, seed: int) -> Training:
    """A TRAINED pruner's steps: `epochs` of the study's recipe at its learning rate."""
    steps = epochs * -(-len(s.data.train_x) // s.fit.batch_size)
    return Training(s.data.train_x, s.data.train_y, s.fit.batch_size, s.fit.optimizer, s.fit.lr,
                    s.fit.momentum, s.fit.weight_decay, steps, seed)  # fmt: skip


def accuracy(model, s: Setup) -> float:
    from nnisuite.deploy.best import predict

    images, labels = s.test
    return float((predict(model, images) == labels).double().mean())


def deployable(model, s: Setup):
    from nnisuite.deploy.best import deployable as wrap

    return wrap(model, s.data)


def int8(model, s: Setup):
    """PyTorch's dynamic int8 quantization of every Linear layer, with the preprocessing."""
    import torch

    with warnings.catch_warnings():  # PyTorch deprecates its quantized tensors (pytorch#184982)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        return torch.ao.quantization.quantize_dynamic(
            deployable(copy.deepcopy(model), s), {torch.nn.Linear}, dtype=torch.qint8
        )


def save_int8(quantized, example, path: Path) -> None:
    import torch

    with warnings.catch_warnings():  # TorchScript says it is deprecated: it is the int8 format
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(quantized, example), str(path))


def load_int8(path: Path):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path))


def from_file(model, path: Path, s: Setup) -> dict:
    """What a user gets from the file: test accuracy, size on disk, latency per sample."""
    return {
        "test_accuracy": accuracy(model, s),
        "bytes": os.path.getsize(path),
        **{k: v for k, v in costs.latency(model, s.example).items() if k != costs.LATENCY_THREADS},
    }


def verdict(ours: list[float], theirs: list[float], what: str) -> str:
    """One line: the difference of two means over seeds against twice its standard error."""
    diff = statistics.fmean(ours) - statistics.fmean(theirs)
    n1, n2 = len(ours), len(theirs)
    se = (
        (statistics.variance(ours) / n1 + statistics.variance(theirs) / n2) ** 0.5
        if n1 > 1 and n2 > 1
        else float("nan")
    )
    if se != se:  # one seed: no spread to judge by
        return f"{diff * 100:+.2f} points against {what} (one seed: no spread to judge by)"
    if abs(diff) <= 2 * se:
        return f"no difference from {what} ({diff * 100:+.2f} points, within twice the SE)"
    better = "better" if diff > 0 else "worse"
    return f"{better} than {what} by {abs(diff) * 100:.2f} points (more than twice the SE)"


def run(args, say=print) -> dict:
    """Every point and control of `args`, written into args.out (staged: whole or not at all);
    returns compress.json's record."""
    import torch

    from nnisuite.analysis.atomic import staged

    torch.set_num_threads(args.threads)
    record, state = read_best(Path(args.best))
    s = setup(record, state, args.data_dir)
    dense = best_model(s)
    keep = [head_name(dense)]
    study_epochs = int(s.fit.epochs)
    if any(p in TRAINED for p in args.pruner) and args.prune_epochs > args.epochs:
        raise CompressionError(
            f"--prune-epochs {args.prune_epochs} is more than --epochs {args.epochs}: the "
            "pruning steps are part of the compressed model's --epochs"
        )
    scratch_epochs = args.scratch_epochs or study_epochs + args.epochs
    seeds = list(range(args.seeds))
    rows: list[dict] = []
    with staged(Path(args.out)) as folder:
        reference = measure_dense(dense, s, keep, folder)
        say(f"dense best: {reference['parameters']:,} parameters, widths "
            f"{list(reference['widths'].values())}")  # fmt: skip
        for seed in seeds:  # control 1: the dense best fine-tuned as long
            final = train(copy.deepcopy(dense), s, args.epochs, seed)
            rows.append(row("dense-finetuned", "-", 0.0, seed, final, dense, {}))
            say(f"dense fine-tuned, seed {seed}: test {final['test_accuracy']:.4f}")
        points = [
            compress_point(dense, s, pruner, sparsity, args, keep, folder, rows, say)
            for pruner in args.pruner
            for sparsity in args.sparsity
        ]
        shapes = {p["widths_key"]: p.pop("shape") for p in points}
        for widths, shape in shapes.items():
            for seed in seeds:  # control 2: the pruned widths from scratch, as many epochs
                scratch = scratch_model(shape, seed)
                final = train(scratch, s, scratch_epochs, seed)
                rows.append(row("scratch", "-", 0.0, seed, final, scratch, dict(enumerate(widths))))
                say(f"from scratch {list(widths)}, seed {seed}: test {final['test_accuracy']:.4f}")
        study = study_trials(record, args.experiment_dir, say)
        result = summarize(args, record, s, rows, points, reference, study_epochs, scratch_epochs)
        result["study_trials"] = study
        result["fronts"] = fronts(reference, points, study)
        write_rows(folder / POINTS, rows)
        plot(result, rows, folder / PLOT)
        (folder / RECORD).write_text(json.dumps(result, indent=2, default=str) + "\n")
        (folder / CARD).write_text(card_text(result))
    say(f"card: {Path(args.out) / CARD}")
    return result


def measure_dense(dense, s: Setup, keep: list[str], folder: Path) -> dict:
    """The dense best as the compressed models are measured: exported, loaded, timed (its
    own model.pt2 from `best` is not loaded: a file from elsewhere is read as weights only)."""
    from nnisuite.deploy.best import export, load

    path = folder / "dense-reference.pt2"
    export(deployable(copy.deepcopy(dense), s), s.data.image_shape, path)
    reference = {
        "parameters": costs.count_parameters(dense),
        "widths": hidden_widths(dense, keep),
        **from_file(load(path), path, s),
    }
    path.unlink()
    return reference


def compress_point(dense, s: Setup, pruner, sparsity, args, keep, folder, rows, say) -> dict:
    """One pruner x sparsity: pruned (once for the weight-scored pruners, which are
    deterministic; per seed for the TRAINED ones, whose steps the seed orders), fine-tuned per
    seed for the rest of --epochs (and quantized with --int8), the median seed by validation
    saved in its folder."""
    from nnisuite.deploy.best import export, load

    tag = f"{pruner}-{sparsity:g}"
    trained = pruner in TRAINED
    prune_epochs = args.prune_epochs if trained else 0
    models, finals, before = [], [], None
    for seed in range(args.seeds):
        if trained or before is None:
            pruned = copy.deepcopy(dense)
            steps = training(s, prune_epochs, seed) if trained else None
            with quiet(folder / LOG):
                widths = prune(pruned, pruner, sparsity, s.example.float(), keep, steps)
            before = accuracy(deployable(copy.deepcopy(pruned), s), s)
        model = copy.deepcopy(pruned)
        final = train(model, s, args.epochs - prune_epochs, seed)
        final |= {"test_before_finetune": before, "epochs": prune_epochs + final["epochs"]}
        rows.append(row("compressed", pruner, sparsity, seed, final, model, widths))
        if args.int8:
            quantized = {"test_accuracy": accuracy(int8(model, s), s), "epochs": final["epochs"]}
            rows.append(row("int8", pruner, sparsity, seed, quantized, model, widths))
        models.append(model)
        finals.append(final)
        how = f"pruned over {prune_epochs} epoch(s)" if trained else "pruned"
        say(f"{tag}, seed {seed}: widths {list(widths.values())}, test {before:.4f} {how} -> "
            f"{final['test_accuracy']:.4f} fine-tuned")  # fmt: skip
    order = sorted(range(len(models)), key=lambda i: (finals[i]["default"], -i))
    median = order[(len(order) - 1) // 2]
    chosen, point_dir = models[median], folder / tag
    point_dir.mkdir()
    export(deployable(chosen, s), s.data.image_shape, point_dir / MODEL)
    saved = {"seed": median, "fp32": from_file(load(point_dir / MODEL), point_dir / MODEL, s)}
    if args.int8:
        save_int8(int8(chosen, s), s.example, point_dir / INT8)
        saved["int8"] = from_file(load_int8(point_dir / INT8), point_dir / INT8, s)
    return {
        "pruner": pruner,
        "sparsity": sparsity,
        "folder": tag,
        "widths": widths,
        "widths_key": tuple(widths.values()),
        "shape": pruned,  # the pruned architecture, for the from-scratch control
        "prune_epochs": prune_epochs,
        "test_before_finetune": statistics.fmean(
            r["test_before_finetune"]
            for r in rows
            if r["kind"] == "compressed" and r["pruner"] == pruner and r["sparsity"] == sparsity
        ),
        "saved": saved,
    }


def scratch_model(shape, seed: int):
    """The pruned architecture with every layer initialised afresh from `seed` (as the trial
    builds a model of those widths: torch's own initialisation, in the layers' order)."""
    from nnisuite.nas.evaluator import reseed_parameters

    model = copy.deepcopy(shape)
    reseed_parameters(model, seed)
    return model


def study_trials(record: dict, experiment_dir: str | None, say) -> list[dict]:
    """The study's SUCCEEDED trials that recorded a test accuracy and a parameter count (what
    nnisuite's trials report), for the plot and the parameters front; [] where its database is
    not found (said in one line)."""
    from nnisuite.analysis.direction import usable
    from nnisuite.analysis.store import ExportError, load_experiment

    experiment = str((record.get("choice") or {}).get("experiment") or "")
    try:
        exp = load_experiment(experiment, experiment_dir, live=False) if experiment else None
    except ExportError as exc:
        if experiment_dir is not None:
            raise CompressionError(f"--experiment-dir: {exc}") from None
        exp = None
    if exp is None:
        say(f"the study's trials: study {experiment or '?'} not found (--experiment-dir adds "
            "them to the plot and the parameters front)")  # fmt: skip
        return []
    found = [
        {"trial": t.trial_id, "sequence": t.sequence,
         "test_accuracy": float(t.final["test_accuracy"]), "parameters": int(t.final["parameters"])}
        for t in exp.trials
        if t.status == "SUCCEEDED" and usable(t.final.get("test_accuracy"))
        and usable(t.final.get("parameters"))
    ]  # fmt: skip
    say(f"the study's trials: {len(found)} of study {exp.id} on the plot")
    return found


def row(kind, pruner, sparsity, seed, final, model, widths) -> dict:
    return {
        "kind": kind,
        "pruner": pruner,
        "sparsity": sparsity,
        "seed": seed,
        "epochs": final.get("epochs"),  # trained after the dense best (pruning steps included)
        "val_accuracy": final.get("default"),
        "test_accuracy": final["test_accuracy"],
        "test_before_finetune": final.get("test_before_finetune"),
        "parameters": costs.count_parameters(model),
        "widths": "-".join(str(w) for w in widths.values()) if widths else "",
    }


def write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def summarize(args, record, s, rows, points, reference, study_epochs, scratch_epochs) -> dict:
    from nnisuite.deploy.best import mean_std

    def tests(kind, **match):
        return [
            r["test_accuracy"]
            for r in rows
            if r["kind"] == kind and all(r[k] == v for k, v in match.items())
        ]

    dense_ft = tests("dense-finetuned")
    for p in points:
        widths = "-".join(str(w) for w in p["widths"].values())
        p["parameters"] = next(
            r["parameters"] for r in rows if r["kind"] == "compressed" and r["widths"] == widths
        )
        p["fraction_of_dense"] = p["parameters"] / reference["parameters"]
        p["test"] = mean_std(tests("compressed", pruner=p["pruner"], sparsity=p["sparsity"]))
        scratch = tests("scratch", widths=widths)
        p["scratch_test"] = mean_std(scratch)
        compressed = tests("compressed", pruner=p["pruner"], sparsity=p["sparsity"])
        p["against_dense_finetuned"] = verdict(compressed, dense_ft, "the dense model fine-tuned")
        p["against_scratch"] = verdict(compressed, scratch, "the same widths from scratch")
        if args.int8:
            p["int8_test"] = mean_std(tests("int8", pruner=p["pruner"], sparsity=p["sparsity"]))
    return {
        "best": str(Path(args.best).resolve()),
        "dataset": s.dataset,
        "trial": trial_module(record),
        "recipe": {k: getattr(s.fit, k) for k in ("optimizer", "lr", "momentum",
                                                   "weight_decay", "schedule", "batch_size")},
        "study_epochs": study_epochs,
        "finetune_epochs": args.epochs,
        "prune_epochs": args.prune_epochs if any(p in TRAINED for p in args.pruner) else 0,
        "scratch_epochs": scratch_epochs,
        "seeds": args.seeds,
        "threads": args.threads,
        "dense": reference,
        "dense_finetuned_test": mean_std(dense_ft),
        "points": points,
        "command": args.command,
    }  # fmt: skip


TRADE_OFF_COSTS = {
    "parameters": "parameters",
    "bytes": "size on disk",
    costs.latency_key(256): "latency per sample at batch 256",
}


def fronts(reference: dict, points: list[dict], study: list[dict] = ()) -> dict:
    """The saved files' trade-offs (test accuracy as measured from each file, against each of
    TRADE_OFF_COSTS), with nnisuite.analysis.pareto's fronts and hypervolume shares: which
    saved models no other saved model beats on both. On the parameters front the study's own
    trials take part too (their test accuracy and parameters as the trials reported them; they
    have no file to weigh or time)."""
    from nnisuite.analysis.pareto import build_front

    labels, files = ["dense best"], [reference]
    for p in points:
        for form in ("fp32", "int8"):
            if form in p["saved"]:
                suffix = " int8" if form == "int8" else ""
                labels.append(f"{p['pruner']} {p['sparsity']:g}{suffix}")
                files.append(p["saved"][form] | {"parameters": p["parameters"]})
    found = {}
    for cost in TRADE_OFF_COSTS:
        names, entries = list(labels), list(files)
        if cost == "parameters":
            names += [f"study trial #{t['sequence']}" for t in study]
            entries += list(study)
        front = build_front(
            cost, [(f["test_accuracy"], float(f[cost])) for f in entries], True, names
        )
        found[cost] = {
            "members": [names[i] for i in front.members],
            "hypervolume": front.hypervolume,
            "reference": dataclasses.asdict(front.reference),
        }
    return found


def card_text(r: dict) -> str:
    dense = r["dense"]
    lines = [
        f"# Compressed models of {r['best']}",
        "",
        f"- data: {r['dataset']}, the study's splits; trial {r['trial']}",
        f"- recipe: {r['recipe']}; the dense model trained {r['study_epochs']} epochs",
        f"- fine-tuning: {r['finetune_epochs']} epochs after the dense best, "
        + (
            f"the first {r['prune_epochs']} of them the pruning steps of "
            f"{', '.join(p for p in TRAINED if any(q['pruner'] == p for q in r['points']))}; "
            if r["prune_epochs"]
            else ""
        )
        + f"seeds 0-{r['seeds'] - 1}",
        f"- controls: the dense model fine-tuned {r['finetune_epochs']} epochs (test "
        f"{r['dense_finetuned_test'][0]:.4f} +- {r['dense_finetuned_test'][1]:.4f}); the same "
        f"widths trained from scratch for {r['scratch_epochs']} epochs",
        f"- latency: per sample, median of {costs.LATENCY_REPEATS} calls, {r['threads']} "
        "thread(s), from the saved files as loaded",
        f"- dense best (widths {'-'.join(map(str, dense['widths'].values()))}): "
        f"{dense['parameters']:,} parameters, {dense['bytes'] / 1024:.0f} KiB as model.pt2, test "
        f"{dense['test_accuracy']:.4f}, {dense['latency_s_batch1'] * 1e6:.1f} us at batch 1, "
        f"{dense['latency_s_batch256'] * 1e6:.2f} us at batch 256",
        "",
        "| pruner | sparsity | widths | parameters | of dense | test (seeds) | from scratch "
        "(seeds) | saved model: test | KiB | us/sample batch 1 | us/sample batch 256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in r["points"]:
        for form in ("fp32", "int8"):
            if form not in p["saved"]:
                continue
            f = p["saved"][form]
            test = p["test"] if form == "fp32" else p["int8_test"]
            lines.append(
                f"| {p['pruner']}{' int8' if form == 'int8' else ''} | {p['sparsity']:g} | "
                f"{'-'.join(map(str, p['widths'].values()))} | {p['parameters']:,} | "
                f"{p['fraction_of_dense']:.1%} | {test[0]:.4f} +- {test[1]:.4f} | "
                f"{p['scratch_test'][0]:.4f} +- {p['scratch_test'][1]:.4f} | "
                f"{f['test_accuracy']:.4f} | {f['bytes'] / 1024:.0f} | "
                f"{f['latency_s_batch1'] * 1e6:.1f} | {f['latency_s_batch256'] * 1e6:.2f} |"
            )
    lines += ["", "Against the controls (fp32, test accuracy over seeds):", ""]
    for p in r["points"]:
        lines.append(
            f"- {p['pruner']} {p['sparsity']:g}: {p['against_dense_finetuned']}; "
            f"{p['against_scratch']}"
        )
    lines += ["", "Trade-offs of the saved files (nnisuite.analysis.pareto: the models no other "
              "saved model beats on both test accuracy and the cost; the hypervolume as a share of "
              "the box up to 1.1 x the largest cost; on parameters, with the study's "
              f"{len(r['study_trials'])} trials):", ""]  # fmt: skip
    for cost, what in TRADE_OFF_COSTS.items():
        f = r["fronts"][cost]
        lines.append(f"- {what}: {', '.join(f['members'])} (hypervolume {f['hypervolume']:.4f})")
    lines += [
        "",
        "Load a saved model with torch alone: `torch.export.load(PATH/model.pt2).module()(images)`,"
        " `torch.jit.load(PATH/model_int8.pt)(images)` (images: uint8, (n, rows, cols)).",
        "",
        f"Made by: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict, rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"compressed": "o", "int8": "s", "scratch": "x", "dense-finetuned": "^"}
    for kind, marker in styles.items():
        mine = [r for r in rows if r["kind"] == kind]
        if mine:
            ax.scatter([r["parameters"] for r in mine], [r["test_accuracy"] for r in mine],
                       marker=marker, label=kind, alpha=0.75)  # fmt: skip
    study = result.get("study_trials") or []
    if study:
        ax.scatter([t["parameters"] for t in study], [t["test_accuracy"] for t in study],
                   marker=".", color="grey", label="the study's trials", alpha=0.6)  # fmt: skip
    dense = result["dense"]
    if dense:
        ax.scatter([dense["parameters"]], [dense["test_accuracy"]], marker="*", s=150,
                   label="dense best (saved)", color="black")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{result['dataset']}: compressed models and their controls, every seed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    from nnisuite.trials.params import positive_int

    p = Parser(
        prog="python -m nnisuite.deploy.compress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("best", help="the --out folder of `nnisuite best` (best.json, weights.pt)")
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for the models, card and figures"
    )
    p.add_argument(
        "--pruner",
        type=pruner_list,
        default=["agp"],
        help=f"NNI pruner(s), comma-separated: {', '.join(PRUNERS)} (default agp: the best "
        "measured on Fashion-MNIST, docs/results.md)",
    )
    p.add_argument(
        "--sparsity",
        type=sparsity_list,
        default=[0.75],
        help="fraction(s) of each hidden layer's units to remove, comma-separated (default 0.75)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=3,
        help="epochs of training after the dense best, pruning steps included (3); the dense "
        "control trains as long",
    )
    p.add_argument(
        "--prune-epochs",
        type=positive_int,
        default=1,
        help="epochs of --epochs that taylor, agp and linear prune over (1)",
    )
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds of every point (3)")
    p.add_argument(
        "--scratch-epochs",
        type=positive_int,
        help="epochs of the from-scratch control (default: the study's epochs + --epochs)",
    )
    p.add_argument(
        "--int8", action="store_true", help="also quantize each result to int8 (PyTorch dynamic)"
    )
    p.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads, latency included (1)"
    )
    p.add_argument("--data-dir", help="where the dataset's files are (default: as the study)")
    p.add_argument(
        "--experiment-dir",
        help="NNI experiment folder holding the study, whose trials are drawn beside the "
        "compressed models (default ~/nni-experiments; not found there: not drawn)",
    )
    return p


def main(argv=None) -> int:
    from nnisuite.deploy.best import exit_code
    from nnisuite.outputs import check_writable
    from nnisuite.trials.data import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command = shlex.join(["nnisuite", "compress", *argv])
    problem = check_writable(Path(args.out), "--out")
    if not Path(args.best).is_dir():
        problem = problem or f"{args.best}: no such folder (the --out of `nnisuite best`)"
    return exit_code(run, args, problem, (CompressionError, DatasetError))


if __name__ == "__main__":
    sys.exit(main())
