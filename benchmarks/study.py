"""A study three ways, side by side: Optuna in-process, NNI with the warm launcher, NNI with a
fresh process per trial. Same space (the 3.17 one), same trial code, epochs and trial seeds.

    python -m nnisuite.benchmarks.study --out runs/study             # digits: 10 trials x 10 epochs
    python -m nnisuite.benchmarks.study --case fashion-mnist --out DIR  # 10 x 20 epochs, 2 at once
    python -m nnisuite.benchmarks.study --out DIR --quick                  # harness check (tests)

Cases: `digits` (tiny trials: NNI's per-trial cost dominates) runs all three at concurrency 1
and 2; `fashion-mnist` (the log's 3.17 study as a user runs it) runs Optuna with n_jobs=2
(two trials in threads of one process) against NNI + warm launcher at concurrency 2.

Reports wall time, the trials' summed training time, wall beyond training, per-trial overhead
(a trial's wall time minus its training time), best validation accuracy and the ratios to
Optuna, as DIR/study.json and DIR/study.md. The two TPEs pick different trials (network sizes,
batch sizes), so a last row has Optuna run the warm-launcher study's own trials, enqueued in
its order: the same training both ways (`wall_vs_same_trials`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from nnisuite import DATA
from nnisuite.benchmarks.machine import cpu_name
from nnisuite.benchmarks.report import out_folder
from nnisuite.flags import Parser
from nnisuite.outputs import folder_flag
from nnisuite.trials.params import positive_int

REPLAY = "Optuna, the same trials as NNI"  # the row that replays NNI's own trials
# case -> (experiment file, trials, epochs, concurrencies, NNI systems); the file's search
# space serves Optuna too, and its trial command's --dataset
CASES = {
    "digits": ("mlp_tpe_digits.yaml", 10, 10, [1, 2], (True, False)),
    "fashion-mnist": ("mlp_tpe_fashion.yaml", 10, 20, [2], (True,)),
}


def dataset_of(experiment_yaml: Path) -> str:
    from nnisuite.config.experiment import TrialCommand, get_key, load_yaml

    command = TrialCommand.parse(get_key(load_yaml(experiment_yaml), "trialCommand")[1])
    return command.flag("--dataset") or "digits"


def optuna_study(
    trials: int, epochs: int, concurrency: int, experiment_yaml: Path, replay=None
) -> dict:
    """Optuna's TPESampler, trials in this process (threads for concurrency > 1). `replay`: a
    list of parameter sets enqueued in order instead (the same trials another system ran)."""
    import optuna
    import torch

    from nnisuite.config.experiment import load_yaml
    from nnisuite.config.search_space import load_space, optuna_distributions, suggest
    from nnisuite.trials.mlp import MLPParams, build_mlp
    from nnisuite.trials.params import resolve_params
    from nnisuite.trials.runner import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    overheads, train_s, lock = [], [], threading.Lock()
    nni_space, _, _ = load_space(load_yaml(experiment_yaml), experiment_yaml)
    space = optuna_distributions(nni_space)
    dataset = dataset_of(experiment_yaml)

    def objective(trial):
        t0 = time.perf_counter()
        params = resolve_params(
            MLPParams,
            ["--dataset", dataset, "--epochs", str(epochs), "--threads", "1"],
            {name: suggest(trial, name, dist) for name, dist in space.items()},
        )
        final = train(params, build_mlp).final
        with lock:
            overheads.append(time.perf_counter() - t0 - final["train_seconds"])
            train_s.append(final["train_seconds"])
        return final["default"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    for params in replay or []:
        study.enqueue_trial(params)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=concurrency)
    return {
        "wall_s": time.perf_counter() - t0,
        "best": study.best_value,
        "overhead_s": statistics.median(overheads),
        "train_s": sum(train_s),
        "trials": len(study.trials),
    }


def nni_study(
    trials: int, epochs: int, concurrency: int, launcher: bool, workdir: Path, experiment_yaml: Path
) -> dict:
    """The experiment through NNI's manager, as `python -m nnisuite.study.run` runs it."""
    import io

    from nni.experiment import Experiment

    from nnisuite.analysis.store import load_experiment
    from nnisuite.config.experiment import apply_overrides, load_yaml, to_nni_config
    from nnisuite.launcher.warm import warm_launcher
    from nnisuite.nni_patches.interpreter import quick_version_query
    from nnisuite.study.manager import free_port, owned_start, watch

    raw = apply_overrides(
        load_yaml(experiment_yaml),
        max_trials=trials,
        concurrency=concurrency,
        epochs=epochs,
        experiment_dir=str(workdir / "nni"),
    )
    config = to_nni_config(raw, experiment_yaml)
    with warm_launcher(launcher, stream=io.StringIO()), quick_version_query():
        exp = Experiment(config)
        port = free_port()
        t0 = time.perf_counter()
        try:
            with owned_start(exp, port, None):  # on loopback, as every manager nnisuite starts
                exp.start(port)
            status = watch(port, trials, poll_s=0.2, stream=io.StringIO(), timeout_s=3600).status
            wall = time.perf_counter() - t0
            result = load_experiment(f"http://127.0.0.1:{port}")
        finally:
            exp.stop()
    finished = [t for t in result.trials if "default" in t.final]
    overheads = [
        t.duration_s - t.final["train_seconds"] for t in finished if t.duration_s is not None
    ]
    in_order = sorted(result.trials, key=lambda t: t.sequence if t.sequence is not None else 0)
    return {
        "wall_s": wall,
        "best": max((t.final["default"] for t in finished), default=None),
        "overhead_s": statistics.median(overheads) if overheads else None,
        "train_s": sum(t.final["train_seconds"] for t in finished),
        "trials": len(finished),
        "status": status,
        "parameters": [t.parameters for t in in_order],
    }


def run(
    out: Path,
    trials: int,
    epochs: int,
    concurrencies: list[int],
    case: str = "digits",
    systems=(True, False),
) -> dict:
    experiment_yaml = DATA / "experiments" / CASES[case][0]
    results = {
        "case": case,
        "trials": trials,
        "epochs": epochs,
        "dataset": dataset_of(experiment_yaml),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="nnisuite-study-") as tmp:
        for c in concurrencies:
            optuna_run = optuna_study(trials, epochs, c, experiment_yaml)
            rows = [{"system": "Optuna (in-process TPE)", "concurrency": c, **optuna_run}]
            for launcher in systems:
                name = "NNI + warm launcher" if launcher else "NNI, process per trial"
                folder = Path(tmp) / f"{c}-{launcher}"
                run_ = nni_study(trials, epochs, c, launcher, folder, experiment_yaml)
                rows.append({"system": name, "concurrency": c, **run_})
            # the two TPEs pick different trials (sizes, batches), so their training differs;
            # Optuna then runs the warm-launcher study's own trials: the same work both ways
            replay = optuna_study(trials, epochs, c, experiment_yaml, rows[1].pop("parameters"))
            rows.append({"system": REPLAY, "concurrency": c, **replay})
            for row in rows:
                row.pop("parameters", None)
                row["wall_vs_optuna"] = row["wall_s"] / optuna_run["wall_s"]
                row["other_s"] = row["wall_s"] - row["train_s"] / c  # wall beyond training
                if row["system"].startswith("NNI"):
                    row["wall_vs_same_trials"] = row["wall_s"] / replay["wall_s"]
            results["runs"] += rows
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "study.md").write_text(markdown(results))
    return results


def markdown(r: dict) -> str:
    lines = [
        f"{r['trials']} trials x {r['epochs']} epochs on {r['dataset']}, the 3.17 space; "
        f"{cpu_name()}.",
        "",
        "| system | concurrency | wall s | training s (sum) | wall beyond training s "
        "| per-trial overhead s | best val acc | wall / Optuna |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["runs"]:
        best = f"{row['best']:.4f}" if row["best"] is not None else "-"
        over = f"{row['overhead_s']:.2f}" if row["overhead_s"] is not None else "-"
        lines.append(
            f"| {row['system']} | {row['concurrency']} | {row['wall_s']:.1f} | "
            f"{row['train_s']:.1f} | {row['other_s']:.1f} | {over} | {best} | "
            f"{row['wall_vs_optuna']:.2f}x |"
        )
    same = [
        f"{row['system']} at concurrency {row['concurrency']}: {row['wall_vs_same_trials']:.2f}x"
        for row in r["runs"]
        if "wall_vs_same_trials" in row
    ]
    lines += [
        "",
        "Wall beyond training = wall - (sum of the trials' training seconds) / concurrency. "
        f"The two TPEs pick different trials; {REPLAY!r} runs the warm-launcher study's trials "
        "in its order (enqueued), so that both train the same models. Wall against it: "
        + "; ".join(same)
        + ".",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for study.json and study.md"
    )
    p.add_argument("--case", choices=list(CASES), default="digits", help="which study (digits)")
    p.add_argument("--trials", type=positive_int, help="trials per study (the case's: 10)")
    p.add_argument("--epochs", type=positive_int, help="epochs per trial (the case's: 10 or 20)")
    p.add_argument("--concurrency", type=positive_int, nargs="+", help="concurrencies to run")
    p.add_argument(
        "--quick",
        action="store_true",
        help="2 trials, 1 epoch, concurrency 1 (not with --trials / --epochs / --concurrency)",
    )
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick and (args.trials or args.epochs or args.concurrency):
        parser.error("--quick sets trials, epochs and concurrency: give either")
    out_folder(parser, args.out)
    _, trials, epochs, concurrencies, systems = CASES[args.case]
    trials, epochs = args.trials or trials, args.epochs or epochs
    concurrencies = args.concurrency or concurrencies
    if args.quick:
        trials, epochs, concurrencies = 2, 1, [1]
    result = run(Path(args.out), trials, epochs, concurrencies, args.case, systems)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
