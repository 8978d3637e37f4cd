"""Run a whole study with one command: validate, start on NNI, watch, stop, export; or resume one.

    python -m nnisuite.study.run experiments/mlp_tpe_digits.yaml          # what `make demo` runs
    python -m nnisuite.study.run experiments/mlp_tpe_fashion.yaml --max-trials 4 --epochs 5
    python -m nnisuite.study.run --resume ID [--experiment-dir DIR]       # after a crash or Ctrl-C

Any trial NNI accepts runs: nnisuite's own (`python3 -m nnisuite.launcher nnisuite.trials.mlp ...`)
and yours (`python3 train.py --flag`, `python3 -m your.module`, `bash run.sh`; trialCodeDirectory
relative to the YAML, as in nnictl). Trials run with this runner's Python first on PATH, as in an
activated venv. Overrides of the YAML: --port, --experiment-dir, --max-trials, --concurrency
(your trial gets OMP_NUM_THREADS instead of --threads), --dataset and --epochs (flags of
nnisuite's trials only). The experiment is validated first (exit 2 on problems; a remote
study's hosts are asked over SSH whether they can run its trials), runs on NNI's
own manager (web UI at http://127.0.0.1:PORT while it runs), and is exported with
`nnisuite export` into --out (default runs/<name>-<id>). Exit codes: 0 done; 2 bad input; 3 the
watchdog found the manager dead, the experiment in ERROR or nothing moving for --stall-minutes
(it prints the logs' tails, exports and says how to resume); 4 a disk filled or the export
could not be written (nothing finished lost, no file half-written); 5 the study ended and no
trial reported a final result (the first failed trial's stderr is quoted); 130 Ctrl-C (stopped
cleanly, still exported). The end says how every trial ended (with a final result, succeeded,
failed, stopped, succeeded without a final). NNI's manager listens on this machine only
(127.0.0.1, ::1) unless --host.

--resume continues a stopped or crashed experiment with NNI's own resume: trials that were
running when it stopped are run again (same id and parameters), the tuner is given every
finished result (IMPORT_DATA), and the study ends with its maxTrialNumber trials.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import sys
from pathlib import Path

from nnisuite.config.experiment import (
    ConfigError,
    apply_overrides,
    get_key,
    load_yaml,
    set_key,
    to_nni_config,
)
from nnisuite.config.machines import check_machines, needed
from nnisuite.config.problem import report
from nnisuite.config.trial import Trial, through_launcher
from nnisuite.config.validate import validate
from nnisuite.flags import Parser
from nnisuite.launcher.warm import add_launcher_flag
from nnisuite.nni_patches.binding import add_host_flag, check_host, private_prefix
from nnisuite.outputs import check_writable, folder_flag
from nnisuite.shipped import find_study, listing
from nnisuite.study.claim import Held, claim
from nnisuite.study.manager import (
    EXIT_DONE,
    EXIT_USAGE,
    Study,
    port_problem,
    quoted,
    run_study,
)
from nnisuite.trials.params import positive_int

OVERRIDES = ("max_trials", "concurrency", "dataset", "epochs")


def export_flags(args) -> dict:
    """What --no-plots / --no-optuna / --no-importance ask of the export (export_experiment's
    keyword arguments)."""
    return {"plots": args.plots, "optuna": args.optuna, "forest": args.forest}


def export(study: Study, _outcome, plots: bool = True, **flags) -> None:
    from nnisuite.analysis.export import export_experiment
    from nnisuite.analysis.store import ExportError

    exp = study.exp
    try:
        result = export_experiment(
            exp.id, study.out, study.exp_dir, live=False, plots=plots, **flags
        )
    except ExportError as exc:
        print(f"nothing to export: {exc}", file=sys.stderr)
        return
    print(result.summary)
    print(files_line(study.out, plots))
    view = f"nnictl view {exp.id} --experiment_dir {quoted(study.exp_dir)} --port {study.port}"
    view = private_prefix() + view  # a manager of its own: on loopback too
    print(f"web UI again: {view}")


def files_line(out: Path, plots: bool) -> str:
    """Where the export went, and what it holds."""
    if plots:
        return f"tables and plots: {out}/ (summary.md, trials.csv, intermediate.csv, *.png)"
    return f"tables: {out}/ (summary.md, trials.csv, intermediate.csv; no plots: --no-plots)"


def default_out(name: str | None, exp_id: str) -> str:
    """runs/<name>-<id>: the experiment's name as one path component of its own (a name such as
    `../../elsewhere` or `a/b` never leaves runs/), whatever it holds."""
    safe = re.sub(r"[^\w.-]+", "_", name or "").strip("._") or "experiment"
    return f"runs/{safe[:80]}-{exp_id}"


def resume_hint(exp_id: str, exp_dir: Path, out: Path) -> str:
    """The command that continues the study from any folder: its experiment folder and its
    export folder absolute, as they were."""
    return (
        f"to continue it: nnisuite run --resume {exp_id} "
        f"--experiment-dir {quoted(exp_dir.resolve())} --out {quoted(out.resolve())}"
    )


def local_trials(config) -> bool:
    """Whether the trials run on this machine: a warm launcher (and a rewritten trialCommand)
    is of use only then; a remote host runs the command as written."""
    services = config.training_service
    services = services if isinstance(services, list) else [services]
    return all(getattr(service, "platform", "local") == "local" for service in services)


def refused(out: Path, exp_dir: Path, args, config) -> bool:
    """Whether the study cannot start where and how it was asked (said in one line): before the
    runner prints or starts anything."""
    problem = (
        check_writable(out, "--out")
        or check_writable(exp_dir, "--experiment-dir")
        or check_host(args.host, config)
        or port_problem(args.port)
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return bool(problem)


def new_study(args) -> Study | int:
    from nni.experiment import Experiment

    try:
        raw = load_yaml(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    trial = Trial.of(raw, args.config)
    try:
        raw = apply_overrides(
            raw,
            experiment_dir=args.experiment_dir,
            own_trial=trial.own,
            name=None if get_key(raw, "experimentName")[1] else Path(args.config).stem,
            **{k: getattr(args, k) for k in OVERRIDES},
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if report(validate(args.config, raw), sys.stderr):
        return EXIT_USAGE
    trial = Trial.of(raw, args.config)  # its source, and so its preload, stay when rewritten
    if report(check_machines(raw, args.config, needed(trial)), sys.stderr):
        return EXIT_USAGE  # a remote worker that cannot run trials: said per host
    config = to_nni_config(raw, args.config)
    command, args.warm, said = (
        through_launcher(trial, args.launcher) if local_trials(config) else (None, False, None)
    )
    if command:
        raw = set_key(raw, "trialCommand", command)
        config = to_nni_config(raw, args.config)
    if said:
        print(said, flush=True)
    exp = Experiment(config)
    exp_dir = Path(config.canonical_copy().experiment_working_directory)
    out = Path(args.out or default_out(config.experiment_name, exp.id))
    if refused(out, exp_dir, args, config):
        return EXIT_USAGE
    study = Study(exp, args.port, out, config.max_trial_number, resume_hint(exp.id, exp_dir, out))
    study.preload, study.host = trial.preload(), args.host
    study.title = f"experiment {exp.id}: {config.experiment_name}"
    return study


def resumed_study(args, stack: contextlib.ExitStack) -> Study | int:
    """The study to resume, held for this process on `stack` (study/claim.py) before
    anything is touched: a second runner resuming it is refused."""
    from nnisuite.study.resume import (
        AlreadyFinished,
        ResumeError,
        experiment_folder,
        prepare_resume,
    )

    try:
        stack.enter_context(claim(experiment_folder(args.resume, args.experiment_dir), args.resume))
    except ResumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Held as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = port_problem(args.port)  # before the resume writes anything into the database
    if args.out and not problem:
        problem = check_writable(Path(args.out), "--out")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        exp = prepare_resume(args.resume, args.experiment_dir)
    except AlreadyFinished as exc:
        print(f"{exc}; exporting it again", flush=True)
        return export_finished(args)
    except ResumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = exp.config
    exp_dir = Path(config.canonical_copy().experiment_working_directory)
    out = Path(args.out or default_out(config.experiment_name, exp.id))
    if refused(out, exp_dir, args, config):
        return EXIT_USAGE
    trial = Trial.parse(config.trial_command, Path(config.canonical_copy().trial_code_directory))
    args.warm = (
        args.launcher is not False and trial.command.through_launcher and local_trials(config)
    )
    study = Study(exp, args.port, out, config.max_trial_number, resume_hint(exp.id, exp_dir, out))
    study.preload, study.host, study.claimed = trial.preload(), args.host, True
    study.title = f"resuming experiment {exp.id}: {config.experiment_name}"
    return study


def export_finished(args) -> int:
    """--resume of a study that ran all its trials: export it again, start nothing."""
    from nnisuite.analysis.export import export_experiment
    from nnisuite.analysis.store import ExportError, load_experiment
    from nnisuite.study.resume import experiment_folder

    root = experiment_folder(args.resume, args.experiment_dir)
    try:
        name = load_experiment(args.resume, root, live=False).config.get("experimentName")
        out = Path(args.out or default_out(name, args.resume))
        result = export_experiment(args.resume, out, root, live=False, **export_flags(args))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(result.summary)
    print(files_line(out, args.plots))
    return EXIT_DONE


def run(args) -> int:
    with contextlib.ExitStack() as held:
        study = resumed_study(args, held) if args.resume else new_study(args)
        if isinstance(study, int):
            return study
        stall_s = args.stall_minutes * 60 if args.stall_minutes is not None else None
        exported = functools.partial(export, **export_flags(args))
        return run_study(study, export=exported, launcher=args.warm, stall_s=stall_s)


def port(text: str) -> int:
    """An argparse type: a TCP port."""
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"not a port (1..65535): {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.study.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config",
        nargs="?",
        type=find_study,
        help="experiment YAML, or the name of a shipped study (`--list`: mlp_tpe_digits, ...)",
    )
    p.add_argument("--list", action="store_true", help="name the shipped studies and exit")
    p.add_argument("--resume", metavar="ID", help="resume the stopped or crashed experiment ID")
    p.add_argument("--port", type=port, help="web UI / REST port (default 8080, else a free one)")
    p.add_argument("--experiment-dir", help="NNI experiment folder (default ~/nni-experiments)")
    p.add_argument("--max-trials", type=positive_int, help="override maxTrialNumber")
    p.add_argument(
        "--concurrency", type=positive_int, help="override trialConcurrency (and --threads)"
    )
    p.add_argument("--dataset", help="override the trial's --dataset")
    p.add_argument("--epochs", type=positive_int, help="override the trial's --epochs")
    p.add_argument("--out", type=folder_flag, help="export folder (default runs/<name>-<id>)")
    p.add_argument(
        "--stall-minutes",
        type=float,
        help="stop when no trial changes state and no metric arrives for this long "
        "(default: 5, or 3x the longest finished trial)",
    )
    p.add_argument(
        "--no-plots",
        dest="plots",
        action="store_false",
        help="export tables and the summary without plots (about 2-3 s of CPU less per study)",
    )
    p.add_argument(
        "--no-optuna",
        dest="optuna",
        action="store_false",
        help="export without Optuna's fANOVA / PED-ANOVA importance (the forest's stays)",
    )
    p.add_argument(
        "--no-importance",
        dest="forest",
        action="store_false",
        help="export without the random-forest importance (scikit-learn's import and a "
        "200-tree fit: 1-2 s of CPU per study)",
    )
    add_host_flag(p)
    add_launcher_flag(p, scripts=True)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(listing())
        return 0
    if args.resume and args.config:
        parser.error("give either an experiment file or --resume ID, not both")
    if args.resume and any(getattr(args, k) is not None for k in OVERRIDES):
        parser.error("--resume continues the experiment as it was configured: no overrides")
    if not args.resume and not args.config:
        parser.error("an experiment file (or --resume ID) is required")
    if args.stall_minutes is not None and not args.stall_minutes > 0:
        parser.error(f"--stall-minutes must be > 0, got {args.stall_minutes}")
    try:
        return run(args)
    except KeyboardInterrupt:  # one that no phase handled (cleanup after the study): one line
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
