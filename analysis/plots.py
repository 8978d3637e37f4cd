"""Plots of an exported experiment, rendered headless (PNG), readable and cheap at any size.

default_per_trial.png (the log's params_result.png), best_so_far.png, intermediate.png, and
param_<name>.png for each hyperparameter against `default`.

Up to SMALL trials each trial is drawn (bars, one curve per trial, a legend up to LEGEND
curves). Beyond, points are drawn rasterised (one image layer, not thousands of vector
markers), and intermediate.png draws the BEST_K best trials' curves over the median and the
10th-90th percentile band of all trials per epoch; each plot's title says what it shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from nnisuite.analysis.direction import MAXIMIZE, MINIMIZE, scored, word  # noqa: E402
from nnisuite.outputs import save_figure

SMALL = 100  # trials drawn one by one up to this many
LEGEND = 12  # curves named in a legend up to this many
BEST_K = 5  # best trials drawn as curves in intermediate.png beyond SMALL
BAND = (0.1, 0.9)  # the percentile band of intermediate.png beyond SMALL


def save(fig, path: Path) -> Path:
    # fixed margins: tight_layout measured every label and took half of the plotting time
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.9)
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def best_so_far(trials: pd.DataFrame, mode: str = MAXIMIZE) -> pd.Series:
    """Running best of `default` (maximum; minimum when minimizing) in trial order
    (sequence), finished trials only."""
    done = trials[scored(trials)].sort_values("sequence", kind="stable")
    values = done["default"].astype(float)
    best = values.cummin() if mode == MINIMIZE else values.cummax()
    return best.reset_index(drop=True)


def scatter(ax, x, y, n: int, **kw) -> None:
    ax.scatter(
        x, y, s=12 if n <= SMALL else 4, alpha=1 if n <= SMALL else 0.4, rasterized=n > SMALL, **kw
    )


def plot_final_per_trial(done: pd.DataFrame, label: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    values = done["default"].astype(float)
    if len(done) <= SMALL:
        ax.bar(done["sequence"].astype(str), values, color="tab:blue")
        if len(done) > 30:
            ax.set_xticks(ax.get_xticks()[:: max(1, len(done) // 20)])
        title = "Final metric per trial"
    else:
        scatter(ax, done["sequence"], values, len(done), color="tab:blue")
        title = f"Final metric per trial ({len(done)} trials)"
    ax.set(xlabel="trial (sequence)", ylabel=label, title=title)
    return save(fig, out / "default_per_trial.png")


def plot_best_so_far(trials: pd.DataFrame, label: str, out: Path, mode: str = MAXIMIZE) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    best = best_so_far(trials, mode)
    ax.step(range(1, len(best) + 1), best, where="post", marker="o" if len(best) <= SMALL else None)
    ax.set(
        xlabel="finished trials", ylabel=f"best {label} so far", title=f"Best so far ({word(mode)})"
    )
    ax.grid(alpha=0.3)
    return save(fig, out / "best_so_far.png")


def plot_intermediate(
    done: pd.DataFrame, steps: pd.DataFrame, label: str, out: Path, mode: str = MAXIMIZE
) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    n = steps["trial_id"].nunique() if not steps.empty else 0
    if n <= SMALL:
        for trial_id, group in steps.groupby("trial_id", sort=False):
            values = pd.to_numeric(group["default"], errors="coerce")
            ax.plot(group["step"] + 1, values, alpha=0.7, label=trial_id)
        if 0 < n <= LEGEND:
            ax.legend(fontsize=7, ncol=2)
        title = "Intermediate results"
    else:
        values = steps.assign(default=pd.to_numeric(steps["default"], errors="coerce"))
        quant = values.groupby("step")["default"].quantile([BAND[0], 0.5, BAND[1]]).unstack()
        epochs = quant.index + 1
        ax.fill_between(
            epochs,
            quant[BAND[0]],
            quant[BAND[1]],
            color="tab:gray",
            alpha=0.3,
            label=f"{BAND[0]:.0%}-{BAND[1]:.0%} of all {n} trials",
        )
        ax.plot(epochs, quant[0.5], color="tab:gray", label="median of all trials")
        pick = done.nsmallest if mode == MINIMIZE else done.nlargest
        best = pick(BEST_K, "default")["trial_id"]
        for trial_id in best:
            group = values[values["trial_id"] == trial_id]
            ax.plot(group["step"] + 1, group["default"], linewidth=1.5, label=f"{trial_id} (best)")
        ax.legend(fontsize=7)
        title = f"Intermediate results: the {len(best)} best trials, and all {n} as a band"
    ax.set(xlabel="epoch", ylabel=f"{label} (intermediate)", title=title)
    ax.grid(alpha=0.3)
    return save(fig, out / "intermediate.png")


def plot_parameter(done: pd.DataFrame, name: str, label: str, out: Path) -> Path:
    """Only the trials that have the parameter (a nested one exists in one branch)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    have = done[done[name].notna()]
    x = have[name]
    y = have["default"].astype(float)
    numbers = pd.to_numeric(x, errors="coerce")
    if numbers.notna().all() and not x.map(lambda v: isinstance(v, (bool, str))).any():
        scatter(ax, numbers, y, len(have))
        if (numbers > 0).all() and numbers.max() / numbers.min() > 100:
            ax.set_xscale("log")
    else:
        scatter(ax, x.map(str), y, len(have))
    ax.set(xlabel=name, ylabel=label, title=f"{label} against {name}")
    ax.grid(alpha=0.3)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return save(fig, out / f"param_{safe}.png")


def plot_experiment(
    trials: pd.DataFrame,
    steps: pd.DataFrame,
    params: list[str],
    out: Path,
    label: str = "validation accuracy",
    mode: str = MAXIMIZE,
) -> list[Path]:
    """`label`: what the trials' `default` metric is (nnisuite.analysis.tables.metric_label);
    `mode`: which way is better (nnisuite.analysis.direction)."""
    done = trials[scored(trials)].sort_values("sequence", kind="stable")
    written = [
        plot_final_per_trial(done, label, out),
        plot_best_so_far(trials, label, out, mode),
        plot_intermediate(done, steps, label, out, mode),
    ]
    for name in params:
        if name in done and not done[name].isna().all():
            written.append(plot_parameter(done, name, label, out))
    return written


def plot_front(front, label: str, chosen: list[bool], out: Path) -> Path:
    """pareto_<cost>.png: every trial (objective against cost), the front as a step line, the
    log's own choice circled where the space has it. `front`: an nnisuite.analysis.pareto.Front."""
    from nnisuite.models.costs import shown

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = [shown(front.cost, p[1]) for p in front.points]
    y = [p[0] for p in front.points]
    n = len(x)
    scatter(ax, x, y, n, color="tab:gray", label=f"all {n} trials")
    fx = [x[i] for i in front.members]
    fy = [y[i] for i in front.members]
    ax.step(fx, fy, where="post", color="tab:red", linewidth=1.2)
    ax.scatter(fx, fy, s=22, color="tab:red", zorder=3, label=f"front ({len(fx)})")
    marked = [i for i, c in enumerate(chosen) if c]
    if marked:
        ax.scatter(
            [x[i] for i in marked],
            [y[i] for i in marked],
            s=90,
            facecolors="none",
            edgecolors="tab:blue",
            linewidths=1.5,
            zorder=4,
            label="the log's choice (128-256)",
        )
    return save_front(fig, ax, x, front.cost, label, f"hypervolume {front.hypervolume:.4f}", out)


def save_front(fig, ax, x, cost: str, label: str, what: str, out: Path) -> Path:
    """A Pareto plot's axes (a log x axis where the costs span more than 20x), title, legend,
    saved as pareto_<cost>.png."""
    from nnisuite.models.costs import label as cost_label

    positive = [v for v in x if v > 0]
    if positive and len(positive) == len(x) and max(positive) / min(positive) > 20:
        ax.set_xscale("log")
    ax.set(
        xlabel=cost_label(cost), ylabel=label, title=f"{label} against {cost_label(cost)}: {what}"
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, out / f"pareto_{cost}.png")


def plot_run_fronts(fronts: dict[tuple[str, int], object], label: str, out: Path) -> Path:
    """pareto_<cost>.png of a comparison: for each variant (a colour), every trial of its runs
    faint and each run's own front as a thin step line, so the spread over seeds shows (a
    front pooled over runs would flatter the variant with the widest spread). `fronts`:
    (variant, seed) -> nnisuite.analysis.pareto.Front of one cost, one reference."""
    from nnisuite.models.costs import shown

    first = next(iter(fronts.values()))
    variants = list(dict.fromkeys(v for v, _ in fronts))
    colors = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20").colors
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = []
    for i, variant in enumerate(variants):
        color = colors[i % len(colors)]
        runs = [f for (v, _), f in fronts.items() if v == variant]
        x = [shown(first.cost, p[1]) for f in runs for p in f.points]
        y = [p[0] for f in runs for p in f.points]
        xs += x
        ax.scatter(x, y, s=6, color=color, alpha=0.25, rasterized=len(x) > SMALL)
        for k, f in enumerate(runs):
            fx = [shown(first.cost, f.points[j][1]) for j in f.members]
            fy = [f.points[j][0] for j in f.members]
            ax.step(
                fx,
                fy,
                where="post",
                color=color,
                linewidth=1.0,
                alpha=0.8,
                label=f"{variant}: each of {len(runs)} runs' front" if k == 0 else None,
            )
    return save_front(fig, ax, xs, first.cost, label, "every run's Pareto front", out)
