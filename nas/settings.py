"""Settings of a NAS study (`python -m nas`): defaults, strategies, checks. No NNI, no torch.

    settings = settings_from(load_yaml("experiments/nas_depth.yaml"), {"epochs": 2})
    check(settings)          # SettingsError naming the bad setting

The defaults here are the only ones: the YAML and the command line override them, and the
evaluator receives every value from here.
"""

from __future__ import annotations

STRATEGIES = ("grid", "random", "evolution")
INPUT_SIZES = {"digits": 64, "mnist": 784, "fashion-mnist": 784}  # flattened image sizes
MIN_DEPTH, MAX_DEPTH = 1, 6
DEFAULTS = {
    "dataset": "digits",
    "data_dir": None,
    "epochs": 10,
    "strategy": "grid",
    "seed": 0,  # the strategy's seed (random, evolution); weights use the `seed` choice
    "min_depth": MIN_DEPTH,
    "max_depth": MAX_DEPTH,
    "repeats": 1,
    "concurrency": 2,
    "max_trials": None,
    "extended": False,
    "lr": 0.1,
    "batch_size": 64,
    "optimizer": "sgd",
    "momentum": 0.0,
}


class SettingsError(ValueError):
    """A NAS setting that is unknown or out of range; the message names it."""


def settings_from(raw: dict | None, overrides: dict | None = None) -> dict:
    """DEFAULTS <- the settings file's mapping <- command-line overrides (None: not given)."""
    settings = dict(DEFAULTS)
    raw = raw or {}
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise SettingsError(f"unknown settings {unknown}; known: {sorted(DEFAULTS)}")
    settings.update({k: v for k, v in raw.items() if v is not None or k == "max_trials"})
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return settings


def check_depth_bounds(min_depth: int, max_depth: int) -> None:
    if not MIN_DEPTH <= min_depth <= max_depth <= MAX_DEPTH:
        raise SettingsError(
            f"depth bounds must satisfy {MIN_DEPTH} <= min <= max <= {MAX_DEPTH}, "
            f"got {min_depth}..{max_depth}"
        )


def check(settings: dict) -> None:
    if settings["strategy"] not in STRATEGIES:
        raise SettingsError(
            f"strategy {settings['strategy']!r} unknown; NNI strategies offered "
            f"here: {', '.join(STRATEGIES)}"
        )
    if settings["dataset"] not in INPUT_SIZES:
        raise SettingsError(
            f"dataset {settings['dataset']!r} unknown; choose one of {', '.join(INPUT_SIZES)}"
        )
    check_depth_bounds(int(settings["min_depth"]), int(settings["max_depth"]))
    for key in ("epochs", "repeats", "concurrency"):
        if int(settings[key]) < 1:
            raise SettingsError(f"{key} must be >= 1, got {settings[key]}")
    if settings["extended"] and settings["strategy"] == "grid":
        raise SettingsError(
            "the extended space has 4^6 x 3^6 architectures: use --strategy "
            "random or evolution with --max-trials"
        )


def grid_size(settings: dict) -> int:
    """Architectures x seeds of the plain depth space."""
    return (int(settings["max_depth"]) - int(settings["min_depth"]) + 1) * int(settings["repeats"])


def space_size(settings: dict) -> int:
    size = grid_size(settings)
    if settings["extended"]:
        size *= 4 ** int(settings["max_depth"]) * 3 ** int(settings["max_depth"])
    return size


def max_trials(settings: dict) -> int:
    """The trial budget: --max-trials, else the whole grid."""
    return int(settings["max_trials"] or grid_size(settings))
