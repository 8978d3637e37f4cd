"""A study-of-studies file (`python -m experiments.repeat`): a base experiment, variants,
seeds; and the experiment mapping of each (variant, seed) run.

    plan = load_plan("experiments/tuners_digits.yaml")
    raw = run_config(plan, "tpe", seed=3, experiment_dir=None)   # an experiment mapping

Keys: base (an experiment YAML, relative to this file), variants (name: {tuner, assessor,
epochs}), seeds, trials, concurrency, epochs, dataset, title.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from experiments.config import ConfigError, apply_overrides, get_key, load_yaml, set_key

KEYS = ("base", "trials", "concurrency", "epochs", "seeds", "variants", "title", "dataset")


class RepeatError(ValueError):
    """A study-of-studies file that cannot be run; the message says why."""


def is_plan(raw: dict) -> bool:
    return isinstance(raw, dict) and "variants" in raw and "base" in raw


def load_plan(path: str | Path) -> dict:
    try:
        plan = load_yaml(path)
    except ConfigError as exc:
        raise RepeatError(str(exc)) from None
    unknown = sorted(set(plan) - set(KEYS))
    if unknown:
        raise RepeatError(f"{path}: unknown keys {unknown}; known: {list(KEYS)}")
    for key in ("base", "variants"):
        if key not in plan:
            raise RepeatError(f"{path}: `{key}` is required")
    if not isinstance(plan["variants"], dict) or not plan["variants"]:
        raise RepeatError(f"{path}: `variants` must map names to {{tuner: ..., assessor: ...}}")
    for name, variant in plan["variants"].items():
        if not isinstance(variant, dict) or not set(variant) <= {"tuner", "assessor", "epochs"}:
            raise RepeatError(f"{path}: variant {name!r} may set only tuner, assessor, epochs")
    for key in ("trials", "concurrency", "epochs", "seeds"):
        value = plan.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise RepeatError(f"{path}: {key} must be a positive integer, got {value!r}")
    plan["base"] = str((Path(path).resolve().parent / plan["base"]).resolve())
    return plan


def takes_seed(tuner: dict) -> bool:
    """Whether the tuner's constructor has a `seed` argument."""
    from experiments.algorithms import algorithm_class, lookup

    meta = lookup(str(tuner.get("name", "")))
    if meta is None:
        return False
    try:
        return "seed" in inspect.signature(algorithm_class(meta).__init__).parameters
    except (ImportError, TypeError, ValueError):
        return False


def run_config(
    plan: dict, variant: str, seed: int, experiment_dir: str | None, dataset: str | None = None
) -> dict:
    """The experiment mapping of one run."""
    raw = load_yaml(plan["base"])
    spec = plan["variants"][variant]
    for kind in ("tuner", "assessor"):
        if kind in spec:
            value = spec[kind]
            if kind == "tuner" and isinstance(value, dict) and takes_seed(value):
                value = {**value, "classArgs": {**(value.get("classArgs") or {}), "seed": seed}}
            raw = set_key(raw, kind, value)
            if value is None:
                raw = {k: v for k, v in raw.items() if get_key({k: v}, kind)[0] is None}
    return apply_overrides(
        raw,
        max_trials=plan.get("trials"),
        concurrency=plan.get("concurrency"),
        epochs=spec.get("epochs", plan.get("epochs")),
        dataset=dataset,
        experiment_dir=experiment_dir,
        name=f"{Path(plan['base']).stem}-{variant}-s{seed}",
        trial_flags={"--seed": seed},
    )
