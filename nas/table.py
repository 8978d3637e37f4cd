"""The NAS tables: one row per architecture, mean +- std over repeated seeds, best first.

table = depth_table(trials)         # the 3.18 table (trials: nnisuite.analysis.tables.trials_table)
table = attention_table(trials)      # kind, heads, kv heads, parameters, KV cache, ...
markdown = table_markdown(table)
"""

from __future__ import annotations

import pandas as pd

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
ATTENTION_KEYS = ["kind", "heads", "embed_dim", "depth"]


def arch_columns(trials: pd.DataFrame) -> list[str]:
    """Architecture choices of the depth space (depth and any width / activation choice)."""
    choices = [
        c
        for c in trials.columns
        if c.startswith(("width", "act")) and c not in ("widths",) and c[-1].isdigit()
    ]
    return ["depth", *choices]


def mean_std(values: pd.Series) -> str:
    v = values.dropna().astype(float)
    if v.empty:
        return ""
    return f"{v.mean():.4f} +- {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"


def grouped(trials: pd.DataFrame, keys: list[str], row_of) -> pd.DataFrame:
    done = trials[trials["default"].notna()].copy()
    if done.empty:
        return pd.DataFrame()
    keys = [k for k in keys if k in done]
    rows = []
    for key, group in done.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key)) | row_of(group)
        seeds = int(group["trial_seeds"].max()) if "trial_seeds" in group else 1
        row["runs"] = len(group) * seeds
        if seeds > 1 and len(group) == 1:  # one trial of several trainings: its own spread
            g = group.iloc[0]
            row["val_accuracy"] = f"{g['default']:.4f} +- {g['default_std']:.4f}"
            row["test_accuracy"] = f"{g['test_accuracy']:.4f} +- {g['test_accuracy_std']:.4f}"
        else:
            row["val_accuracy"] = mean_std(group["default"])
            row["test_accuracy"] = mean_std(group["test_accuracy"])
        row["_mean"] = float(group["default"].astype(float).mean())
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("_mean", ascending=False, kind="stable")
    return with_fronts(table).drop(columns="_mean").reset_index(drop=True)


def with_fronts(table: pd.DataFrame) -> pd.DataFrame:
    """Column `pareto_front`: the costs (parameters, KV cache: fixed by the architecture) against
    which the architecture is on the Pareto front of mean validation accuracy: no other
    architecture is at least as accurate and as cheap, and better in one
    (nnisuite.analysis.pareto)."""
    from nnisuite.analysis.pareto import front
    from nnisuite.models.costs import KV_CACHE, PARAMETERS

    marks: list[list[str]] = [[] for _ in range(len(table))]
    for cost in (PARAMETERS, KV_CACHE):
        if cost not in table:
            continue
        points = list(zip(table["_mean"].astype(float), table[cost].astype(float)))
        for i in front(points, maximize=True):
            marks[i].append(cost)
    table["pareto_front"] = [", ".join(m) for m in marks]
    return table


def depth_table(trials: pd.DataFrame) -> pd.DataFrame:
    def row_of(group):
        widths = group["widths"].iloc[0] if "widths" in group else None
        if not isinstance(widths, str):
            from nnisuite.nas.space import log_widths

            widths = "-".join(map(str, log_widths(int(group["depth"].iloc[0]))))
        return {
            "widths": widths,
            "parameters": int(group["parameters"].iloc[0]),
            "train_s": mean_std(group["train_seconds"]) if "train_seconds" in group else "",
        }

    table = grouped(trials, arch_columns(trials), row_of)
    order = [
        "widths",
        "parameters",
        "runs",
        "val_accuracy",
        "test_accuracy",
        "train_s",
        "pareto_front",
    ]
    return table[[c for c in table.columns if c not in order] + order] if len(table) else table


def attention_table(trials: pd.DataFrame) -> pd.DataFrame:
    def row_of(group):
        first = group.iloc[0]
        return {
            "kv_heads": int(first["kv_heads"]),
            "parameters": int(first["parameters"]),
            "kv_cache_bytes_per_token": int(first["kv_cache_bytes_per_token"]),
            "epoch_s": mean_std(group["epoch_seconds"]),
        }

    table = grouped(trials, ATTENTION_KEYS, row_of)
    order = [
        "kind",
        "heads",
        "kv_heads",
        "embed_dim",
        "depth",
        "parameters",
        "kv_cache_bytes_per_token",
        "runs",
        "val_accuracy",
        "test_accuracy",
        "epoch_s",
        "pareto_front",
    ]
    return table[[c for c in order if c in table]] if len(table) else table


FRONT_NOTE = (
    "pareto_front: the costs against which no other architecture has a mean validation "
    "accuracy at least as high at a cost at most as high (one of them strictly)."
)


def table_markdown(table: pd.DataFrame) -> str:
    from nnisuite.analysis.tables import markdown_table

    note = f"\n{FRONT_NOTE}\n" if "pareto_front" in table else ""
    return markdown_table(table) + note
