"""Which way is better: an experiment's optimize mode, and "best" computed that way.

    mode = direction(exp.config)             # "maximize" or "minimize"
    best_first(trials_df, mode)               # rows sorted best first, no value last
    running_best([0.3, 0.1, 0.2], "minimize") # [0.3, 0.1, 0.1]

The mode is the tuner's (or advisor's) `optimize_mode`, else its constructor's default, else
maximize; a NAS experiment of nnisuite's maximizes validation accuracy. Every table, plot,
statistic and ranking of analysis/ takes it from here.

    objectives(exp.config)   # Objectives(keys=["default", "parameters"], directions=[...])

An experiment can optimize several keys of its trials' final result (nnisuite.study.optuna_tuner's
classArgs `objectives` and `directions`): `default` goes the optimize mode's way,
nnisuite.models.costs' keys are minimized, any other key needs its direction.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass

import numpy as np

MAXIMIZE, MINIMIZE = "maximize", "minimize"


def direction(config: dict) -> str:
    """maximize / minimize: the tuner's optimize_mode, or its constructor's default."""
    if config.get("experimentType") == "nas":
        return MAXIMIZE  # nnisuite's NAS strategies maximize validation accuracy
    tuner = config.get("tuner") or config.get("advisor") or {}
    tuner = tuner if isinstance(tuner, dict) else {}  # a hand-edited record: NNI's defaults
    args = tuner.get("classArgs")
    mode = args.get("optimize_mode") if isinstance(args, dict) else None
    if mode in (MAXIMIZE, MINIMIZE):
        return mode
    from nnisuite.config.algorithms import algorithm_class, lookup

    meta = lookup(str(tuner.get("name", "")))
    try:
        default = inspect.signature(algorithm_class(meta).__init__).parameters["optimize_mode"]
        return default.default if default.default in (MAXIMIZE, MINIMIZE) else MAXIMIZE
    except (AttributeError, ImportError, KeyError, TypeError, ValueError):
        return MAXIMIZE


def sign(mode: str) -> float:
    """+1 where larger is better, -1 where smaller is."""
    return -1.0 if mode == MINIMIZE else 1.0


def usable(value) -> bool:
    """A result NNI stored that can be ranked: a finite real number. NaN, +-inf, strings
    ("0.9" too), bools, dicts and missing values are shown as stored and left out of every best,
    ranking, importance, front and statistic."""
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    return number and math.isfinite(value)  # numpy's numbers too (a pandas column's)


def scored(df, column: str = "default"):
    """The rows of `df` whose `column` is usable (a boolean mask; all False when absent)."""
    if column not in df:
        return df.index.map(lambda _: False).astype(bool)
    return df[column].map(usable).astype(bool)


def best_first(df, mode: str, column: str = "default"):
    """`df` sorted by `column`, best first; rows without a usable value last, as stored."""
    if column not in df or df.empty:
        return df
    key = df[column].map(lambda v: float(v) if usable(v) else math.nan)
    order = key.sort_values(ascending=mode == MINIMIZE, na_position="last", kind="stable").index
    return df.loc[order]


def running_best(values, mode: str) -> np.ndarray:
    """The best so far at each position, in order; a position without a usable number (None,
    NaN, +-inf) keeps the best before it (NaN before the first number)."""
    v = np.asarray([x if usable(x) else np.nan for x in values], dtype=float)
    if not len(v):
        return np.array([])
    return np.fmin.accumulate(v) if mode == MINIMIZE else np.fmax.accumulate(v)


def word(mode: str) -> str:
    """For titles: what better means."""
    return "lower is better" if mode == MINIMIZE else "higher is better"


class ObjectiveError(ValueError):
    """Objectives that cannot be optimized as given (the message says why)."""


@dataclass
class Objectives:
    keys: list[str]
    directions: list[str]

    def values(self, result) -> list[float] | None:
        """The objectives from a final result (a bare number is `default`); None when one is
        missing or not a finite number."""
        out = []
        for key in self.keys:
            value = (
                result.get(key)
                if isinstance(result, dict)
                else (result if key == "default" else None)
            )
            if not usable(value):
                return None
            out.append(float(value))
        return out


def objectives_of(optimize_mode: str, keys=None, directions=None) -> Objectives:
    """Objectives from a tuner's classArgs; ObjectiveError when they cannot be."""
    from nnisuite.models.costs import COSTS

    if optimize_mode not in (MAXIMIZE, MINIMIZE):
        raise ObjectiveError(f"optimize_mode must be maximize or minimize, got {optimize_mode!r}")
    keys = list(keys) if keys else ["default"]
    if not all(isinstance(k, str) and k for k in keys) or len(set(keys)) != len(keys):
        raise ObjectiveError(f"objectives must be distinct keys of the final result, got {keys!r}")
    if directions is None:
        directions = []
        for k in keys:
            if k not in ("default", *COSTS):
                raise ObjectiveError(
                    f"objective {k!r}: give its direction (directions: [...], one per objective)"
                )
            directions.append(optimize_mode if k == "default" else MINIMIZE)
    directions = list(directions)
    if len(directions) != len(keys) or any(d not in (MAXIMIZE, MINIMIZE) for d in directions):
        raise ObjectiveError(
            f"directions must be maximize or minimize, one per objective ({len(keys)}), "
            f"got {directions!r}"
        )
    return Objectives(keys, directions)


def objectives(config: dict) -> Objectives:
    """What an experiment optimized: its tuner's `objectives` (nnisuite.study.optuna_tuner), else
    `default` alone, in direction(config)."""
    tuner = config.get("tuner") or config.get("advisor") or {}
    args = (tuner.get("classArgs") or {}) if isinstance(tuner, dict) else {}
    mode = direction(config)
    if isinstance(args.get("objectives"), list) and len(args["objectives"]) > 1:
        try:
            return objectives_of(mode, args["objectives"], args.get("directions"))
        except ObjectiveError:
            pass  # validation says so; here: default alone
    return Objectives(["default"], [mode])
