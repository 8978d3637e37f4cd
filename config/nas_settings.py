"""Settings of a NAS study (`python -m nnisuite.nas`): defaults, strategies, checks. No NNI, no
torch.

    settings = settings_from(load_yaml("experiments/nas_depth.yaml"), {"epochs": 2})
    check(settings)          # SettingsError naming the bad setting

The defaults here are the only ones: the YAML and the command line override them, and the
evaluator receives every value from here.
"""

from __future__ import annotations

from pathlib import Path

# multi-trial, through NNI's manager; optuna_*: Optuna's samplers (nnisuite.study.optuna_tuner) in
# NNI's HPOTunerStrategy (CMA-ES samples these spaces' categorical choices independently: it is
# offered so that a study can show it, docs/results.md)
STRATEGIES = ("grid", "random", "evolution", "tpe", "optuna_tpe", "optuna_gp", "optuna_cmaes")
ONE_SHOT = ("random-oneshot", "darts", "gumbel-darts", "enas")  # one supernet, in-process
SPACES = (
    "depth",
    "attention",
)  # nnisuite.nas.space.DepthSpace, nnisuite.nas.attention_space.AttentionSpace
IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion-mnist": (28, 28)}  # rows, cols
INPUT_SIZES = {name: r * c for name, (r, c) in IMAGE_SHAPES.items()}  # flattened sizes
# nnisuite.nas.attention_space's choices (kind: num_kv_heads = heads, heads / 2, 1)
ATTENTION_CHOICES = {
    "kind": ("MHA", "GQA", "MQA"),
    "heads": (2, 4, 8),
    "embed_dim": (32, 64),
    "depth": (1, 2, 3),
}
MIN_DEPTH, MAX_DEPTH = 1, 6
DEFAULTS = {
    "space": "depth",
    "dataset": "digits",
    "data_dir": None,
    "epochs": 10,
    "strategy": "grid",
    "seed": 0,  # the strategy's seed (random, evolution, tpe, one-shot); weights: `seed` choice
    "min_depth": MIN_DEPTH,
    "max_depth": MAX_DEPTH,
    "repeats": 1,
    "trial_seeds": 1,  # trainings inside each trial (mean +- std reported): a seed-averaged search
    "concurrency": 2,
    "max_trials": None,
    "extended": False,
    "lr": 0.1,
    "batch_size": 64,
    "optimizer": "sgd",
    "momentum": 0.0,
}


# Why `python -m nnisuite.nas --resume` refuses, from NNI 3.0's source (checked here, torch 2.14):
NO_RESUME = (
    "NNI 3.0 cannot resume a NAS study: on resume its manager sends the finished results to the "
    "strategy as IMPORT_DATA, which the NAS side's command channel does not know "
    "(nni/runtime/tuner_command_channel/channel.py, TunerCommandChannel.receive raises "
    "'Unknown command type: CommandType.ImportData' and its listener thread dies), and the "
    "strategy's checkpoint is read with torch.load, which refuses its numpy arrays since "
    "PyTorch 2.6 made weights_only=True the default (nni/nas/utils/serializer.py). Run the study "
    "again; the stopped run's finished trials stay in its export"
)


class SettingsError(ValueError):
    """A NAS setting that is unknown, of the wrong type or out of range; `key` names it."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def settings_from(raw: dict | None, overrides: dict | None = None) -> dict:
    """DEFAULTS <- the settings file's mapping <- command-line overrides (None: not given)."""
    import difflib

    settings = dict(DEFAULTS)
    raw = raw or {}
    if not isinstance(raw, dict):
        raise SettingsError(f"the settings must be a mapping of key: value, got {raw!r}")
    unknown = sorted(str(k) for k in set(raw) - set(DEFAULTS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(DEFAULTS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SettingsError(
            f"unknown setting(s) {unknown}{hint}; known: {sorted(DEFAULTS)}", unknown[0]
        )
    settings.update({k: v for k, v in raw.items() if v is not None or k == "max_trials"})
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return settings


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x) -> bool:
    return (
        isinstance(x, (int, float))
        and not isinstance(x, bool)
        and x == x
        and abs(x) != float("inf")
    )


# key -> (test, what it must be); checked before any range rule reads the value
TYPES = {
    "space": (lambda x: isinstance(x, str) and x in SPACES, f"one of {', '.join(SPACES)}"),
    "dataset": (
        lambda x: isinstance(x, str) and x in INPUT_SIZES,
        f"one of {', '.join(INPUT_SIZES)}",
    ),
    "data_dir": (lambda x: x is None or isinstance(x, str), "a folder path or null"),
    "epochs": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    "strategy": (
        lambda x: isinstance(x, str) and x in STRATEGIES + ONE_SHOT,
        f"one of {', '.join(STRATEGIES + ONE_SHOT)}",
    ),
    "seed": (lambda x: _int(x) and 0 <= x < 2**32, "an integer in 0..2**32-1"),
    "min_depth": (lambda x: _int(x), "an integer"),
    "max_depth": (lambda x: _int(x), "an integer"),
    "repeats": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    "trial_seeds": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    "concurrency": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    "max_trials": (lambda x: x is None or (_int(x) and x >= 1), "an integer >= 1 or null"),
    "extended": (lambda x: isinstance(x, bool), "true or false"),
    "lr": (lambda x: _number(x) and x > 0, "a number > 0"),
    "batch_size": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    "optimizer": (lambda x: isinstance(x, str) and x in ("sgd", "adam"), "sgd or adam"),
    "momentum": (lambda x: _number(x) and x >= 0, "a number >= 0"),
}


def check_depth_bounds(min_depth: int, max_depth: int) -> None:
    if not MIN_DEPTH <= min_depth <= max_depth <= MAX_DEPTH:
        raise SettingsError(
            f"depth bounds must satisfy {MIN_DEPTH} <= min <= max <= {MAX_DEPTH}, "
            f"got {min_depth}..{max_depth}",
            "min_depth",
        )


def check(settings: dict) -> None:
    for key, (test, what) in TYPES.items():
        value = settings[key]
        if not test(value):
            if key == "strategy":
                raise SettingsError(
                    f"strategy {value!r} unknown; NNI strategies offered here: "
                    f"{', '.join(STRATEGIES + ONE_SHOT)}",
                    key,
                )
            if key == "dataset":
                raise SettingsError(f"dataset {value!r} unknown; choose {what}", key)
            raise SettingsError(f"{key} must be {what}, got {value!r}", key)
    check_depth_bounds(settings["min_depth"], settings["max_depth"])
    if settings["optimizer"] == "adam" and settings["momentum"]:
        raise SettingsError(
            f"momentum {settings['momentum']} is SGD's: Adam has none (drop --momentum)",
            "momentum",
        )
    folder = settings["data_dir"]
    if folder is not None and not Path(folder).expanduser().is_dir():
        raise SettingsError(f"data_dir {folder}: no such folder", "data_dir")
    if settings["strategy"] in ONE_SHOT:
        if settings["space"] != "depth" or settings["extended"]:
            raise SettingsError(
                "one-shot strategies train one supernet of the plain depth space (fixed widths): "
                "use --space depth without --extended",
                "strategy",
            )
        if settings["repeats"] != 1:
            raise SettingsError(
                "a one-shot search trains one supernet: run it again with another --seed "
                "instead of --repeats",
                "repeats",
            )
    if settings["extended"] and settings["space"] != "depth":
        raise SettingsError("--extended widens the depth space only", "extended")
    if settings["extended"] and settings["strategy"] == "grid":
        raise SettingsError(
            "the extended space has 4^6 x 3^6 architectures: use --strategy "
            "random or evolution with --max-trials",
            "extended",
        )


def grid_size(settings: dict) -> int:
    """Architectures x seeds of the plain depth space, or of the attention space."""
    if settings["space"] == "attention":
        size = 1
        for values in ATTENTION_CHOICES.values():
            size *= len(values)
        return size * int(settings["repeats"])
    return (int(settings["max_depth"]) - int(settings["min_depth"]) + 1) * int(settings["repeats"])


def space_size(settings: dict) -> int:
    size = grid_size(settings)
    if settings["extended"]:
        size *= 4 ** int(settings["max_depth"]) * 3 ** int(settings["max_depth"])
    return size


def max_trials(settings: dict) -> int:
    """The trial budget: --max-trials, else the whole grid."""
    return int(settings["max_trials"] or grid_size(settings))


def is_nas_settings(raw: dict) -> bool:
    """Whether an experiment file holds NAS settings (`nnisuite nas --config`), not an nnictl
    experiment: a strategy and no trial command."""
    from nnisuite.config.experiment import get_key

    return "strategy" in raw and get_key(raw, "trialCommand")[0] is None
