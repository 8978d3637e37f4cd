"""Which hyperparameter explains the metric: random-forest permutation importance, seeded.

    importance(trials, ["features1", "lr"])   # DataFrame: parameter, importance, std

The method: a RandomForestRegressor (200 trees, seed 0) fit on the finished trials'
hyperparameters (numbers as numbers, anything else as category codes; log scale for parameters
spanning over two decades) to predict `default`, then scikit-learn's permutation importance
(30 repeats, seed 0): how much R^2 drops when one parameter's column is shuffled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHOD = (
    "random-forest permutation importance (scikit-learn RandomForestRegressor, 200 trees, "
    "permutation_importance with 30 repeats, seed 0)"
)
MIN_TRIALS = 10


def encode(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    if values.notna().all():
        v = values.to_numpy(dtype=float)
        if (v > 0).all() and v.max() / v.min() > 100:
            return np.log10(v)
        return v
    return column.astype("category").cat.codes.to_numpy(dtype=float)


def importance(trials: pd.DataFrame, params: list[str]) -> pd.DataFrame | None:
    """None when fewer than 3 finished trials or no parameter varies."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    done = trials[trials["default"].notna()]
    params = [p for p in params if p in done and done[p].nunique(dropna=False) > 1]
    if len(done) < 3 or not params:
        return None
    x = np.column_stack([encode(done[p]) for p in params])
    y = done["default"].to_numpy(dtype=float)
    forest = RandomForestRegressor(n_estimators=200, random_state=0, min_samples_leaf=1)
    forest.fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=30, random_state=0)
    table = pd.DataFrame(
        {"parameter": params, "importance": result.importances_mean, "std": result.importances_std}
    )
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def importance_markdown(table: pd.DataFrame | None, n_finished: int) -> str:
    lines = ["## Parameter importance", "", f"Method: {METHOD}.", ""]
    if table is None:
        lines.append(
            f"Not computed: {n_finished} finished trial(s) with a varying parameter; "
            "at least 3 are needed."
        )
        return "\n".join(lines)
    if n_finished < MIN_TRIALS:
        lines += [
            f"**Warning: only {n_finished} finished trials (fewer than {MIN_TRIALS}); "
            "these figures cannot tell parameters apart reliably.**",
            "",
        ]
    lines += ["| parameter | importance (drop in R^2) | std |", "|---|---|---|"]
    lines += [f"| {r.parameter} | {r.importance:.4f} | {r.std:.4f} |" for r in table.itertuples()]
    return "\n".join(lines)
