"""Plots of an exported experiment, rendered headless (PNG).

default_per_trial.png (the log's params_result.png), best_so_far.png, intermediate.png, and
param_<name>.png for each hyperparameter against `default`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def best_so_far(trials: pd.DataFrame) -> pd.Series:
    """Running maximum of `default` in trial order (sequence), finished trials only."""
    done = trials[trials["default"].notna()].sort_values("sequence", kind="stable")
    return done["default"].astype(float).cummax().reset_index(drop=True)


def plot_experiment(
    trials: pd.DataFrame,
    steps: pd.DataFrame,
    params: list[str],
    out: Path,
    label: str = "validation accuracy",
) -> list[Path]:
    """`label`: what the trials' `default` metric is (analysis.tables.metric_label)."""
    written = []
    done = trials[trials["default"].notna()].sort_values("sequence", kind="stable")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(done["sequence"].astype(str), done["default"].astype(float), color="tab:blue")
    ax.set(
        xlabel="trial (sequence)",
        ylabel=label,
        title="Final metric per trial",
    )
    written.append(save(fig, out / "default_per_trial.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    best = best_so_far(trials)
    ax.step(range(1, len(best) + 1), best, where="post", marker="o")
    ax.set(xlabel="finished trials", ylabel=f"best {label} so far", title="Best so far")
    ax.grid(alpha=0.3)
    written.append(save(fig, out / "best_so_far.png"))

    fig, ax = plt.subplots(figsize=(7, 4))
    for trial_id, group in steps.groupby("trial_id", sort=False):
        ax.plot(group["step"] + 1, group["default"].astype(float), alpha=0.7, label=trial_id)
    ax.set(xlabel="epoch", ylabel=f"{label} (intermediate)", title="Intermediate results")
    if steps["trial_id"].nunique() <= 12 and not steps.empty:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    written.append(save(fig, out / "intermediate.png"))

    for name in params:
        if name not in done or done[name].isna().all():
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        x = done[name]
        numeric = pd.to_numeric(x, errors="coerce")
        if numeric.notna().all():
            ax.scatter(numeric, done["default"].astype(float))
            if (numeric > 0).all() and numeric.max() / numeric.min() > 100:
                ax.set_xscale("log")
        else:
            ax.scatter(x.astype(str), done["default"].astype(float))
        ax.set(xlabel=name, ylabel=label, title=f"{label} against {name}")
        ax.grid(alpha=0.3)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        written.append(save(fig, out / f"param_{safe}.png"))
    return written
