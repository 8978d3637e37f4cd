"""Which hyperparameter explains the metric: random-forest permutation importance, seeded.

    table, note = importance(trials, ["features1", "lr"])   # parameter, importance, std

The method: a RandomForestRegressor (200 trees, seed 0) fit on the finished trials'
hyperparameters (numbers as numbers, anything else as category codes; log scale for parameters
spanning over two decades) to predict `default`, then permutation importance (30 repeats, seed
0): how much R^2 drops when one parameter's column is shuffled. The permutations are
scikit-learn's `permutation_importance`'s, drawn the same way, but every permuted copy is scored
in one batched prediction (scikit-learn predicts 120 times, 3 s even for 20 trials; the test
suite checks the numbers agree). With more than MAX_TRIALS finished trials, the forest is fit
on a seeded sample of MAX_TRIALS of them, and the output says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnisuite.analysis.direction import scored

N_TREES = 200
N_REPEATS = 30
SEED = 0
MIN_TRIALS = 10  # fewer: a warning in the output
MIN_FIT = 3  # fewer finished trials: no importance at all (here or by Optuna's evaluators)
MAX_TRIALS = 1000  # more: a seeded sample of this many
METHOD = (
    f"random-forest permutation importance (scikit-learn RandomForestRegressor, {N_TREES} trees, "
    f"permutation importance with {N_REPEATS} repeats, seed {SEED})"
)


def encode(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    if values.notna().all():
        v = values.to_numpy(dtype=float)
        if (v > 0).all() and v.max() / v.min() > 100:
            return np.log10(v)
        return v
    return column.astype("category").cat.codes.to_numpy(dtype=float)


def design(trials: pd.DataFrame, params: list[str], max_trials: int = MAX_TRIALS, seed=SEED):
    """(x, y, parameters that vary, trials used, trials finished) of the finished trials; a
    seeded sample of `max_trials` of them when there are more."""
    done = trials[scored(trials)]
    finished = len(done)
    if finished > max_trials:
        done = done.sample(n=max_trials, random_state=seed).sort_index()
    params = [p for p in params if p in done and done[p].nunique(dropna=False) > 1]
    if not params:
        return None, None, [], len(done), finished
    x = np.column_stack([encode(done[p]) for p in params])
    return x, scaled(done["default"].to_numpy(dtype=float)), params, len(done), finished


def scaled(y: np.ndarray) -> np.ndarray:
    """y times a power of two that brings its largest magnitude near 1: exact in floating
    point, so R^2 and the forest's splits are those of y, and finals as large as 1e300 no
    longer overflow the squares of R^2 to NaN."""
    top = float(np.max(np.abs(y))) if len(y) else 0.0
    return np.ldexp(y, -np.frexp(top)[1]) if top > 0 else y


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 of each row of y_pred (k, n) against y_true (n,)."""
    ss_res = ((y_pred - y_true) ** 2).sum(axis=-1)
    ss_tot = ((y_true - y_true.mean()) ** 2).sum()
    return 1 - ss_res / ss_tot if ss_tot > 0 else np.zeros_like(ss_res)


def permutation_scores(model, x, y, n_repeats: int, seed: int) -> tuple[float, np.ndarray]:
    """(baseline R^2, scores (features, repeats)) with scikit-learn's permutations: one
    RandomState per feature seeded alike, the column reshuffled in place each repeat."""
    seed_for_features = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    n, k = x.shape
    batch = np.empty((k, n_repeats, n, k))
    for j in range(k):
        rng = np.random.RandomState(seed_for_features)
        index = np.arange(n)
        column = x[:, j].copy()
        for r in range(n_repeats):
            rng.shuffle(index)
            column = column[index]
            batch[j, r] = x
            batch[j, r, :, j] = column
    predictions = model.predict(np.vstack([x, batch.reshape(-1, k)]))
    baseline = float(r2(y, predictions[:n][None])[0])
    scores = r2(y, predictions[n:].reshape(k, n_repeats, n))
    return baseline, scores


def importance(trials: pd.DataFrame, params: list[str]) -> tuple[pd.DataFrame | None, str]:
    """(table best first, a note on the sample); None when fewer than 3 finished trials or
    no parameter varies."""
    x, y, params, used, finished = design(trials, params)
    if x is None or used < MIN_FIT:
        return None, ""
    from sklearn.ensemble import RandomForestRegressor  # ~0.6 s to import: only when fitting

    jobs = 2 if used > 200 else 1  # threads pay off only on larger samples (2 cores here)
    forest = RandomForestRegressor(
        n_estimators=N_TREES, random_state=SEED, min_samples_leaf=1, n_jobs=jobs
    )
    forest.fit(x, y)
    baseline, scores = permutation_scores(forest, x, y, N_REPEATS, SEED)
    drops = baseline - scores
    table = pd.DataFrame(
        {"parameter": params, "importance": drops.mean(axis=1), "std": drops.std(axis=1)}
    )
    note = (
        f"fit on a seeded sample of {used} of {finished} finished trials" if used < finished else ""
    )
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(
        drop=True
    ), note


def importance_markdown(table: pd.DataFrame | None, n_finished: int, note: str = "") -> str:
    lines = [
        "## Parameter importance",
        "",
        f"Method: {METHOD}" + (f"; {note}." if note else "."),
        "",
    ]
    if table is None:
        lines.append(
            f"Not computed: {n_finished} finished trial(s) with a varying parameter; "
            f"at least {MIN_FIT} are needed."
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
