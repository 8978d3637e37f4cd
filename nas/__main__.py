"""Run the 3.18 NAS study: `python -m nas --config experiments/nas_depth.yaml [overrides]`.

    python -m nas --config experiments/nas_depth.yaml                       # grid over 1..6
    python -m nas --config experiments/nas_depth.yaml --dataset fashion-mnist --repeats 3

Overrides: --dataset --epochs --strategy {grid,random,evolution} --max-trials --concurrency
--repeats --min-depth --max-depth --extended --port --experiment-dir --out. Bad settings are
reported before any trial starts (exit 2). At the end it writes into --out the exporter's files
(summary.md, intermediate.csv, plots), trials.csv (one row per trial: depth, seed, default,
test_accuracy, parameters, duration_s, ...) and nas_table.md (mean +- std over seeds), and
prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from experiments.config import ConfigError, load_yaml
from trials.warm import add_launcher_flag

STRATEGIES = ("grid", "random", "evolution")
INPUT_SIZES = {"digits": 64, "mnist": 784, "fashion-mnist": 784}
REPO = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "dataset": "digits",
    "epochs": 10,
    "strategy": "grid",
    "min_depth": 1,
    "max_depth": 6,
    "repeats": 1,
    "concurrency": 2,
    "max_trials": None,
    "extended": False,
    "lr": 0.1,
    "batch_size": 64,
    "optimizer": "sgd",
    "momentum": 0.0,
    "data_dir": None,
}


class SettingsError(ValueError):
    pass


def settings_from(args) -> dict:
    settings = dict(DEFAULTS)
    if args.config:
        raw = load_yaml(args.config)
        unknown = sorted(set(raw) - set(DEFAULTS))
        if unknown:
            raise SettingsError(f"{args.config}: unknown keys {unknown}; known: {sorted(DEFAULTS)}")
        settings.update({k: v for k, v in raw.items() if v is not None or k == "max_trials"})
    for key in DEFAULTS:
        value = getattr(args, key, None)
        if value is not None and value is not False:
            settings[key] = value
    return settings


def check(settings: dict) -> None:
    from nas.space import check_depth_bounds

    if settings["strategy"] not in STRATEGIES:
        raise SettingsError(
            f"strategy {settings['strategy']!r} unknown; NNI strategies offered "
            f"here: {', '.join(STRATEGIES)}"
        )
    if settings["dataset"] not in INPUT_SIZES:
        raise SettingsError(
            f"dataset {settings['dataset']!r} unknown; choose one of {', '.join(INPUT_SIZES)}"
        )
    try:
        check_depth_bounds(int(settings["min_depth"]), int(settings["max_depth"]))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    for key in ("epochs", "repeats", "concurrency"):
        if int(settings[key]) < 1:
            raise SettingsError(f"{key} must be >= 1, got {settings[key]}")
    if settings["extended"] and settings["strategy"] == "grid":
        raise SettingsError(
            "the extended space has 4^6 x 3^6 architectures: use --strategy "
            "random or evolution with --max-trials"
        )


def make_strategy(name: str, seed: int = 0):
    from nni.nas import strategy

    if name == "grid":
        return strategy.GridSearch(shuffle=False)
    if name == "random":
        return strategy.Random(seed=seed, dedup=True)
    return strategy.RegularizedEvolution(population_size=8, sample_size=4, seed=seed)


def grid_size(settings) -> int:
    return (int(settings["max_depth"]) - int(settings["min_depth"]) + 1) * int(settings["repeats"])


def run(
    settings: dict,
    port: int | None,
    experiment_dir: str | None,
    out: str | None,
    no_launcher: bool = False,
) -> int:
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment

    from analysis.export import export_experiment
    from experiments.run import free_port, port_is_free
    from nas.evaluator import evaluate_architecture
    from nas.space import DepthSpace
    from nas.table import TRIAL_COLUMNS, depth_table, table_markdown
    from trials.warm import warm_launcher

    concurrency = int(settings["concurrency"])
    space = DepthSpace(
        INPUT_SIZES[settings["dataset"]],
        10,
        int(settings["min_depth"]),
        int(settings["max_depth"]),
        int(settings["repeats"]),
        bool(settings["extended"]),
    )
    evaluator = FunctionalEvaluator(
        evaluate_architecture,
        dataset=settings["dataset"],
        data_dir=settings["data_dir"],
        epochs=int(settings["epochs"]),
        lr=float(settings["lr"]),
        batch_size=int(settings["batch_size"]),
        optimizer=settings["optimizer"],
        momentum=float(settings["momentum"]),
        threads=max(1, (os.cpu_count() or 1) // concurrency),
    )
    exp = NasExperiment(space, evaluator, make_strategy(settings["strategy"]))
    max_trials = settings["max_trials"] or grid_size(settings)
    exp.config.trial_concurrency = concurrency  # NNI 3.0's NAS default is 1
    # NNI builds the NAS trial command as `{python} -m nni.nas.execution.training_service
    # trial`; through trials.launch the trial forks from the warm launcher when one runs.
    exp.config._trial_command_params = {"python": f"{sys.executable} -m trials.launch"}
    exp.config.max_trial_number = int(max_trials)
    exp.config.trial_code_directory = str(REPO)
    exp.config.experiment_name = f"nas_depth_{settings['dataset']}"
    if experiment_dir:
        exp.config.experiment_working_directory = str(Path(experiment_dir).resolve())
    port = port or (8080 if port_is_free(8080) else free_port())
    out = Path(out or f"runs/nas-{exp.id}")
    print(
        f"NAS experiment {exp.id}: {settings['strategy']} over depth "
        f"{settings['min_depth']}..{settings['max_depth']} x {settings['repeats']} seed(s), "
        f"{max_trials} trials, concurrency {concurrency}; web UI http://127.0.0.1:{port}",
        flush=True,
    )
    stop_watch = threading.Event()
    watcher = threading.Thread(
        target=lambda: watch_until(port, max_trials, stop_watch), daemon=True
    )
    interrupted = False
    with warm_launcher(not no_launcher):
        try:
            watcher.start()
            exp.start(port)  # returns when the strategy has submitted its last architecture
            wait_for_trials(port, min(int(max_trials), space_size(settings)))
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: stopping the experiment...", file=sys.stderr)
        finally:
            stop_watch.set()
            watcher.join(timeout=5)
            exp.stop()
    exp_dir = Path(exp.config.experiment_working_directory).expanduser()
    result = export_experiment(exp.id, out, exp_dir)
    trials = result.trials
    columns = [c for c in TRIAL_COLUMNS if c in trials] + [
        c for c in trials.columns if c not in TRIAL_COLUMNS
    ]
    trials[columns].to_csv(out / "trials.csv", index=False)
    table = depth_table(trials)
    text = (
        f"# NAS {exp.id}: hidden depth on {settings['dataset']}, {settings['epochs']} "
        f"epochs, {settings['repeats']} seed(s) per architecture\n\n" + table_markdown(table) + "\n"
    )
    (out / "nas_table.md").write_text(text)
    print(text)
    print(f"files: {out}/ (nas_table.md, trials.csv, summary.md, plots)")
    print(f"web UI again: nnictl view {exp.id} --experiment_dir {exp_dir} --port {port}")
    return 130 if interrupted else 0


def space_size(settings) -> int:
    size = grid_size(settings)
    if settings["extended"]:
        size *= 4 ** int(settings["max_depth"]) * 3 ** int(settings["max_depth"])
    return size


def wait_for_trials(port: int, expected: int, idle_limit_s: float = 60.0) -> None:
    """NNI 3.0's NAS strategy returns without waiting for the trials it submitted: wait until
    `expected` trials have ended, or nothing has been running or waiting for `idle_limit_s`."""
    import time

    from analysis.store import FINISHED, ExportError, read_rest

    idle_since = time.monotonic()
    while True:
        try:
            trials = read_rest(f"http://127.0.0.1:{port}").trials
        except ExportError:
            return
        if sum(t.status in FINISHED for t in trials) >= expected:
            return
        if any(t.status not in FINISHED for t in trials):
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > idle_limit_s:
            return
        time.sleep(0.5)


def watch_until(port, max_trials, stop_event) -> None:
    """Progress lines until the strategy ends (the NAS API blocks the main thread)."""
    import time

    from analysis.store import ExportError, read_rest
    from experiments.run import progress_line

    last = None
    started = time.monotonic()
    while not stop_event.wait(1.0):
        try:
            trials = read_rest(f"http://127.0.0.1:{port}").trials
        except ExportError:
            continue
        line, _ = progress_line(trials, max_trials)
        if line != last:
            print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)
            last = line


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m nas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="NAS settings YAML (experiments/nas_depth.yaml)")
    p.add_argument("--dataset")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--epochs", type=int)
    p.add_argument("--strategy", help=f"one of {', '.join(STRATEGIES)}")
    p.add_argument("--max-trials", dest="max_trials", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--min-depth", dest="min_depth", type=int)
    p.add_argument("--max-depth", dest="max_depth", type=int)
    p.add_argument("--extended", action="store_true")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--port", type=int)
    p.add_argument("--experiment-dir")
    p.add_argument("--out")
    add_launcher_flag(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        check(settings)
    except (SettingsError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(settings, args.port, args.experiment_dir, args.out, args.no_launcher)


if __name__ == "__main__":
    sys.exit(main())
