"""A study-of-studies file (`python -m nnisuite.study.repeat`): a base experiment, variants,
seeds; and the experiment mapping of each (variant, seed) run.

    plan = load_plan("experiments/tuners_digits.yaml")
    raw = run_config(plan, "tpe", seed=3, experiment_dir=None)   # an experiment mapping

Keys: base (an experiment YAML, relative to this file), variants (name: {tuner, assessor,
epochs}), seeds, trials, concurrency, epochs, dataset, title. A variant's tuner or assessor that
sets no optimize_mode takes the base tuner's. The base may instead be NAS
settings (`python -m nnisuite.nas`): variants then set {strategy}, `settings` overrides any other
NAS setting, and seed s is the strategy's seed (and the architectures' training seeds are 0).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from nnisuite.config.experiment import ConfigError, apply_overrides, get_key, load_yaml, set_key

KEYS = (
    "base",
    "trials",
    "concurrency",
    "epochs",
    "seeds",
    "variants",
    "title",
    "dataset",
    "settings",
)
HPO_VARIANT = {"tuner", "assessor", "epochs"}
NAS_VARIANT = {"strategy", "epochs"}


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
    if not isinstance(plan["base"], str) or not plan["base"].strip():
        raise RepeatError(f"{path}: `base` must be a file path, got {plan['base']!r}")
    for key in ("title", "dataset"):
        if plan.get(key) is not None and not isinstance(plan[key], str):
            raise RepeatError(f"{path}: `{key}` must be a string, got {plan[key]!r}")
    plan["base"] = str((Path(path).resolve().parent / plan["base"]).resolve())
    if Path(plan["base"]) == Path(path).resolve():
        raise RepeatError(f"{path}: `base` is this plan itself: name the experiment it varies")
    try:
        base = load_yaml(plan["base"])
    except ConfigError as exc:
        raise RepeatError(f"{path}: base: {exc}") from None
    if is_plan(base):
        raise RepeatError(
            f"{path}: `base` {plan['base']} is a plan itself: name an experiment (or NAS "
            "settings) file"
        )
    nas = is_nas(plan)
    allowed = NAS_VARIANT if nas else HPO_VARIANT
    for name, variant in plan["variants"].items():
        if not isinstance(variant, dict) or not set(variant) <= allowed:
            raise RepeatError(f"{path}: variant {name!r} may set only {', '.join(sorted(allowed))}")
        if "epochs" in variant and not positive_int(variant["epochs"]):
            raise RepeatError(
                f"{path}: variant {name!r}: epochs must be a positive integer, "
                f"got {variant['epochs']!r}"
            )
    if plan.get("settings") is not None and not (nas and isinstance(plan["settings"], dict)):
        raise RepeatError(f"{path}: `settings` (a mapping) is for a NAS base only")
    for key in ("trials", "concurrency", "epochs", "seeds"):
        value = plan.get(key)
        if value is not None and not positive_int(value):
            raise RepeatError(f"{path}: {key} must be a positive integer, got {value!r}")
    return plan


def override_plan(plan: dict, **values) -> dict:
    """The command line's overrides of a plan, in place (None: keep the plan's): seeds,
    max_trials (the plan's `trials`), epochs (one number for every variant), dataset."""
    for key, value in values.items():
        if value is not None:
            plan[{"max_trials": "trials"}.get(key, key)] = value
            if key == "epochs":
                for spec in plan["variants"].values():
                    spec.pop("epochs", None)
    return plan


def positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_nas(plan: dict) -> bool:
    """Whether the plan's base is NAS settings (a `strategy`, no trialCommand)."""
    try:
        base = load_yaml(plan["base"])
    except ConfigError as exc:
        raise RepeatError(str(exc)) from None
    return "strategy" in base and get_key(base, "trialCommand")[0] is None


def nas_settings(plan: dict, variant: str, seed: int, dataset: str | None = None) -> dict:
    """The NAS settings of one run (config.nas_settings: defaults <- base <- plan <- variant)."""
    from nnisuite.config.nas_settings import settings_from

    spec = plan["variants"][variant]
    overrides = dict(plan.get("settings") or {})
    overrides |= {
        "strategy": spec.get("strategy"),
        "seed": seed,
        "max_trials": plan.get("trials"),
        "concurrency": plan.get("concurrency"),
        "epochs": spec.get("epochs", plan.get("epochs")),
        "dataset": dataset or overrides.get("dataset"),
    }
    return settings_from(load_yaml(plan["base"]), overrides)


def takes(algorithm: dict, argument: str) -> bool:
    """Whether the tuner's (assessor's) constructor has `argument`: a built-in one's, or a
    custom `className` importable from here (nnisuite.study.optuna_tuner.OptunaTuner)."""
    import importlib

    from nnisuite.config.algorithms import algorithm_class, lookup

    try:
        if algorithm.get("className"):
            module, _, name = str(algorithm["className"]).rpartition(".")
            cls = getattr(importlib.import_module(module), name)
        else:
            meta = lookup(str(algorithm.get("name", "")))
            if meta is None or not meta.accept_class_args:  # GridSearch: no classArgs at all
                return False
            cls = algorithm_class(meta)
        return argument in inspect.signature(cls.__init__).parameters
    except (AttributeError, ImportError, TypeError, ValueError):
        return False


def takes_seed(tuner: dict) -> bool:
    """Whether the tuner's constructor has a `seed` argument."""
    return takes(tuner, "seed")


def with_mode(algorithm, mode: str | None):
    """A variant's tuner / assessor that sets no optimize_mode gets the base's: a variant swaps
    the algorithm, not the direction (TPE alone would minimize a maximized accuracy)."""
    if not isinstance(algorithm, dict) or not mode:
        return algorithm
    args = algorithm.get("classArgs") or {}
    if "optimize_mode" in args or not takes(algorithm, "optimize_mode"):
        return algorithm
    return {**algorithm, "classArgs": {**args, "optimize_mode": mode}}


def run_config(
    plan: dict, variant: str, seed: int, experiment_dir: str | None, dataset: str | None = None
) -> dict:
    """The experiment mapping of one run."""
    raw = load_yaml(plan["base"])
    spec = plan["variants"][variant]
    _, base_tuner = get_key(raw, "tuner")
    mode = ((base_tuner or {}).get("classArgs") or {}) if isinstance(base_tuner, dict) else {}
    mode = mode.get("optimize_mode") if isinstance(mode, dict) else None
    for kind in ("tuner", "assessor"):
        if kind in spec:
            value = with_mode(spec[kind], mode)
            raw = set_key(raw, kind, value)
            if value is None:
                raw = {k: v for k, v in raw.items() if get_key({k: v}, kind)[0] is None}
    from nnisuite.config.trial import Trial

    own = Trial.of(raw, plan["base"]).own
    _, tuner = get_key(raw, "tuner")  # the variant's or the base's: seeded per run
    if isinstance(tuner, dict) and takes_seed(tuner):
        tuner = {**tuner, "classArgs": {**(tuner.get("classArgs") or {}), "seed": seed}}
        raw = set_key(raw, "tuner", tuner)
    try:
        return apply_overrides(
            raw,
            max_trials=plan.get("trials"),
            concurrency=plan.get("concurrency"),
            epochs=spec.get("epochs", plan.get("epochs")),
            dataset=dataset,
            experiment_dir=experiment_dir,
            name=f"{Path(plan['base']).stem}-{variant}-s{seed}",
            trial_flags={"--seed": seed},
            own_trial=own,
        )
    except ConfigError as exc:
        raise RepeatError(f"{plan['base']}: {exc}") from None
