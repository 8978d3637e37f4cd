"""The statistics of repeated studies: best-so-far curves, their area, ranks over seeds, and
pairwise two-sided Mann-Whitney U tests with Holm's correction. Pure functions on numbers.

    curve = best_so_far([0.5, 0.7, 0.6])          # [0.5, 0.7, 0.7]; mode="minimize": min
    area = auc(curve, 20)                          # mean of the curve, padded to 20 trials
    ranks = mean_ranks({"tpe": [...], "random": [...]})   # seed by seed, 1 = best
    pairs = pairwise_mann_whitney({"tpe": [...], "random": [...]})

METHOD says the same in a sentence for the tables that use them.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from nnisuite.analysis.direction import MAXIMIZE, MINIMIZE, running_best, sign

METHOD = (
    "Each variant ran once per seed with the same trial budget. Per run: final best = the "
    "best final value of its trials (the highest; the lowest for a minimizing tuner); AUC = "
    "the mean of the best-so-far curve over the trial budget (a run's last value carried to "
    "the budget when trials failed); "
    "trials to within 0.5 points = the first trial whose best-so-far is within 0.005 of the "
    "best value any run of any variant found (runs that never got there are counted apart). "
    "Mean +- standard error over seeds. Rank: variants ranked by final best seed by seed (1 = "
    "best, ties averaged), then averaged. Pairwise: two-sided Mann-Whitney U on the runs' final "
    "best (scipy.stats.mannwhitneyu), p-values Holm-corrected over all pairs; a difference is "
    "called significant at corrected p < 0.05."
)
WITHIN = 0.005


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (std with ddof=1 over sqrt(n)); se is nan for one value."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    return float(v.mean()), float(se)


def best_so_far(values, mode: str = MAXIMIZE) -> np.ndarray:
    """Running best (maximum, or minimum when minimizing), in trial order."""
    return running_best(values, mode)


def padded(curve: np.ndarray, budget: int) -> np.ndarray:
    """The curve over `budget` trials: its last value carried on (nan if it is empty)."""
    if len(curve) >= budget:
        return curve[:budget]
    fill = curve[-1] if len(curve) else math.nan
    return np.concatenate([curve, np.full(budget - len(curve), fill)])


def auc(curve: np.ndarray, budget: int) -> float:
    """Area under the best-so-far curve per trial: its mean over the trial budget."""
    return float(np.mean(padded(curve, budget)))


def trials_to_within(
    curve: np.ndarray, target: float, within: float = WITHIN, mode: str = MAXIMIZE
) -> int | None:
    """1-based index of the first trial whose best-so-far is within `within` of `target`
    (>= target - within; <= target + within when minimizing)."""
    curve = np.asarray(curve, dtype=float)
    hits = np.flatnonzero(
        curve <= target + within if mode == MINIMIZE else curve >= target - within
    )
    return int(hits[0]) + 1 if hits.size else None


def seed_ranks(by_variant: dict[str, list[float]], mode: str = MAXIMIZE) -> dict[str, list[float]]:
    """Per seed (position in each list), the rank of each variant by value, 1 = best (highest,
    or lowest when minimizing), ties averaged. Seeds some variant lacks are skipped."""
    names = list(by_variant)
    n = min(len(v) for v in by_variant.values())
    ranks = {name: [] for name in names}
    for i in range(n):
        values = np.array([by_variant[name][i] for name in names], dtype=float)
        r = stats.rankdata(-sign(mode) * values, method="average")
        for name, rank in zip(names, r):
            ranks[name].append(float(rank))
    return ranks


def mean_ranks(by_variant: dict[str, list[float]], mode: str = MAXIMIZE) -> dict[str, float]:
    return {name: float(np.mean(r)) for name, r in seed_ranks(by_variant, mode).items()}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), input order."""
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        adjusted[i] = running
    return adjusted.tolist()


def pairwise_mann_whitney(by_variant: dict[str, list[float]]) -> list[dict]:
    """Every pair: U (of the first), two-sided p, Holm-corrected p."""
    rows = []
    for a, b in itertools.combinations(by_variant, 2):
        x, y = by_variant[a], by_variant[b]
        if len(x) == 0 or len(y) == 0:
            continue
        result = stats.mannwhitneyu(x, y, alternative="two-sided")
        rows.append(
            {
                "variant_a": a,
                "variant_b": b,
                "u": float(result.statistic),
                "p": float(result.pvalue),
            }
        )
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = adjusted
    return rows


def detection_rates(
    a, b, sizes, draws: int = 2000, alpha: float = 0.05, seed: int = 0
) -> list[float]:
    """For each n in `sizes`: how often a study of n runs per side would see a difference
    between the runs `a` and `b` (values of a metric, one per run): the share of `draws`
    resamplings (n of each, with replacement, seeded) whose two-sided Mann-Whitney p < alpha.
    The runs stand in for the tuner's distribution: a rate for n near len(a) is optimistic."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rates = []
    for n in sizes:
        x = rng.choice(a, size=(draws, n), replace=True)
        y = rng.choice(b, size=(draws, n), replace=True)
        with np.errstate(all="ignore"):
            p = stats.mannwhitneyu(x, y, alternative="two-sided", axis=1).pvalue
        rates.append(float(np.mean(np.nan_to_num(p, nan=1.0) < alpha)))
    return rates
