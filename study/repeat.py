"""Repeated studies: every (variant, seed) of a study-of-studies file as a real NNI experiment,
then the comparison with statistics.

    python -m nnisuite.study.repeat experiments/tuners_digits.yaml --out runs/tuners-digits
    python -m nnisuite.study.repeat FILE --out DIR --seeds 3 --max-trials 8 --variants tpe,random

The file names a base experiment YAML, the variants (each replaces the base's `tuner` and/or
`assessor`, and may set its own `epochs`), the seeds, and the trials, concurrency and epochs of
every run. Seed s reaches the
tuner as classArgs `seed` when its constructor takes one, and every trial as `--seed s` (data
split, initial weights, batch order), so variants meet the same noise seed by seed; tuners
without a seed say so in the output and differ between runs by their own unseeded draws.
The base may run your own trial (`python3 train.py`, any trialCommand NNI accepts): its seed
is then the environment variable NNISUITE_SEED (read it: `int(os.environ["NNISUITE_SEED"])`),
`epochs` and `dataset` (flags of nnisuite's trials) are refused, and --launcher / --no-launcher
choose how a `python SCRIPT.py` trial starts, as in nnisuite.study.run.

Each run goes through the runner's machinery (validation, one NNI manager, the watchdog, the
export into DIR/runs/<variant>-s<seed>/: its tables and summary; its plots with --plots, its
parameter importance with --importance) with one warm launcher for all runs. Progress: runs
done / total, elapsed, estimated remaining. Ctrl-C stops the current run cleanly; finished runs
are kept, and running the same command again skips them, but only a run made with the same
settings (its whole experiment: space, tuner, trials, epochs, concurrency, dataset; recorded in
its run.json): one made otherwise is named and run again. At the end, DIR holds runs.csv,
comparison.csv, pairwise.csv, comparison.md and the best-so-far band plots
(nnisuite.analysis.compare).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import sys
import time
from pathlib import Path

from nnisuite.analysis.atomic import EXIT_WRITE, WriteError, staged
from nnisuite.analysis.store import ExportError
from nnisuite.config.plan import (
    RepeatError,
    is_nas,
    load_plan,
    nas_settings,
    override_plan,
    run_config,
    takes_seed,
)
from nnisuite.config.validate import validate
from nnisuite.flags import Parser
from nnisuite.launcher.warm import add_launcher_flag, warm_launcher
from nnisuite.nni_patches.binding import add_host_flag, check_host
from nnisuite.outputs import check_writable, folder_flag
from nnisuite.shipped import find_study
from nnisuite.study.manager import (
    EXIT_INTERRUPTED,
    EXIT_NO_RESULT,
    EXIT_USAGE,
    Study,
    run_study,
)
from nnisuite.trials.params import positive_int

MAX_RUNS = 100_000  # (variant, seed) runs of one repeated study: beyond, a typo


def run_settings(plan, variant: str, seed: int) -> dict:
    """What one run is made of, as recorded in its run.json: the experiment mapping (HPO) or
    the NAS settings, without where NNI keeps it."""
    if is_nas(plan):
        return json.loads(json.dumps(nas_settings(plan, variant, seed, plan.get("dataset"))))
    raw = run_config(plan, variant, seed, None, plan.get("dataset"))
    raw.pop("experimentWorkingDirectory", None)
    return json.loads(json.dumps(raw, default=str))


def differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:4]) + (
        f" (and {len(keys) - 4} more)" if len(keys) > 4 else ""
    )


def hpo_study(plan, variant: str, seed: int, folder: Path, experiment_dir, launch=None):
    """(Study, seeded, warm) of one HPO run, or an exit code when its config is invalid.
    `launch`: --launcher / --no-launcher / None, for a `python SCRIPT.py` trial; `warm`: whether
    its trials fork from a warm launcher (the repeat's, which imported the same: study.preload)."""
    from nni.experiment import Experiment

    from nnisuite.config.experiment import set_key, to_nni_config
    from nnisuite.config.problem import errors
    from nnisuite.config.trial import Trial, through_launcher

    raw = run_config(plan, variant, seed, experiment_dir, plan.get("dataset"))
    problems = errors(validate(plan["base"], raw))
    if problems:
        for problem in problems:
            print(f"error: {variant} seed {seed}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    trial = Trial.of(raw, plan["base"])
    command, warm, _ = through_launcher(trial, launch)
    if command:
        raw = set_key(raw, "trialCommand", command)
    config = to_nni_config(raw, plan["base"])
    hint = "run the same command again to continue"
    study = Study(Experiment(config), None, folder, config.max_trial_number, hint)
    study.preload = trial.preload()  # as the repeat's launcher: the run uses it, starts none
    return study, takes_seed(raw.get("tuner") or {}), warm


def nas_study(plan, variant: str, seed: int, folder: Path, experiment_dir):
    """(Study, True, True) of one NAS run (the strategy is seeded; trials fork from the warm
    launcher), or an exit code."""
    from nnisuite.config.nas_settings import SettingsError, check, max_trials, space_size
    from nnisuite.nas.study import build_experiment

    try:
        settings = nas_settings(plan, variant, seed, plan.get("dataset"))
        check(settings)
    except SettingsError as exc:
        print(f"error: {variant} seed {seed}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    exp = build_experiment(settings, experiment_dir)
    budget = max_trials(settings)
    hint = "run the same command again to continue"
    study = Study(
        exp,
        None,
        folder,
        budget,
        hint,
        background_start=True,
        expected_trials=min(budget, space_size(settings)),
    )
    return study, True, True


def run_one(
    plan,
    variant: str,
    seed: int,
    out: Path,
    experiment_dir,
    plots: bool,
    launch=None,
    host=None,
    forest: bool = False,
) -> dict | int:
    """One run as a real NNI experiment; returns its record, or an exit code to stop on."""
    from nnisuite.analysis.compare import Run
    from nnisuite.analysis.export import export
    from nnisuite.analysis.store import load_experiment

    folder = out / "runs" / f"{variant}-s{seed}"
    if is_nas(plan):
        made = nas_study(plan, variant, seed, folder, experiment_dir)
    else:
        made = hpo_study(plan, variant, seed, folder, experiment_dir, launch)
    if isinstance(made, int):
        return made
    study, seeded, warm = made
    study.host = host
    started = time.monotonic()
    records: dict = {}

    def export_run(study, _outcome):
        loaded = load_experiment(study.exp.id, study.exp_dir, live=False)
        export(loaded, folder, plots=plots, optuna=False, forest=forest)
        records["run"] = Run.of(loaded, variant, seed, time.monotonic() - started)

    code = run_study(study, export=export_run, launcher=warm, stream=io.StringIO(), announce=False)
    if code not in (0, EXIT_NO_RESULT) or "run" not in records:
        return code or 1  # a run without any result is kept: named, and left out of the statistics
    record = records["run"].to_json() | {
        "status": study.outcome.status if study.outcome else "?",
        "seeded_tuner": seeded,
        "settings": run_settings(plan, variant, seed),
    }
    with staged(folder) as stage:  # run.json says the run is done: whole or not at all
        (stage / "run.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def finished(folder: Path, settings: dict) -> dict | None:
    """The run recorded in `folder`, if it was made with `settings` (else it is named and None:
    it runs again)."""
    path = folder / "run.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return None
    if record.get("settings") != settings:
        what = (
            differences(record["settings"], settings)
            if isinstance(record.get("settings"), dict)
            else "no settings recorded"
        )
        print(f"note: {folder} was made with other settings ({what}): running it again")
        return None
    return record


def ran_what(plan: dict, variants: list[str], seeds: int) -> str:
    """The trials, epochs and seeds that actually ran, for the title."""
    epochs = {plan["variants"][v].get("epochs", plan.get("epochs")) for v in variants}
    each = (
        f" x {epochs.pop()} epochs"
        if len(epochs) == 1 and None not in epochs
        else " (epochs as the base / variants set)"
    )
    trials = f"{plan['trials']} trials" if plan.get("trials") else "the base's trials"
    return f"{trials}{each}, {seeds} seed{'s' if seeds != 1 else ''}"


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def repeat(args) -> int:
    from nnisuite.analysis.compare import Run, aggregate, has_result

    for path, flag in ((args.out, "--out"), (args.experiment_dir, "--experiment-dir")):
        problem = check_writable(Path(path), flag) if path else None
        if problem:
            raise RepeatError(problem)
    problem = check_host(args.host)
    if problem:
        raise RepeatError(problem)
    plan = load_plan(args.file)
    overridden = any(getattr(args, k) is not None for k in ("seeds", "max_trials", "epochs"))
    overridden = overridden or bool(args.dataset or args.variants)
    override_plan(
        plan, **{k: getattr(args, k) for k in ("seeds", "max_trials", "epochs", "dataset")}
    )
    variants = list(plan["variants"])
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
        if not wanted:
            raise RepeatError(f"--variants {args.variants!r}: name one or more of {variants}")
        if len(set(wanted)) < len(wanted):
            twice = sorted({v for v in wanted if wanted.count(v) > 1})
            raise RepeatError(f"--variants: {twice} given twice: each variant runs once a seed")
        unknown = [v for v in wanted if v not in plan["variants"]]
        if unknown:
            raise RepeatError(f"unknown variants {unknown}; the file has {variants}")
        variants = wanted
    seeds = range(int(plan.get("seeds") or 1))
    if len(seeds) * len(variants) > MAX_RUNS:
        raise RepeatError(
            f"{len(seeds)} seeds x {len(variants)} variants is more than {MAX_RUNS:,} NNI "
            "experiments: lower --seeds"
        )
    out = Path(args.out)
    todo = [(v, s) for s in seeds for v in variants]  # seed-major: early stops stay paired
    for v, _ in todo[: len(variants)]:
        tuner = plan["variants"][v].get("tuner")  # (NAS variants set a seeded strategy)
        if isinstance(tuner, dict) and not takes_seed(tuner):
            print(
                f"note: {v}: tuner {tuner.get('name') or tuner.get('className')} has no seed; "
                "its runs differ by its own unseeded draws (the trials' seed still varies)",
                file=sys.stderr,
            )
    warm, preload = args.launcher is not False, None
    if not is_nas(plan):
        from nnisuite.analysis.direction import direction

        modes = {v: direction(run_config(plan, v, 0, None)) for v in variants}
        if len(set(modes.values())) > 1:
            said = ", ".join(f"{v} {m}s" for v, m in modes.items())
            raise RepeatError(
                f"the variants optimize in different directions ({said}): set optimize_mode "
                "in the base tuner's classArgs (variants take it) or in each variant"
            )  # the base's trial: say once how it starts and what it is checked for
        from nnisuite.config.problem import report
        from nnisuite.config.trial import Trial, through_launcher
        from nnisuite.config.validate import tpe_start_up

        raw = run_config(plan, todo[0][0], 0, None, plan.get("dataset"))
        if report(validate(plan["base"], raw), sys.stderr, f"{todo[0][0]}: "):
            return EXIT_USAGE
        for variant in dict.fromkeys(v for v, _ in todo[1:] if v != todo[0][0]):
            # a TPE variant inside its random start-up is random search: said once each
            config = run_config(plan, variant, 0, None, plan.get("dataset"))
            report(tpe_start_up(config, str(plan["base"])), sys.stderr, f"{variant}: ")
        trial = Trial.of(raw, plan["base"])
        _, warm, said = through_launcher(trial, args.launcher)
        if said:
            print(said, flush=True)
        preload = trial.preload()  # the same source whether or not the command is rewritten
    logging.getLogger("nni").setLevel(logging.WARNING)  # NNI's per-run start/stop lines
    records = []
    started = time.monotonic()
    ran = 0
    with contextlib.ExitStack() as stack:  # the launcher starts with the first run to make
        for i, (variant, seed) in enumerate(todo, 1):
            done = finished(out / "runs" / f"{variant}-s{seed}", run_settings(plan, variant, seed))
            fresh = done is None
            if fresh:
                if not ran:  # (a rerun that keeps every run starts none)
                    stack.enter_context(warm_launcher(warm, preload=preload))
                result = run_one(
                    plan,
                    variant,
                    seed,
                    out,
                    args.experiment_dir,
                    args.plots,
                    args.launcher,
                    args.host,
                    args.importance,
                )
                if isinstance(result, int):
                    print(
                        f"stopped at run {i}/{len(todo)} ({variant}, seed {seed}): exit {result};"
                        f" {i - 1} runs kept in {out}/runs; run the same command again to continue",
                        file=sys.stderr,
                    )
                    return EXIT_INTERRUPTED if result == EXIT_INTERRUPTED else result
                done = result
                ran += 1
            records.append(done)
            elapsed = time.monotonic() - started
            left = (elapsed / ran) * (len(todo) - i) if ran else 0.0
            pick = min if done.get("mode") == "minimize" else max
            finite = [v for v in done["finals"] if isinstance(v, (int, float)) and math.isfinite(v)]
            best = f"best {pick(finite):.4f}" if finite else "NO RESULT (no trial reported a final)"
            print(
                f"[{i}/{len(todo)}] {variant} seed {seed}: {best}, "
                f"{done.get('wall_s') or 0:.0f} s ({'ran' if fresh else 'kept from before'}); "
                f"elapsed {clock(elapsed)}, about {clock(left)} left",
                flush=True,
            )
    runs = [Run(**{k: r[k] for k in Run.__dataclass_fields__ if k in r}) for r in records]
    what = ran_what(plan, variants, len(seeds))
    if plan.get("title") and not overridden:
        title = plan["title"]
    else:
        name = (plan.get("title") or Path(args.file).stem).rsplit(": ", 1)[0]
        title = f"{name}: {len(variants)} variants, {what}"
    print(aggregate(runs, int(plan.get("trials") or 0) or max(r.trials for r in runs), out, title))
    print(f"files: {out}/ (runs.csv, comparison.csv, pairwise.csv, comparison.md, *.png, runs/)")
    if not any(has_result(r) for r in runs):
        print(
            f"error: no run has a result: every trial of every run failed or reported no final "
            f"result (each run's trials.csv and trial logs: {out}/runs/)",
            file=sys.stderr,
        )
        return EXIT_NO_RESULT
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.study.repeat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file",
        type=find_study,
        help="study-of-studies YAML (experiments/tuners_digits.yaml), or a shipped one's name",
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for the runs and the comparison"
    )
    p.add_argument("--experiment-dir", help="NNI experiment folder (default ~/nni-experiments)")
    p.add_argument("--seeds", type=positive_int, help="runs per variant (override the file)")
    p.add_argument("--max-trials", type=positive_int, help="trials per run (override the file)")
    p.add_argument("--epochs", type=positive_int, help="epochs per trial (override the file)")
    p.add_argument("--dataset", help="the trials' --dataset (override the base experiment)")
    p.add_argument("--variants", help="comma-separated subset of the file's variants")
    p.add_argument("--plots", action="store_true", help="also draw each run's own plots")
    p.add_argument(
        "--importance",
        action="store_true",
        help="also fit each run's parameter importance (the random forest of `nnisuite export`, "
        "~0.8 s of CPU a run; the comparison does not use it)",
    )
    add_host_flag(p)
    add_launcher_flag(p, scripts=True)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return repeat(args)
    except (RepeatError, ExportError) as exc:  # ExportError: runs that cannot be compared
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_WRITE
    except KeyboardInterrupt:
        print("interrupted; finished runs are kept: run the same command again", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
