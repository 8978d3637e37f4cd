"""Experiments on the same space compared: side by side, or as groups of repeated runs with
statistics (e.g. TPE against Random over 10 seeds each).

    python -m nnisuite.analysis.compare EXP [EXP ...] --out DIR [--experiment-dir DIR]
    python -m nnisuite.analysis.compare --group tpe=ID1,ID2,ID3 --group random=ID4,ID5,ID6 --out DIR

Side by side: DIR/best_so_far.png (one curve per experiment) and DIR/compare.md (best
validation accuracy, its test accuracy, trials to get within 0.5 points of that experiment's
best, wall time). Groups (the runs of one variant, in seed order): runs.csv, comparison.csv,
pairwise.csv, comparison.md and best_so_far_mean.png / best_so_far_time.png (mean +- standard
error bands over the runs, against trials and against wall seconds); the method is written in
comparison.md (nnisuite.analysis.statistics.METHOD). Where every run's trials report costs
(nnisuite.models.costs), each run's hypervolume of accuracy against each cost (one reference point
for all runs: nnisuite.analysis.pareto) is a runs.csv column `hypervolume_<cost>`, and the variants
are compared on it with the same statistics (comparison.md, pairwise_hypervolume.csv).
`python -m nnisuite.study.repeat` writes the same files for the studies it runs. The table is
printed.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nnisuite.analysis import statistics as S  # noqa: E402
from nnisuite.analysis.atomic import EXIT_WRITE, WriteError, staged  # noqa: E402
from nnisuite.analysis.direction import (  # noqa: E402
    MAXIMIZE,
    MINIMIZE,
    direction,
    scored,
    usable,
    word,
)
from nnisuite.analysis.export import make_folder  # noqa: E402
from nnisuite.analysis.plots import best_so_far, plot_run_fronts, save  # noqa: E402
from nnisuite.analysis.store import ExportError, load_experiment  # noqa: E402
from nnisuite.analysis.tables import (  # noqa: E402
    algorithm,
    markdown_table,
    metric_label,
    ranked,
    trials_table,
)
from nnisuite.flags import Parser
from nnisuite.models.costs import present  # noqa: E402
from nnisuite.outputs import folder_flag, save_csv, write_text

WITHIN = 0.005  # 0.5 points of accuracy


def wall_time_s(exp, trials) -> float | None:
    starts = [t.start_time for t in exp.trials if t.start_time]
    ends = [t.end_time for t in exp.trials if t.end_time]
    if starts and ends:
        return round(max(ends) - min(starts), 1)
    return None


def number(value) -> float | None:
    """A reported value as a float; None when it is not a finite number (a user's key may
    hold text)."""
    return float(value) if usable(value) else None


def comparison_row(exp) -> dict:
    mode = direction(exp.config)
    trials = trials_table(exp)
    done = trials[scored(trials)]
    row = {
        "experiment": exp.id,
        "name": exp.config.get("experimentName"),
        "algorithm": algorithm(exp.config),
        "assessor": (exp.config.get("assessor") or {}).get("name", "none"),
        "optimize_mode": mode,
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
    best = ranked(done, mode).iloc[0]
    curve = best_so_far(trials, mode).to_numpy()
    reach = S.trials_to_within(curve, float(best["default"]), WITHIN, mode)
    test = best.get("test_accuracy") if "test_accuracy" in best else None
    return row | {
        "best_default": float(best["default"]),
        "test_accuracy": number(test),
        "trials_to_within_0.5pt": reach,
        "wall_time_s": wall_time_s(exp, trials),
    }


def compare(
    experiments: list[str], out: str | Path, experiment_dir=None, plots: bool = True
) -> str:
    import pandas as pd

    out = make_folder(out)
    exps = [load_experiment(e, experiment_dir) for e in experiments]
    one_mode(exps)
    table = pd.DataFrame([comparison_row(e) for e in exps])
    label = metric_label(trials_table(exps[0]), exps[0].config) if exps else "default metric"
    if plots:
        plot_best_so_far(exps, out, label)
        edf({f"{e.id} ({algorithm(e.config)})": [e] for e in exps}, out)
    shown = table.rename(columns={"best_default": f"best {label}"})
    text = "# Comparison\n\n" + markdown_table(shown) + "\n"
    write_text(out / "compare.md", text)
    return text


def one_mode(exps) -> str:
    """The optimize mode all `exps` share; ExportError when they differ (which is better?)."""
    modes = {direction(e.config) for e in exps}
    if len(modes) > 1:
        raise ExportError(
            "the experiments optimize in different directions (maximize and minimize): "
            "compare experiments of one direction"
        )
    return modes.pop() if modes else MAXIMIZE


def edf(groups: dict, out: Path) -> None:
    """optuna_edf.png: the compared experiments' EDFs on one plot (when Optuna is installed)."""
    try:
        from nnisuite.analysis import optuna as bridge
    except ImportError:
        return
    try:
        bridge.edf_plot(groups, out / "optuna_edf.png")
    except bridge.BridgeError as exc:
        print(f"note: no EDF plot: {exc}", file=sys.stderr)


def plot_best_so_far(exps, out: Path, label: str) -> Path:
    """best_so_far.png, one curve per experiment."""
    fig, ax = plt.subplots(figsize=(7, 4))
    mode = one_mode(exps) if exps else MAXIMIZE
    for exp in exps:
        curve = best_so_far(trials_table(exp), mode)
        name = f"{exp.id} ({exp.config.get('experimentName') or algorithm(exp.config)})"
        ax.step(range(1, len(curve) + 1), curve, where="post", marker="o", label=name)
    ax.set(
        xlabel="finished trials",
        ylabel=f"best {label} so far",
        title=f"Best so far, side by side ({word(mode)})",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out / "best_so_far.png")


# ---------------------------------------------------------------- repeated runs


@dataclass
class Run:
    """One run of a variant: its finished trials in trial order."""

    variant: str
    seed: int
    experiment_id: str
    finals: list[float] = field(default_factory=list)  # final validation accuracy
    tests: list = field(default_factory=list)  # test accuracy of the same trials (or None)
    end_s: list[float] = field(default_factory=list)  # trial end, s after the run's start
    wall_s: float | None = None
    trials: int = 0  # trials the run submitted
    mode: str = MAXIMIZE  # the experiment's optimize mode
    costs: dict = field(default_factory=dict)  # cost key -> (default, cost) per SUCCEEDED trial

    @classmethod
    def of(cls, exp, variant: str, seed: int, wall_s: float | None = None) -> Run:
        starts = [t.start_time for t in exp.trials if t.start_time]
        t0 = min(starts) if starts else 0.0
        done = sorted(
            (t for t in exp.trials if usable(t.final.get("default"))),
            key=lambda t: (t.sequence if t.sequence is not None else 0, t.end_time or 0),
        )
        ends = [t.end_time for t in exp.trials if t.end_time]
        succeeded = [t for t in done if t.status == "SUCCEEDED"]
        return cls(
            variant,
            seed,
            exp.id,
            [float(t.final["default"]) for t in done],
            [number(t.final.get("test_accuracy")) for t in done],
            [float((t.end_time or t0) - t0) for t in done],
            wall_s if wall_s is not None else (max(ends) - t0 if ends else None),
            len(exp.trials),
            direction(exp.config),
            {
                k: [(float(t.final["default"]), float(t.final[k])) for t in succeeded]
                for k in present(t.final for t in succeeded)
            },
        )

    def to_json(self) -> dict:
        return self.__dict__.copy()


def has_result(run: Run) -> bool:
    """Whether any trial of the run reported a usable final result."""
    return bool(run.finals)


def runs_mode(runs: list[Run]) -> str:
    modes = {r.mode for r in runs}
    if len(modes) > 1:
        raise ExportError("the runs optimize in different directions: compare one direction")
    return modes.pop() if modes else MAXIMIZE


def run_rows(runs: list[Run], budget: int) -> list[dict]:
    """runs.csv: one row per run."""
    mode = runs_mode(runs)
    pick = min if mode == MINIMIZE else max
    target = pick((pick(r.finals) for r in runs if r.finals), default=math.nan)
    rows = []
    for r in runs:
        curve = S.best_so_far(r.finals, mode)
        best = int(pick(range(len(r.finals)), key=r.finals.__getitem__)) if r.finals else None
        rows.append(
            {
                "variant": r.variant,
                "seed": r.seed,
                "experiment_id": r.experiment_id,
                "final_best": float(curve[-1]) if len(curve) else math.nan,
                "final_best_test": r.tests[best] if best is not None else math.nan,
                "auc": S.auc(curve, budget) if len(curve) else math.nan,
                "trials_to_within": (
                    S.trials_to_within(curve, target, S.WITHIN, mode) if len(curve) else None
                ),
                "wall_s": r.wall_s,
                "trials": r.trials,
                "finished": len(r.finals),
                "optimize_mode": mode,
            }
        )
    return rows


# two-sided Mann-Whitney U between two groups of n: the smallest p is 2 / C(2n, n), 0.1 at n = 3
# and 0.029 at n = 4, so below 4 runs a variant "no significant difference" says nothing
MIN_RUNS_FOR_A_TEST = 4

COMPARISON_COLUMNS = [
    "variant",
    "runs",
    "final_best_mean",
    "final_best_se",
    "final_best_test_mean",
    "final_best_test_se",
    "auc_mean",
    "auc_se",
    "mean_rank",
    "trials_to_within_mean",
    "runs_within",
    "wall_s_mean",
    "wall_s_se",
]


def comparison_rows(rows: list[dict]) -> list[dict]:
    """comparison.csv: one row per variant, best mean rank first."""
    import pandas as pd

    runs = pd.DataFrame(rows)
    mode = runs["optimize_mode"].iloc[0] if "optimize_mode" in runs and len(runs) else MAXIMIZE
    variants = list(dict.fromkeys(runs["variant"]))
    by_variant = {
        v: runs[runs["variant"] == v].sort_values("seed")["final_best"].tolist() for v in variants
    }
    ranks = S.mean_ranks(by_variant, mode)
    out = []
    for v in variants:
        group = runs[runs["variant"] == v]
        best, best_se = S.mean_se(group["final_best"])
        test, test_se = S.mean_se(group["final_best_test"].astype(float))
        area, area_se = S.mean_se(group["auc"])
        wall, wall_se = S.mean_se(group["wall_s"].astype(float))
        reached = group["trials_to_within"].dropna()
        out.append(
            {
                "variant": v,
                "runs": len(group),
                "final_best_mean": best,
                "final_best_se": best_se,
                "final_best_test_mean": test,
                "final_best_test_se": test_se,
                "auc_mean": area,
                "auc_se": area_se,
                "mean_rank": ranks[v],
                "trials_to_within_mean": float(reached.mean()) if len(reached) else math.nan,
                "runs_within": f"{len(reached)}/{len(group)}",
                "wall_s_mean": wall,
                "wall_s_se": wall_se,
            }
        )
    return sorted(out, key=lambda r: r["mean_rank"])


def pm(mean: float, se: float, digits: int = 4) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + ("" if math.isnan(se) else f" +- {se:.{digits}f}")


def comparison_markdown(
    title: str,
    comparison: list[dict],
    pairs: list[dict],
    mode: str = MAXIMIZE,
    left_out: list[str] = (),
) -> str:
    lines = [
        f"# {title}",
        "",
        f"Optimize mode: {mode} ({word(mode)}).",
        "",
        "| variant | runs | final best (val) | its test acc | AUC of best-so-far | mean rank "
        "| trials to within 0.5 pt | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in comparison:
        reach = (
            f"{r['trials_to_within_mean']:.1f} ({r['runs_within']} runs)"
            if not math.isnan(r["trials_to_within_mean"])
            else f"- (0/{r['runs']} runs)"
        )
        lines.append(
            f"| {r['variant']} | {r['runs']} | {pm(r['final_best_mean'], r['final_best_se'])} "
            f"| {pm(r['final_best_test_mean'], r['final_best_test_se'])} "
            f"| {pm(r['auc_mean'], r['auc_se'])} | {r['mean_rank']:.2f} | {reach} "
            f"| {pm(r['wall_s_mean'], r['wall_s_se'], 1)} |"
        )
    names = [r["variant"] for r in comparison]
    lookup = {}
    for p in pairs:
        lookup[(p["variant_a"], p["variant_b"])] = lookup[(p["variant_b"], p["variant_a"])] = p
    lines += ["", "Holm-corrected p of two-sided Mann-Whitney U on final best:", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in names:
        cells = [
            "" if a == b else (f"{lookup[(a, b)]['p_holm']:.3f}" if (a, b) in lookup else "-")
            for b in names
        ]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    significant = [p for p in pairs if p["p_holm"] < 0.05]
    lines += [""]
    if left_out:
        lines.append(
            f"- Left out, no trial reported a final result: {', '.join(left_out)} "
            "(their trials.csv and trial logs say why)."
        )
    fewest = min((r["runs"] for r in comparison), default=0)
    if len(comparison) < 2:
        lines.append(
            f"- No comparison: {len(comparison)} variant(s) have a run with a result; "
            "at least two are needed."
        )
    elif fewest < MIN_RUNS_FOR_A_TEST and not significant:
        lines.append(
            f"- No conclusion: a variant has {fewest} run(s) with a result, and with fewer than "
            f"{MIN_RUNS_FOR_A_TEST} a variant no difference can reach p < 0.05 (two-sided "
            "Mann-Whitney U): run more seeds before calling variants the same."
        )
    elif significant:
        for p in significant:
            a = next(r for r in comparison if r["variant"] == p["variant_a"])
            b = next(r for r in comparison if r["variant"] == p["variant_b"])
            a_better = a["final_best_mean"] > b["final_best_mean"]
            better = a if a_better == (mode != MINIMIZE) else b
            worse = b if better is a else a
            lines.append(
                f"- {better['variant']} beats {worse['variant']} on final best "
                f"(p_holm = {p['p_holm']:.3f})."
            )
    else:
        lines.append(
            "- No difference in final best is significant (every Holm-corrected p >= 0.05): "
            "within the seed noise, these variants are the same."
        )
    lines += ["", "Method: " + S.METHOD, ""]
    return "\n".join(lines)


def time_grid_curves(runs: list[Run], points: int = 200, mode: str = MAXIMIZE):
    """Best-so-far against wall seconds: a shared grid, one row per run (nan before its first
    finished trial)."""
    import numpy as np

    horizon = max((max(r.end_s) for r in runs if r.end_s), default=1.0)
    grid = np.linspace(0, horizon, points)
    rows = []
    for r in runs:
        order = np.argsort(r.end_s)
        ends = np.asarray(r.end_s)[order]
        best = S.best_so_far(np.asarray(r.finals)[order], mode)
        idx = np.searchsorted(ends, grid, side="right") - 1
        rows.append(
            np.where(idx >= 0, best[np.clip(idx, 0, None)] if len(best) else np.nan, np.nan)
        )
    return grid, np.vstack(rows) if rows else np.empty((0, points))


def plot_bands(runs: list[Run], budget: int, out: Path, label: str) -> list[Path]:
    with warnings.catch_warnings():  # nan means of times before a run's first result
        warnings.simplefilter("ignore", RuntimeWarning)
        return _plot_bands(runs, budget, out, label)


def _plot_bands(runs: list[Run], budget: int, out: Path, label: str) -> list[Path]:
    import numpy as np

    variants = list(dict.fromkeys(r.variant for r in runs))
    mode = runs_mode(runs)
    if len(variants) > 10:  # more than the default colour cycle: no two variants alike
        plt.rcParams["axes.prop_cycle"] = plt.cycler(color=plt.get_cmap("tab20").colors)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(1, budget + 1)
    for v in variants:
        curves = np.vstack(
            [S.padded(S.best_so_far(r.finals, mode), budget) for r in runs if r.variant == v]
        )
        mean = np.nanmean(curves, axis=0)
        se = (
            np.nanstd(curves, axis=0, ddof=1) / np.sqrt(len(curves))
            if len(curves) > 1
            else 0 * mean
        )
        (line,) = ax.plot(x, mean, label=f"{v} ({len(curves)} runs)")
        ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2)
    ax.set(
        xlabel="trial",
        ylabel=f"best {label} so far",
        title=f"Best so far: mean +- SE over seeds ({word(mode)})",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    written.append(save(fig, out / "best_so_far_mean.png"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for v in variants:
        grid, curves = time_grid_curves([r for r in runs if r.variant == v], mode=mode)
        mean = np.nanmean(curves, axis=0)
        n = np.sum(~np.isnan(curves), axis=0)
        se = np.nanstd(curves, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
        (line,) = ax.plot(grid, mean, label=v)
        ax.fill_between(grid, mean - se, mean + se, color=line.get_color(), alpha=0.2)
    ax.set(
        xlabel="wall seconds since the run's first trial",
        ylabel=f"best {label} so far",
        title="Best so far against time: mean +- SE over seeds",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    written.append(save(fig, out / "best_so_far_time.png"))
    return written


def aggregate(
    runs: list[Run],
    budget: int,
    out: str | Path,
    title: str = "Comparison",
    plots: bool = True,
    label: str = "validation accuracy",
) -> str:
    """runs.csv, comparison.csv, pairwise.csv, comparison.md (+ the band plots); returns the
    markdown."""
    out = make_folder(out)
    with staged(out) as stage:  # whole or not at all: a full disk leaves `out` as it was
        return write_aggregate(runs, budget, stage, title, plots, label)


def write_aggregate(runs, budget, out: Path, title, plots, label) -> str:
    """aggregate() into the staging folder `out`."""
    import pandas as pd

    rows = run_rows(runs, budget)
    save_csv(pd.DataFrame(rows), out / "runs.csv")
    # a run in which no trial reported a usable final has no final best: it is named and left
    # out of the statistics, never compared as if it were a value
    scored = [r for r in rows if usable(r["final_best"])]
    left_out = [f"{r['variant']} seed {r['seed']}" for r in rows if not usable(r["final_best"])]
    comparison = comparison_rows(scored) if scored else []
    save_csv(pd.DataFrame(comparison, columns=COMPARISON_COLUMNS), out / "comparison.csv")
    by_variant = {
        c["variant"]: [r["final_best"] for r in scored if r["variant"] == c["variant"]]
        for c in comparison
    }
    pairs = S.pairwise_mann_whitney(by_variant) if len(by_variant) > 1 else []
    columns = ["variant_a", "variant_b", "u", "p", "p_holm"]
    save_csv(pd.DataFrame(pairs, columns=columns), out / "pairwise.csv")
    mode = runs_mode(runs)
    text = comparison_markdown(title, comparison, pairs, mode, left_out)
    volumes = hypervolumes(runs)
    if volumes:
        text += "\n" + write_hypervolumes(volumes, rows, out)
    write_text(out / "comparison.md", text)
    if plots and runs:
        plot_bands(runs, budget, out, label)
        for _, _, fronts in volumes.values():
            if fronts:
                plot_run_fronts(fronts, label, out)
    return text


def hypervolumes(runs: list[Run]) -> dict:
    """{cost: ({(variant, seed): hypervolume}, Reference, {(variant, seed): Front})} for every
    cost all runs report: one reference for all runs of a cost (nnisuite.analysis.pareto), so that
    their hypervolumes compare."""
    from nnisuite.analysis.pareto import build_front, common_reference

    if not runs or any(not r.costs for r in runs):
        return {}
    keys = [k for k in runs[0].costs if all(k in r.costs for r in runs)]
    maximize = runs_mode(runs) == MAXIMIZE
    found = {}
    for key in keys:
        fronts = [build_front(key, r.costs[key], maximize) for r in runs if r.costs[key]]
        reference = common_reference(fronts)
        if reference is None:
            continue
        fronts = {
            (r.variant, r.seed): build_front(key, r.costs[key], maximize, reference=reference)
            for r in runs
            if r.costs[key]
        }
        by_run = {
            (r.variant, r.seed): fronts[(r.variant, r.seed)].hypervolume
            if (r.variant, r.seed) in fronts
            else 0.0
            for r in runs
        }
        found[key] = (by_run, reference, fronts)
    return found


def write_hypervolumes(volumes: dict, rows: list[dict], out: Path) -> str:
    """runs.csv's hypervolume_<cost> columns (rewritten), pairwise_hypervolume.csv, and the
    markdown: per cost, each variant's hypervolume over its runs (mean +- standard error, mean
    rank) and Holm-corrected Mann-Whitney p between variants, as for final best."""
    import pandas as pd

    from nnisuite.models.costs import label as cost_label
    from nnisuite.models.costs import shown

    for key, (by_run, _, _) in volumes.items():
        for row in rows:
            row[f"hypervolume_{key}"] = by_run[(row["variant"], row["seed"])]
    save_csv(pd.DataFrame(rows), out / "runs.csv")
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    lines, all_pairs = [], []
    for key, (by_run, ref, _) in volumes.items():
        by_variant = {
            v: [by_run[(r["variant"], r["seed"])] for r in rows if r["variant"] == v]
            for v in variants
        }
        ranks = S.mean_ranks(by_variant, MAXIMIZE)
        pairs = S.pairwise_mann_whitney(by_variant)
        all_pairs += [{"cost": key, **p} for p in pairs]
        lines += [
            f"## Hypervolume: accuracy against {cost_label(key)}",
            "",
            f"Reference point for every run: {ref.objective:g} and "
            f"{shown(key, ref.cost):.4g} (1.1 x the largest seen in any run); the share of the "
            "box up to the ideal corner (nnisuite.analysis.pareto).",
            "",
            "| variant | runs | hypervolume | mean rank |",
            "|---|---|---|---|",
        ]
        for v in sorted(variants, key=ranks.get):
            mean, se = S.mean_se(by_variant[v])
            lines.append(f"| {v} | {len(by_variant[v])} | {pm(mean, se)} | {ranks[v]:.2f} |")
        significant = [p for p in pairs if p["p_holm"] < 0.05]
        lines.append("")
        for p in significant:
            a, b = p["variant_a"], p["variant_b"]
            ma, mb = (S.mean_se(by_variant[x])[0] for x in (a, b))
            better, worse = (a, b) if ma > mb else (b, a)
            lines.append(f"- {better} beats {worse} on hypervolume (p_holm = {p['p_holm']:.3f}).")
        if not significant:
            lines.append(
                "- No difference in hypervolume is significant (every Holm-corrected p >= "
                "0.05 of two-sided Mann-Whitney U): within the seed noise, the same."
            )
        lines.append("")
    columns = ["cost", "variant_a", "variant_b", "u", "p", "p_holm"]
    save_csv(pd.DataFrame(all_pairs, columns=columns), out / "pairwise_hypervolume.csv")
    return "\n".join(lines)


def compare_groups(groups: dict[str, list[str]], out, experiment_dir=None, plots=True) -> str:
    runs, loaded = [], {}
    budget = 0
    for variant, ids in groups.items():
        for seed, exp_id in enumerate(ids):
            exp = load_experiment(exp_id, experiment_dir)
            loaded.setdefault(variant, []).append(exp)
            budget = max(budget, int(exp.config.get("maxTrialNumber") or len(exp.trials)))
            runs.append(Run.of(exp, variant, seed))
    first = next(iter(loaded.values()))[0]
    label = metric_label(trials_table(first), first.config)
    text = aggregate(runs, budget, out, plots=plots, label=label)
    if plots:
        edf(loaded, Path(out))
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m nnisuite.analysis.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiments", nargs="*", help="ids, nni.sqlite paths or manager URLs")
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME=EXP,EXP,...",
        help="a variant's repeated runs (in seed order); give two or more groups",
    )
    parser.add_argument(
        "--out", type=folder_flag, required=True, help="folder for compare.md and the plot"
    )
    parser.add_argument("--experiment-dir", help="NNI experiment folder (~/nni-experiments)")
    parser.add_argument("--no-plots", action="store_true", help="compare.md only")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.group:
            groups = {}
            for spec in args.group:
                name, _, ids = spec.partition("=")
                runs = [i.strip() for i in ids.split(",") if i.strip()]
                problem = (
                    "write NAME=EXP,EXP,..."
                    if not name.strip() or not runs
                    else f"a second group named {name!r}: name each group once"
                    if name in groups
                    else f"{sorted({r for r in runs if runs.count(r) > 1})} given twice: a run "
                    "counted twice is not a second run"
                    if len(set(runs)) < len(runs)
                    else None
                )
                if problem:
                    print(f"error: --group {spec!r}: {problem}", file=sys.stderr)
                    return 2
                groups[name] = runs
            if len(groups) < 2:
                print("error: --group: give two or more groups to compare", file=sys.stderr)
                return 2
            print(compare_groups(groups, args.out, args.experiment_dir, not args.no_plots))
        elif args.experiments:
            print(compare(args.experiments, args.out, args.experiment_dir, not args.no_plots))
        else:
            print("error: give experiments, or --group NAME=EXP,... twice or more", file=sys.stderr)
            return 2
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_WRITE
    return 0


if __name__ == "__main__":
    sys.exit(main())
