"""Several experiments on the same space, side by side (e.g. TPE against Random, Medianstop).

    python -m analysis.compare EXP [EXP ...] --out DIR [--experiment-dir DIR]

Writes DIR/best_so_far.png (one curve per experiment) and DIR/compare.md: best `default`, its
`test_accuracy`, trials needed to get within 0.5 points of that experiment's best, total wall
time; and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.plots import best_so_far, save  # noqa: E402
from analysis.store import ExportError, load_experiment  # noqa: E402
from analysis.tables import (  # noqa: E402
    algorithm,
    markdown_table,
    metric_label,
    ranked,
    trials_table,
)

WITHIN = 0.005  # 0.5 points of accuracy


def wall_time_s(exp, trials) -> float | None:
    starts = [t.start_time for t in exp.trials if t.start_time]
    ends = [t.end_time for t in exp.trials if t.end_time]
    if starts and ends:
        return round(max(ends) - min(starts), 1)
    return None


def comparison_row(exp) -> dict:
    import pandas as pd

    trials = trials_table(exp)
    done = trials[trials["default"].notna()]
    row = {
        "experiment": exp.id,
        "name": exp.config.get("experimentName"),
        "algorithm": algorithm(exp.config),
        "assessor": (exp.config.get("assessor") or {}).get("name", "none"),
        "trials": len(trials),
        "finished": len(done),
    }
    counts = trials["status"].value_counts()
    row["early_stopped"] = int(counts.get("EARLY_STOPPED", 0))
    if done.empty:
        return row | {
            "best_default": None,
            "test_accuracy": None,
            "trials_to_within_0.5pt": None,
            "wall_time_s": wall_time_s(exp, trials),
        }
    best = ranked(done).iloc[0]
    curve = best_so_far(trials)
    reach = int((curve >= best["default"] - WITHIN).to_numpy().argmax()) + 1
    test = best.get("test_accuracy") if "test_accuracy" in best else None
    return row | {
        "best_default": float(best["default"]),
        "test_accuracy": float(test) if test is not None and pd.notna(test) else None,
        "trials_to_within_0.5pt": reach,
        "wall_time_s": wall_time_s(exp, trials),
    }


def compare(
    experiments: list[str], out: str | Path, experiment_dir=None, plots: bool = True
) -> str:
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exps = [load_experiment(e, experiment_dir) for e in experiments]
    table = pd.DataFrame([comparison_row(e) for e in exps])
    label = metric_label(trials_table(exps[0]), exps[0].config) if exps else "default metric"
    if plots:
        plot_best_so_far(exps, out, label)
    shown = table.rename(columns={"best_default": f"best {label}"})
    text = "# Comparison\n\n" + markdown_table(shown) + "\n"
    (out / "compare.md").write_text(text)
    return text


def plot_best_so_far(exps, out: Path, label: str) -> Path:
    """best_so_far.png, one curve per experiment."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for exp in exps:
        curve = best_so_far(trials_table(exp))
        name = f"{exp.id} ({exp.config.get('experimentName') or algorithm(exp.config)})"
        ax.step(range(1, len(curve) + 1), curve, where="post", marker="o", label=name)
    ax.set(
        xlabel="finished trials", ylabel=f"best {label} so far", title="Best so far, side by side"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out / "best_so_far.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiments", nargs="+", help="ids, nni.sqlite paths or manager URLs")
    parser.add_argument("--out", required=True, help="folder for compare.md and the plot")
    parser.add_argument("--experiment-dir", help="NNI experiment folder (~/nni-experiments)")
    parser.add_argument("--no-plots", action="store_true", help="compare.md only")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(compare(args.experiments, args.out, args.experiment_dir, not args.no_plots))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
