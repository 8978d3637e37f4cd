"""A tabulated benchmark of the log's 3.17 space and a simulated NNI on it.

    python -m nnisuite.benchmarks.tabular build --dataset digits --out benchmarks/tables/digits
    python -m nnisuite.benchmarks.tabular run experiments/tuners_digits.yaml \\
        --table benchmarks/tables/digits --seeds 100 --out runs/sim-tuners-digits

`build` trains every cell of the grid (the space's choices, lr on a log grid, seeds 0..S-1)
with nnisuite's MLP trial through real NNI experiments and writes the table (resumable: run the
same command again; exit 3 while cells are missing; a grid that extends the folder's table,
more seeds or lr values, trains only its new cells). `run` takes nnisuite.study.repeat's plan
files and simulates every (variant, seed) run with NNI's own tuner / assessor / advisor classes
against the table (benchmarks/tabular/simulator.py says what is simulated and how), writing what
nnisuite.study.repeat writes. `agree` compares a plan's real runs (nnisuite.study.repeat's folder)
with its simulated ones. `seeds` says how many seeds a study needs to see two variants of a
runs.csv apart (resampling its runs).
Exit codes: 0 done; 2 bad input; 3 a build with cells still missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nnisuite.flags import Parser
from nnisuite.outputs import folder_flag
from nnisuite.shipped import find_study, find_table
from nnisuite.trials.params import positive_int


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.tabular",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train the grid through NNI and write the table")
    b.add_argument("--dataset", required=True, help="digits or fashion-mnist")
    b.add_argument("--out", type=folder_flag, required=True, help="the table's folder")
    b.add_argument(
        "--lr-values", type=positive_int, default=8, help="grid values of lr (default 8)"
    )
    b.add_argument(
        "--seeds", type=positive_int, default=3, help="training seeds 0..N-1 (default 3)"
    )
    b.add_argument("--epochs", type=positive_int, default=10, help="epochs (default 10)")
    b.add_argument("--concurrency", type=positive_int, default=2, help="trials at once (default 2)")
    b.add_argument(
        "--choices",
        type=positive_int,
        help="keep the first N values of each choice parameter (a reduced grid, for tests)",
    )
    b.add_argument("--experiment-dir", help="NNI experiment folder (default ~/nni-experiments)")
    b.add_argument(
        "--retrain",
        metavar="FILE",
        help="a JSON list of cells of the built table (as in its cells.json: each parameter and "
        "the seed) to train again in a new experiment; their new rows replace the old ones "
        "(cells whose seconds were measured while the machine was busy)",
    )
    r = sub.add_parser("run", help="simulate a study of studies on a table")
    r.add_argument(
        "plan",
        type=find_study,
        help="a `nnisuite repeat` plan file (experiments/tuners_*.yaml), or a shipped one's name",
    )
    r.add_argument(
        "--table",
        required=True,
        type=find_table,
        help="a built table's folder, or a shipped table's name (digits, fashion-mnist)",
    )
    r.add_argument("--seeds", type=positive_int, default=100, help="seeds per variant (100)")
    r.add_argument(
        "--out", type=folder_flag, required=True, help="folder for runs.csv, comparison.md, ..."
    )
    r.add_argument("--variants", help="comma-separated subset of the plan's variants")
    r.add_argument(
        "--max-trials", type=positive_int, help="trials per run (default: the plan's `trials`)"
    )
    r.add_argument(
        "--workers", type=positive_int, default=2, help="processes simulating runs (default 2)"
    )
    r.add_argument(
        "--max-seconds",
        type=float,
        help="a time budget: every run stops at this simulated second, the trials still "
        "running cut (variants compared at equal wall-clock; set trials high enough)",
    )
    r.add_argument(
        "--epochs",
        type=positive_int,
        help="every trial's epochs instead of the plan's, as nnisuite.study.repeat --epochs (at "
        "most the table's)",
    )
    r.add_argument(
        "--dataset",
        help="the trials' --dataset instead of the plan's, as nnisuite.study.repeat --dataset "
        "(it must be the table's)",
    )
    r.add_argument("--no-plots", dest="plots", action="store_false", help="no band plots")
    r.add_argument(
        "--trial-seed",
        choices=["draw", "study"],
        default="draw",
        help="each trial's training seed: drawn per trial from the table's (default), or the "
        "run's own seed as nnisuite.study.repeat's trials (seeds must be in the table)",
    )
    a = sub.add_parser("agree", help="the simulator against real runs of the same plan")
    a.add_argument("--real", required=True, help="an nnisuite.study.repeat --out folder")
    a.add_argument(
        "--simulated", required=True, help="a nnisuite.benchmarks.tabular run --out folder"
    )
    a.add_argument(
        "--out", type=folder_flag, required=True, help="folder for agreement.md / .csv and the plot"
    )
    a.add_argument(
        "--same-seeds",
        default="",
        help="seeds whose parameter sequences are compared trial by trial (e.g. 0,1,2)",
    )
    s = sub.add_parser("seeds", help="how many seeds a study needs to see two variants apart")
    s.add_argument("runs", help="a folder with runs.csv (nnisuite.study.repeat's or run's --out)")
    s.add_argument("--variants", required=True, help="the two variants, as tpe,random")
    s.add_argument(
        "--out", type=folder_flag, required=True, help="folder for seeds.csv and seeds.md"
    )
    s.add_argument("--metric", default="final_best", help="a runs.csv column (default final_best)")
    s.add_argument(
        "--draws", type=positive_int, default=2000, help="resamplings per size (default 2000)"
    )
    return p


# beyond these a flag is a typo, not a study (and would take this machine for days)
LIMITS = {
    "lr_values": 100,
    "seeds": 10_000,
    "epochs": 1_000,
    "concurrency": 64,
    "workers": 64,
    "max_trials": 10_000,
    "draws": 1_000_000,
}


def problems(args) -> list[str]:
    """What is wrong with the flags, before any work (one line each)."""
    from nnisuite.outputs import check_writable

    found = [
        f"--{name.replace('_', '-')} {getattr(args, name)}: at most {limit}"
        for name, limit in LIMITS.items()
        if getattr(args, name, None) is not None and getattr(args, name) > limit
    ]
    if args.command == "agree" and not all(
        x.strip().isdigit() for x in args.same_seeds.split(",") if x.strip()
    ):
        found.append(f"--same-seeds {args.same_seeds!r}: seeds as 0,1,2")
    seconds = getattr(args, "max_seconds", None)
    if seconds is not None and not (0 < seconds <= 1e7):
        found.append(f"--max-seconds {seconds}: a positive number of simulated seconds")
    if args.command == "seeds" and len([v for v in args.variants.split(",") if v]) != 2:
        found.append(f"--variants {args.variants!r}: two variants, as tpe,random")
    if args.command == "build" and args.seeds > 100:
        found.append(f"--seeds {args.seeds}: a table holds at most 100 training seeds")
    found += [
        p
        for p in (
            check_writable(Path(args.out), "--out"),
            check_writable(Path(args.experiment_dir), "--experiment-dir")
            if getattr(args, "experiment_dir", None)
            else None,
        )
        if p
    ]
    return found


def main(argv=None) -> int:
    from nnisuite.benchmarks.tabular.agree import AgreementError
    from nnisuite.benchmarks.tabular.simulator import SimulationError
    from nnisuite.benchmarks.tabular.table import Build, TableError
    from nnisuite.config.plan import RepeatError

    args = build_parser().parse_args(argv)
    found = problems(args)
    if found:
        print(f"error: {found[0]}", file=sys.stderr)
        return 2
    try:
        if args.command == "build":
            from nnisuite.benchmarks.tabular.build import build

            if args.dataset not in ("digits", "fashion-mnist"):
                raise TableError(f"--dataset {args.dataset!r}: digits or fashion-mnist")
            retrain = None
            if args.retrain:
                try:
                    retrain = json.loads(Path(args.retrain).read_text())
                except (OSError, ValueError) as exc:
                    raise TableError(f"--retrain {args.retrain}: not a JSON list ({exc})") from None
            return build(
                Build(
                    dataset=args.dataset,
                    out=Path(args.out),
                    lr_values=args.lr_values,
                    seeds=args.seeds,
                    epochs=args.epochs,
                    concurrency=args.concurrency,
                    choices=args.choices,
                    experiment_dir=args.experiment_dir,
                    retrain=retrain,
                )
            )
        if args.command == "agree":
            from nnisuite.benchmarks.tabular.agree import agree

            seeds = [int(x) for x in args.same_seeds.split(",") if x.strip()]
            print(agree(Path(args.real), Path(args.simulated), Path(args.out), seeds))
            return 0
        if args.command == "seeds":
            from nnisuite.benchmarks.tabular.study import seeds_to_see

            variants = [v for v in args.variants.split(",") if v]
            print(seeds_to_see(Path(args.runs), variants, Path(args.out), args.metric, args.draws))
            return 0
        from nnisuite.benchmarks.tabular.study import simulate

        variants = [v for v in (args.variants or "").split(",") if v] or None
        print(
            simulate(
                args.plan,
                args.table,
                args.seeds,
                args.out,
                variants,
                args.workers,
                args.plots,
                trial_seed=args.trial_seed,
                max_trials=args.max_trials,
                max_seconds=args.max_seconds,
                dataset=args.dataset,
                epochs=args.epochs,
            )
        )
        return 0
    except (TableError, SimulationError, RepeatError, AgreementError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
