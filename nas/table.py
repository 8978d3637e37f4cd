"""The 3.18 table: one row per architecture, mean +- std over repeated seeds, best first.

table = depth_table(trials)      # trials: analysis.tables.trials_table of a NAS experiment
markdown = table_markdown(table)
"""

from __future__ import annotations

import pandas as pd

from nas.space import log_widths

TRIAL_COLUMNS = [
    "trial_id",
    "status",
    "depth",
    "seed",
    "default",
    "test_accuracy",
    "parameters",
    "train_seconds",
    "duration_s",
]


def arch_columns(trials: pd.DataFrame) -> list[str]:
    """Architecture choices (depth and any width / activation choice), not the seed."""
    skip = set(TRIAL_COLUMNS) | {
        "sequence",
        "intermediate_count",
        "best_intermediate",
        "start_time",
        "end_time",
        "widths",
        "epochs",
        "diverged",
    }
    choices = [
        c for c in trials.columns if c.startswith(("depth", "width", "act")) and c not in skip
    ]
    return ["depth", *choices]


def mean_std(values: pd.Series) -> str:
    v = values.dropna().astype(float)
    if v.empty:
        return ""
    return f"{v.mean():.4f} +- {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"


def depth_table(trials: pd.DataFrame) -> pd.DataFrame:
    done = trials[trials["default"].notna()].copy()
    if done.empty:
        return pd.DataFrame()
    keys = [c for c in arch_columns(done) if c in done]
    rows = []
    for key, group in done.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        widths = group["widths"].iloc[0] if "widths" in group else None
        row["widths"] = widths or "-".join(map(str, log_widths(int(row["depth"]))))
        row["parameters"] = int(group["parameters"].iloc[0])
        row["runs"] = len(group)
        row["val_accuracy"] = mean_std(group["default"])
        row["test_accuracy"] = mean_std(group["test_accuracy"])
        row["train_s"] = mean_std(group["train_seconds"]) if "train_seconds" in group else ""
        row["_mean"] = float(group["default"].astype(float).mean())
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("_mean", ascending=False, kind="stable")
    return table.drop(columns="_mean").reset_index(drop=True)


def table_markdown(table: pd.DataFrame) -> str:
    from analysis.tables import markdown_table

    return markdown_table(table)
