"""Export an NNI experiment (running or stopped) to CSV / markdown tables, plots, importance.

    python -m analysis.export EXPERIMENT --out DIR [--experiment-dir DIR]

EXPERIMENT: an experiment id (under ~/nni-experiments or --experiment-dir), a path to an
`nni.sqlite`, or a running manager's URL (http://127.0.0.1:8080). Writes into DIR:
trials.csv, intermediate.csv, summary.md, importance.csv (when computable) and the plots of
analysis.plots. Expected errors print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from analysis.importance import importance, importance_markdown
from analysis.plots import plot_experiment
from analysis.store import Experiment, ExportError, load_experiment
from analysis.tables import (
    intermediate_table,
    metric_label,
    parameter_names,
    summary_markdown,
    trials_table,
)


@dataclass
class ExportResult:
    experiment: Experiment
    trials: object  # pandas DataFrame
    summary: str
    files: list[Path]


def export(exp: Experiment, out: str | Path) -> ExportResult:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trials = trials_table(exp)
    steps = intermediate_table(exp)
    params = parameter_names(exp)
    files = [out / "trials.csv", out / "intermediate.csv", out / "summary.md"]
    trials.to_csv(files[0], index=False)
    steps.to_csv(files[1], index=False)
    n_finished = int(trials["default"].notna().sum()) if not trials.empty else 0
    table = importance(trials, params) if n_finished else None
    if table is not None:
        table.to_csv(out / "importance.csv", index=False)
        files.append(out / "importance.csv")
    summary = summary_markdown(exp, trials, importance_markdown(table, n_finished))
    files[2].write_text(summary)
    if not trials.empty:
        files += plot_experiment(trials, steps, params, out, metric_label(trials))
    return ExportResult(exp, trials, summary, files)


def export_experiment(
    experiment: str, out: str | Path, experiment_dir=None, live: bool | None = None
) -> ExportResult:
    """`live`: whether the experiment's manager still runs (None: NNI's manifest says)."""
    return export(load_experiment(experiment, experiment_dir, live), out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="experiment id, path to nni.sqlite, or manager URL")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--experiment-dir", help="NNI experiment folder (~/nni-experiments)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = export_experiment(args.experiment, args.out, args.experiment_dir)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary)
    if result.trials["default"].notna().sum() == 0:
        print("No finished trial yet: the tables are empty.")
    print(f"wrote {len(result.files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
