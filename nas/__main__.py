"""Run the 3.18 NAS study: `python -m nnisuite.nas --config experiments/nas_depth.yaml [overrides]`.

    python -m nnisuite.nas --config experiments/nas_depth.yaml                      # grid over 1..6
    python -m nnisuite.nas --config experiments/nas_depth.yaml --dataset fashion-mnist --repeats 3

    python -m nnisuite.nas --config experiments/nas_attention.yaml --dataset digits  # MHA/GQA/MQA
    python -m nnisuite.nas --config experiments/nas_depth.yaml --strategy darts      # one-shot

Every setting of the YAML (config/nas_settings.py) has a flag here: --space {depth,attention}
--dataset --data-dir --epochs --strategy --seed --max-trials --concurrency --repeats
--trial-seeds --min-depth --max-depth --extended --lr --batch-size --optimizer --momentum;
and --port, --experiment-dir, --out, --stall-minutes, --no-launcher for the session. Multi-trial
strategies (grid, random, evolution, tpe: NNI's TPE strategy set to maximize) run trials
through NNI's manager; one-shot ones (random-oneshot, darts, gumbel-darts, enas: nas/oneshot.py)
train one supernet of the depth space here, and --compare TRIALS_CSV ranks its depths against
a multi-trial study. Bad settings are reported before any
trial starts (exit 2); a watchdog fault exits 3, Ctrl-C 130. At the end --out holds
summary.md, trials.csv, nas_table.md (mean +- std over seeds), settings.json and the plots.

--resume is refused: NNI 3.0 cannot resume a NAS study. Its manager sends the finished
results to the strategy as IMPORT_DATA, which the NAS command channel does not know
(nni/runtime/tuner_command_channel/channel.py raises "Unknown command type"), and the
strategy's checkpoint is read with torch.load, which since PyTorch 2.6 refuses its numpy arrays
(nni/nas/utils/serializer.py). Run the study again; a stopped run's trials stay exported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnisuite.config.experiment import ConfigError, load_yaml
from nnisuite.config.nas_settings import (
    DEFAULTS,
    NO_RESUME,
    ONE_SHOT,
    SPACES,
    STRATEGIES,
    SettingsError,
    check,
    settings_from,
)
from nnisuite.flags import Parser
from nnisuite.launcher.warm import add_launcher_flag
from nnisuite.nni_patches.binding import add_host_flag
from nnisuite.outputs import folder_flag
from nnisuite.shipped import find_study


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.nas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = DEFAULTS
    p.add_argument(
        "--config",
        type=find_study,
        help="NAS settings YAML (experiments/nas_depth.yaml), or a shipped one's name (nas_depth)",
    )
    p.add_argument("--space", help=f"one of {', '.join(SPACES)} (default depth)")
    p.add_argument("--dataset", help=f"digits, mnist or fashion-mnist (default {d['dataset']})")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the MNIST-family IDX files")
    p.add_argument("--epochs", type=int, help=f"epochs per architecture (default {d['epochs']})")
    p.add_argument(
        "--strategy",
        help=f"multi-trial: {', '.join(STRATEGIES)} (default grid); one-shot (the depth space, "
        f"one supernet in this process): {', '.join(ONE_SHOT)}",
    )
    p.add_argument("--seed", type=int, help="seed of the random / evolution strategy (default 0)")
    p.add_argument("--max-trials", dest="max_trials", type=int, help="default: the whole grid")
    p.add_argument("--concurrency", type=int, help=f"trials at once (default {d['concurrency']})")
    p.add_argument("--repeats", type=int, help="trainings (seeds) per architecture (default 1)")
    p.add_argument(
        "--trial-seeds",
        dest="trial_seeds",
        type=int,
        help="trainings inside each trial, reported as mean +- std (default 1)",
    )
    p.add_argument("--min-depth", dest="min_depth", type=int, help="fewest hidden layers (1)")
    p.add_argument("--max-depth", dest="max_depth", type=int, help="most hidden layers (6)")
    p.add_argument(
        "--extended",
        action="store_true",
        default=None,
        help="also choose each layer's width and activation (random / evolution only)",
    )
    p.add_argument("--lr", type=float, help=f"learning rate (default {d['lr']})")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="default 64")
    p.add_argument("--optimizer", help="sgd or adam (default sgd)")
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0)")
    p.add_argument("--port", type=int, help="web UI / REST port (default 8080, else a free one)")
    p.add_argument("--experiment-dir", help="NNI experiment folder (default ~/nni-experiments)")
    add_host_flag(p)
    p.add_argument("--out", type=folder_flag, help="output folder (default runs/nas-<id>)")
    p.add_argument(
        "--stall-minutes",
        type=float,
        help="stop when nothing happens this long (default 5, or 3x the longest trial)",
    )
    p.add_argument("--resume", metavar="ID", help="refused: NNI 3.0 cannot resume NAS (see above)")
    p.add_argument(
        "--compare",
        metavar="TRIALS_CSV",
        help="one-shot: rank depths against this multi-trial study's trials.csv (Kendall tau)",
    )
    add_launcher_flag(p)
    return p


def blame(args, raw, exc) -> str:
    """Where a bad setting came from: the file (it fails alone), else the flags."""
    if not isinstance(exc, SettingsError) or not args.config:
        return ""
    try:
        check(settings_from(raw, {}))
    except SettingsError:
        return f"{args.config}: "
    flags = [f"--{k.replace('_', '-')}" for k in DEFAULTS if getattr(args, k, None) is not None]
    return f"{' '.join(flags)} (over {args.config}): "


def session_problem(args, settings) -> str | None:
    """The session's flags, checked before any training or NNI start."""
    from nnisuite.outputs import check_writable

    if args.compare is not None:
        if settings["strategy"] not in ONE_SHOT:
            return (
                f"--compare ranks a one-shot search against a multi-trial one; strategy "
                f"{settings['strategy']!r} is multi-trial (use {', '.join(ONE_SHOT)})"
            )
        from nnisuite.nas.oneshot import CompareError, multi_trial_means

        try:
            multi_trial_means(args.compare)
        except CompareError as exc:
            return str(exc)
    if settings["strategy"] in ONE_SHOT:
        # one supernet trained in this process: no NNI manager, no trials, nothing to port
        unused = [
            flag
            for flag, value in (
                ("--port", args.port), ("--host", args.host), ("--concurrency", args.concurrency),
                ("--stall-minutes", args.stall_minutes), ("--max-trials", args.max_trials),
                ("--trial-seeds", args.trial_seeds),
                ("--no-launcher", args.no_launcher or None),
            )
            if value is not None
        ]  # fmt: skip
        if unused:
            return (
                f"{', '.join(unused)}: a one-shot search ({settings['strategy']}) trains one "
                "supernet in this process, with no NNI manager or trials: drop them"
            )
    if settings["space"] == "attention" and (args.min_depth or args.max_depth) is not None:
        return "--min-depth / --max-depth bound the depth space; the attention space has its own"
    for path, flag in ((args.out, "--out"), (args.experiment_dir, "--experiment-dir")):
        problem = check_writable(Path(path), flag) if path else None
        if problem:
            return problem
    if args.port is not None and not 0 < args.port < 65536:
        return f"--port {args.port}: not a port (1..65535)"
    from nnisuite.nni_patches.binding import check_host

    problem = check_host(args.host)
    if problem:
        return problem
    if args.stall_minutes is not None and not args.stall_minutes > 0:
        return f"--stall-minutes must be > 0, got {args.stall_minutes}"
    return None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.resume:
        print(f"error: {NO_RESUME}", file=sys.stderr)
        return 2
    overrides = {k: getattr(args, k, None) for k in DEFAULTS}
    raw = None
    try:
        raw = load_yaml(args.config) if args.config else {}
        settings = settings_from(raw, overrides)
        check(settings)
    except (SettingsError, ConfigError) as exc:
        print(
            f"error: {blame(args, raw if 'raw' in locals() else None, exc)}{exc}", file=sys.stderr
        )
        return 2
    problem = session_problem(args, settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if settings["strategy"] in ONE_SHOT:
        from nnisuite.nas.oneshot import run as run_oneshot

        return run_oneshot(settings, args.out, args.compare, args.experiment_dir)
    from nnisuite.nas.study import run

    stall_s = args.stall_minutes * 60 if args.stall_minutes is not None else None
    return run(
        settings, args.port, args.experiment_dir, args.out, not args.no_launcher, stall_s, args.host
    )


if __name__ == "__main__":
    sys.exit(main())
