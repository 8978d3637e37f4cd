"""One-shot NAS on the depth space: one supernet trained in this process by an NNI 3.0 one-shot
strategy, every depth then read off its shared weights, the pick retrained from scratch.

    code = run(settings, out="runs/oneshot")    # `python -m nnisuite.nas --strategy random-oneshot`

Strategies (nni.nas.strategy): random-oneshot (RandomOneShot, i.e. SPOS: one depth sampled per
step), darts (DARTS), gumbel-darts (GumbelDARTS), enas (ENAS: an RL controller samples depths).
The supernet is the depth space with every hidden layer `fixed_width` wide (depths must share
the head) and no seed choice; the multi-trial space stays as it is. Training goes through NNI's
Lightning evaluator (nni.nas.evaluator.pytorch.Classification) fed from nnisuite's in-memory
tensors in seeded, shuffled batches (no DataLoader, no per-sample transforms).

NNI records no trials for one-shot strategies (its export fails: microsoft/nni#5771), so the
table is nnisuite's own: trials.csv (one row per depth: `depth`, `default` = validation accuracy
with the supernet's shared weights, parameters), nas_table.md (the ranking, the strategy's pick,
the pick retrained from scratch over `retrain_seeds` seeds, wall times, and with --compare the
Kendall tau against a multi-trial study's per-depth means) and settings.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from nnisuite.config.nas_settings import INPUT_SIZES
from nnisuite.models import costs
from nnisuite.outputs import save_csv, write_text

FIXED_WIDTH = 256  # the log's width of every layer but the first
RETRAIN_SEEDS = 3


class TensorBatches:
    """An iterable of (x, y) batches of in-memory tensors, shuffled anew each pass with a
    seeded generator: what Lightning needs from a dataloader, at tensor-slicing cost."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, shuffle=True):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = (
            torch.randperm(len(self.x), generator=self.generator)
            if self.shuffle
            else torch.arange(len(self.x))
        )
        for start in range(0, len(self.x), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


class Tagged:
    """Batches of a loader as (batch, "train" | "val"): what NNI 3.0's ENAS module reads."""

    def __init__(self, loader, mode: str):
        self.loader, self.mode = loader, mode

    def __iter__(self):
        return ((batch, self.mode) for batch in self.loader)

    def __len__(self):
        return len(self.loader)


def enas_strategy():
    """NNI's ENAS, fixed for PyTorch Lightning >= 2.1. Its training step tells training batches
    from validation batches by the (batch, batch_idx, dataloader_idx) triple its ConcatLoader
    yields, but Lightning's loop now passes the batch alone, so every batch looked like
    validation (`ValueError: too many values to unpack` in validation_step); each batch here
    carries its mode, the form NNI's code reads for Lightning 1.x."""
    from nni.nas import strategy
    from nni.nas.oneshot.pytorch._dataloader import ConcatLoader

    class ENAS(strategy.ENAS):
        def train_dataloader(self, train_dataloader_fn, val_dataloader_fn):
            return ConcatLoader(
                {
                    "train": Tagged(train_dataloader_fn(), "train"),
                    "val": Tagged(val_dataloader_fn(), "val"),
                }
            )

    return ENAS(reward_metric_name="val_acc")  # the Classification evaluator logs several


def make_strategy(name: str, seed: int):
    from nni.nas import strategy

    torch.manual_seed(seed)  # the supernet's weights and the samplers' draws
    return {
        "random-oneshot": lambda: strategy.RandomOneShot(),
        "darts": lambda: strategy.DARTS(),
        "gumbel-darts": lambda: strategy.GumbelDARTS(),
        "enas": enas_strategy,
    }[name]()


def shared_weight_forward(supernet, depth: int):
    """The supernet as the MLP of `depth` hidden layers: its first `depth` blocks (shared by
    every depth, whatever the strategy's supermodules) and its head."""
    from nnisuite.nas.space import Block

    blocks = [m for m in supernet.modules() if isinstance(m, Block)][:depth]
    head = supernet.head

    def forward(x):
        h = x.flatten(1)
        for block in blocks:
            h = block.act(torch.nn.functional.linear(h, block.linear.weight, block.linear.bias))
        return torch.nn.functional.linear(h, head.weight, head.bias)

    return forward


@torch.no_grad()
def shared_weight_accuracy(supernet, depth: int, x, y) -> float:
    forward = shared_weight_forward(supernet, depth)
    correct = 0
    for start in range(0, len(x), 4096):
        correct += int(
            (forward(x[start : start + 4096]).argmax(1) == y[start : start + 4096]).sum()
        )
    return correct / len(x)


def train_supernet(
    settings: dict, data, announce, experiment_dir: str | None = None
) -> tuple[object, dict, float]:
    """(supernet, the strategy's pick, seconds) after training the supernet. NNI records the
    experiment under `experiment_dir` (default ~/nni-experiments), as the multi-trial runs."""
    import logging
    import warnings

    from nni.nas.evaluator.pytorch import Classification
    from nni.nas.experiment import NasExperiment

    from nnisuite.nas.space import DepthSpace

    for name in ("nni", "pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    seed = int(settings["seed"])
    space = DepthSpace(
        INPUT_SIZES[settings["dataset"]],
        data.num_classes,
        int(settings["min_depth"]),
        int(settings["max_depth"]),
        fixed_width=FIXED_WIDTH,
        seeded=False,
    )
    batch = int(settings["batch_size"])
    optimizer = torch.optim.Adam if settings["optimizer"] == "adam" else torch.optim.SGD
    evaluator = Classification(
        train_dataloaders=TensorBatches(data.train_x, data.train_y, batch, seed),
        val_dataloaders=TensorBatches(data.val_x, data.val_y, 4096, seed, shuffle=False),
        learning_rate=float(settings["lr"]),
        optimizer=optimizer,
        num_classes=data.num_classes,
        max_epochs=int(settings["epochs"]),
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    strategy = make_strategy(settings["strategy"], seed)
    exp = NasExperiment(space, evaluator, strategy)
    if experiment_dir:
        exp.config.experiment_working_directory = str(Path(experiment_dir).expanduser().resolve())
    announce(
        f"training the supernet ({settings['strategy']}, depth {settings['min_depth']}.."
        f"{settings['max_depth']}, width {FIXED_WIDTH}, {settings['epochs']} epochs)"
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp.run()
    seconds = time.perf_counter() - t0
    pick = exp.export_top_models(formatter="dict")[0]
    exp.stop()  # else NNI's atexit hook stops it (and logs) at interpreter exit
    return space, pick, seconds  # the space was mutated into the supernet in place


def retrain(settings: dict, depth: int, seeds: int, announce) -> list[dict]:
    """The pick trained from scratch with the engine, as a multi-trial trial trains it (the
    multi-trial space's widths), once per seed."""
    from nnisuite.nas.evaluator import reseed_parameters
    from nnisuite.nas.space import DepthSpace
    from nnisuite.trials.data import load_dataset
    from nnisuite.trials.engine import FitConfig, fit

    space = DepthSpace(INPUT_SIZES[settings["dataset"]], 10, repeats=seeds)
    results = []
    for seed in range(seeds):
        model = space.freeze({"depth": depth, "seed": seed})
        reseed_parameters(model, seed)
        data = load_dataset(settings["dataset"], settings["data_dir"], seed=0)
        t0 = time.perf_counter()
        final = fit(
            model,
            data,
            FitConfig(
                epochs=int(settings["epochs"]),
                lr=float(settings["lr"]),
                batch_size=int(settings["batch_size"]),
                optimizer=settings["optimizer"],
                momentum=float(settings["momentum"]),
                seed=seed,
            ),
        ).final
        results.append(final | {"seed": seed, "seconds": time.perf_counter() - t0})
        announce(f"retrained depth {depth}, seed {seed}: val {final['default']:.4f}")
    return results


class CompareError(ValueError):
    """A --compare file that is not a multi-trial depth study's trials.csv."""


def multi_trial_means(path: str) -> dict[int, float]:
    """depth -> mean validation accuracy of a multi-trial study's trials.csv; CompareError
    (one line) for anything else, checked before the supernet trains."""
    import pandas as pd

    try:
        trials = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CompareError(f"--compare {path}: not a readable CSV ({first})") from None
    missing = [c for c in ("depth", "default") if c not in trials.columns]
    if missing:
        raise CompareError(
            f"--compare {path}: not a NAS depth study's trials.csv (no column {missing[0]!r})"
        )
    done = trials[pd.to_numeric(trials["default"], errors="coerce").notna()]
    try:
        means = {int(d): float(g["default"].mean()) for d, g in done.groupby("depth")}
    except (TypeError, ValueError) as exc:
        raise CompareError(f"--compare {path}: depths or values are not numbers ({exc})") from None
    if not means:
        raise CompareError(f"--compare {path}: no finished trial to compare with")
    return means


def kendall(ours: dict[int, float], reference: dict[int, float]) -> tuple[float, float, int]:
    from scipy.stats import kendalltau

    depths = sorted(set(ours) & set(reference))
    tau, p = kendalltau([ours[d] for d in depths], [reference[d] for d in depths])
    return float(tau), float(p), len(depths)


def run(
    settings: dict,
    out: str | None = None,
    compare: str | None = None,
    experiment_dir: str | None = None,
) -> int:
    import pandas as pd

    from nnisuite.nas.space import DepthSpace
    from nnisuite.trials.data import load_dataset

    out_dir = Path(out or f"runs/oneshot-{settings['strategy']}-s{settings['seed']}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def announce(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {line}", flush=True)

    started = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_dataset(settings["dataset"], settings["data_dir"], seed=0)
    try:
        supernet, pick, search_s = train_supernet(settings, data, announce, experiment_dir)
    except KeyboardInterrupt:
        print("interrupted: the supernet was not finished; nothing written", file=sys.stderr)
        return 130
    except ImportError as exc:  # ENAS: tianshou
        print(
            f"error: {settings['strategy']} cannot run here: {exc} (NNI's ENAS controller, "
            "nni/nas/strategy/_rl_impl.py, is a tianshou PPO policy: pip install -e '.[enas]')",
            file=sys.stderr,
        )
        return 2
    announce(f"supernet trained in {search_s:.1f} s; NNI's export picks {pick}")
    depths = range(int(settings["min_depth"]), int(settings["max_depth"]) + 1)
    rows = []
    for depth in depths:
        acc = shared_weight_accuracy(supernet, depth, data.val_x, data.val_y)
        model = DepthSpace(
            INPUT_SIZES[settings["dataset"]], 10, fixed_width=FIXED_WIDTH, seeded=False
        ).freeze({"depth": depth})
        rows.append(
            {
                "depth": depth,
                "default": acc,
                "widths": "-".join([str(FIXED_WIDTH)] * depth),
                "parameters": costs.count_parameters(model),
                "nni_export": depth == int(pick["depth"]),
            }
        )
        announce(f"depth {depth} with the shared weights: val {acc:.4f}")
    trials = pd.DataFrame(rows)
    # the pick: the best depth by the shared weights' validation accuracy (SPOS's search after
    # training); NNI's own export is random for sampling strategies, DARTS' argmax otherwise
    best = int(trials.loc[trials["default"].idxmax(), "depth"])
    trials["picked"] = trials["depth"] == best
    save_csv(trials, out_dir / "trials.csv")
    t0 = time.perf_counter()
    try:
        retrained = retrain(settings, best, RETRAIN_SEEDS, announce)
    except KeyboardInterrupt:
        retrained = []
    retrain_s = time.perf_counter() - t0
    ours = dict(zip(trials["depth"], trials["default"]))
    summary = {
        "strategy": settings["strategy"],
        "seed": settings["seed"],
        "pick": best,
        "nni_export": int(pick["depth"]),
        "search_seconds": search_s,
        "retrain_seconds": retrain_s,
        "total_seconds": time.perf_counter() - started,
        "shared_weight_accuracy": {int(k): float(v) for k, v in ours.items()},
        "retrained": retrained,
    }
    if compare:
        reference = multi_trial_means(compare)
        tau, p, n = kendall(ours, reference)
        summary |= {"kendall_tau": tau, "kendall_p": p, "compared_depths": n, "reference": compare}
    write_text(out_dir / "settings.json", json.dumps(settings, indent=2) + "\n")
    write_text(out_dir / "oneshot.json", json.dumps(summary, indent=2, default=str) + "\n")
    text = markdown(settings, trials, summary)
    write_text(out_dir / "nas_table.md", text)
    print(text)
    print(f"files: {out_dir}/ (nas_table.md, trials.csv, oneshot.json, settings.json)")
    return 0


def markdown(settings: dict, trials, summary: dict) -> str:
    from nnisuite.nas.table import mean_std, table_markdown

    ranked = trials.sort_values("default", ascending=False).rename(
        columns={"default": "val_accuracy (shared weights)"}
    )
    lines = [
        f"# One-shot NAS ({settings['strategy']}, seed {settings['seed']}): hidden depth on "
        f"{settings['dataset']}, supernet of width {FIXED_WIDTH}, {settings['epochs']} epochs",
        "",
        table_markdown(ranked.reset_index(drop=True)),
        "",
        f"- the pick (best by the shared weights): depth {summary['pick']}; NNI's own export "
        f"says depth {summary['nni_export']}; supernet training {summary['search_seconds']:.1f} s",
    ]
    if summary["retrained"]:
        import pandas as pd

        r = pd.DataFrame(summary["retrained"])
        lines.append(
            f"- the pick retrained from scratch (the multi-trial space's widths, "
            f"{len(r)} seeds): val {mean_std(r['default'])}, test "
            f"{mean_std(r['test_accuracy'])}; {summary['retrain_seconds']:.1f} s"
        )
    if "kendall_tau" in summary:
        lines.append(
            f"- ranking of the {summary['compared_depths']} depths against the multi-trial "
            f"means of {summary['reference']}: Kendall tau {summary['kendall_tau']:.3f} "
            f"(p = {summary['kendall_p']:.3f})"
        )
    lines.append(f"- total wall time {summary['total_seconds']:.1f} s")
    lines.append(
        "- NNI records no trials for one-shot strategies (microsoft/nni#5771): this table is "
        "nnisuite's"
    )
    return "\n".join(lines) + "\n"
