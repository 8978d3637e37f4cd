"""Which way is better: an experiment's optimize mode, and "best" computed that way.

    mode = direction(exp.config)             # "maximize" or "minimize"
    best_first(trials_df, mode)               # rows sorted best first, no value last
    running_best([0.3, 0.1, 0.2], "minimize") # [0.3, 0.1, 0.1]

The mode is the tuner's (or advisor's) `optimize_mode`, else its constructor's default, else
maximize; a NAS experiment of nnisuite's maximizes validation accuracy. Every table, plot,
statistic and ranking of analysis/ takes it from here.
"""

from __future__ import annotations

import inspect

import numpy as np

MAXIMIZE, MINIMIZE = "maximize", "minimize"


def direction(config: dict) -> str:
    """maximize / minimize: the tuner's optimize_mode, or its constructor's default."""
    if config.get("experimentType") == "nas":
        return MAXIMIZE  # nnisuite's NAS strategies maximize validation accuracy
    tuner = config.get("tuner") or config.get("advisor") or {}
    mode = (tuner.get("classArgs") or {}).get("optimize_mode")
    if mode in (MAXIMIZE, MINIMIZE):
        return mode
    from experiments.algorithms import algorithm_class, lookup

    meta = lookup(str(tuner.get("name", "")))
    try:
        default = inspect.signature(algorithm_class(meta).__init__).parameters["optimize_mode"]
        return default.default if default.default in (MAXIMIZE, MINIMIZE) else MAXIMIZE
    except (AttributeError, ImportError, KeyError, TypeError, ValueError):
        return MAXIMIZE


def sign(mode: str) -> float:
    """+1 where larger is better, -1 where smaller is."""
    return -1.0 if mode == MINIMIZE else 1.0


def best_first(df, mode: str, column: str = "default"):
    """`df` sorted by `column`, best first; rows without a value last."""
    return df.sort_values(column, ascending=mode == MINIMIZE, na_position="last", kind="stable")


def best_of(values, mode: str):
    """The best of `values` (max, or min when minimizing)."""
    return min(values) if mode == MINIMIZE else max(values)


def running_best(values, mode: str) -> np.ndarray:
    """The best so far at each position, in order."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return np.array([])
    return np.minimum.accumulate(v) if mode == MINIMIZE else np.maximum.accumulate(v)


def within(value: float, target: float, tolerance: float, mode: str) -> bool:
    """Whether `value` is at most `tolerance` worse than `target`."""
    return value <= target + tolerance if mode == MINIMIZE else value >= target - tolerance


def word(mode: str) -> str:
    """For titles: what better means."""
    return "lower is better" if mode == MINIMIZE else "higher is better"
