"""NNI's search-space format ({name: {_type, _value}}): the schema, checks, and Optuna's view.

    space = read_space_file("search_spaces/mlp_tpe.yaml")
    problems = check_space_entry("lr", space["lr"], "mlp_tpe.yaml")   # [] when well formed
    dist = optuna_distribution("lr", space["lr"])   # FloatDistribution(0.0001, 0.1, log=True)

Types and `_value` shapes follow NNI's reference: choice [v, ...]; uniform / loguniform /
randint [low, high]; quniform / qloguniform [low, high, q]; normal / lognormal [mu, sigma];
qnormal / qlognormal [mu, sigma, q]. randint's high is exclusive.
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path

from nnisuite.config.experiment import ConfigError, get_key, load_yaml, resolve
from nnisuite.config.problem import Problem

TWO_BOUNDS = {"uniform", "loguniform", "randint"}
THREE_BOUNDS = {"quniform", "qloguniform"}
NORMALS = {"normal", "lognormal"}
Q_NORMALS = {"qnormal", "qlognormal"}
SPACE_TYPES = {"choice"} | TWO_BOUNDS | THREE_BOUNDS | NORMALS | Q_NORMALS


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_space_entry(name: str, spec, file: str) -> list[Problem]:
    """One search-space parameter: `_type` known, `_value` well formed."""

    def bad(message, fix):
        return [Problem(file, name, message, fix)]

    if not isinstance(spec, dict) or "_type" not in spec or "_value" not in spec:
        return bad(
            "must be a mapping with `_type` and `_value`",
            "write it as {_type: choice, _value: [...]}",
        )
    kind, value = spec["_type"], spec["_value"]
    if kind not in SPACE_TYPES:
        close = difflib.get_close_matches(str(kind), sorted(SPACE_TYPES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return bad(f"unknown _type {kind!r}", f"{hint}use one of {', '.join(sorted(SPACE_TYPES))}")
    if not isinstance(value, list):
        return bad(
            f"_value of a {kind} must be a list, got {type(value).__name__}",
            "write _value as a YAML list",
        )
    if kind == "choice":
        if not value:
            return bad("choice with an empty _value", "list at least one option")
        return []
    want = 3 if kind in THREE_BOUNDS | Q_NORMALS else 2
    if len(value) != want or not all(is_number(v) for v in value):
        shape = {2: "[low, high]", 3: "[low, high, q]"}[want]
        if kind in NORMALS | Q_NORMALS:
            shape = "[mu, sigma]" if want == 2 else "[mu, sigma, q]"
        return bad(
            f"_value of {kind} must be {want} finite numbers {shape}, got {value}",
            f"write _value as {shape}",
        )
    if kind in NORMALS | Q_NORMALS:
        if value[1] <= 0:
            return bad(f"sigma must be > 0, got {value[1]}", "use a positive sigma")
    else:
        low, high = value[0], value[1]
        if low >= high:
            return bad(
                f"low >= high in {value}",
                f"write _value as [{min(low, high)}, "
                f"{max(low, high)}{', ...' if want == 3 else ''}] with low < high",
            )
        if kind in ("loguniform", "qloguniform") and low <= 0:
            return bad(
                f"{kind} bounds must be > 0, got low = {low}",
                "use a positive lower bound (e.g. 1e-5)",
            )
    if want == 3 and value[2] <= 0:
        return bad(f"q must be > 0, got {value[2]}", "use a positive step q")
    return []


def space_values(spec) -> list:
    """Representative values of a space entry, to check against the trial field's type."""
    kind, value = spec["_type"], spec["_value"]
    if kind == "choice":
        return list(value)
    if kind == "randint":
        return [int(value[0])]
    if kind in THREE_BOUNDS | Q_NORMALS:
        q = value[2]
        return [q] if float(q).is_integer() and float(value[0]).is_integer() else [value[0] + 0.5]
    return [float(value[0]) + 0.5]  # continuous: a float that is not an integer


def space_extremes(spec) -> list:
    """The values of a space entry a trial's range checks must accept: every choice, a range's
    two ends (randint's upper end is exclusive); none for the unbounded normals."""
    kind, value = spec["_type"], spec["_value"]
    if kind == "choice":
        return [v for v in value if not isinstance(v, dict)]
    if kind == "randint":
        return [int(value[0]), int(value[1]) - 1]
    if kind in ("uniform", "loguniform", "quniform", "qloguniform"):
        return [value[0], value[1]]
    return []


def read_space_file(path: str | Path) -> dict:
    """A search-space YAML (or JSON) file as a mapping; ConfigError when unreadable."""
    return load_yaml(path)


def load_space(raw: dict, path: Path) -> tuple[dict | None, str, list[Problem]]:
    """The space an experiment mapping names: (space, file it came from, problems)."""
    _, space_file = get_key(raw, "searchSpaceFile")
    _, inline = get_key(raw, "searchSpace")
    if space_file is None:
        if isinstance(inline, dict):
            return inline, str(path), []
        return (
            None,
            str(path),
            [Problem(str(path), "searchSpaceFile", "no search space", "set searchSpaceFile")],
        )
    if not isinstance(space_file, str):
        return (
            None,
            str(path),
            [
                Problem(
                    str(path),
                    "searchSpaceFile",
                    f"must be a path, got {space_file!r}",
                    "give the space file's path (relative to this file)",
                )
            ],
        )
    space_path = resolve(space_file, path)
    if not space_path.is_file():
        return (
            None,
            str(space_path),
            [
                Problem(
                    str(path),
                    "searchSpaceFile",
                    f"{space_path} does not exist",
                    "fix the path (relative to the YAML file)",
                )
            ],
        )
    try:
        space = read_space_file(space_path)
    except ConfigError as exc:
        return (
            None,
            str(space_path),
            [
                Problem(
                    str(space_path),
                    "search space",
                    str(exc),
                    "write a mapping of name: {_type, _value}",
                )
            ],
        )
    return space, str(space_path), []


def key_lines(space_file: str | Path, inline: bool) -> dict[str, int]:
    """name -> the 1-based line of each search-space key in its file (for `file:line`
    reports); `inline`: the space is the experiment file's `searchSpace` mapping."""
    import yaml

    try:
        node = yaml.compose(Path(space_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    if inline and isinstance(node, yaml.MappingNode):
        node = next(
            (v for k, v in node.value if str(k.value).replace("_", "").lower() == "searchspace"),
            None,
        )
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


# ---------------------------------------------------------------- Optuna's view of a space


class InexpressibleError(ValueError):
    """A search-space type Optuna has no distribution for."""


def ambiguous(values) -> bool:
    """Whether two of `values` are equal to Python but of different types (True == 1 == 1.0,
    False == 0): Optuna's categorical would take one for the other."""
    values = list(values)
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            if type(a) is not type(b) and a == b:
                return True
    return False


def choice_label(value) -> str:
    """A choice as JSON text (`1`, `"1"`, `true`): distinct for values Python counts equal."""
    return json.dumps(value, ensure_ascii=False)


def optuna_value(spec: dict, value):
    """A parameter's value as the Optuna distribution of `spec` holds it."""
    if spec.get("_type") == "choice" and ambiguous(spec.get("_value") or []):
        return choice_label(value)
    return value


def on_grid(value: float, q: float) -> bool:
    return abs(value / q - round(value / q)) < 1e-9


def optuna_distribution(name: str, spec: dict):
    """The Optuna distribution that holds every value NNI's `spec` samples.

    choice: categorical (as JSON text when two choices are equal to Python across types,
    `optuna_value`); quniform: NNI samples clip(round(x / q) * q, low, high), so the values are
    the multiples of q inside [low, high] plus low and high themselves: a stepped distribution
    when low and high are on q's grid (the same values), else an unstepped one over
    [low, high] (Optuna's steps start at low and would miss NNI's multiples of q)."""
    from optuna import distributions as d

    kind, value = spec["_type"], spec["_value"]
    if kind == "choice":
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
            raise InexpressibleError(
                f"{name}: a choice of nested spaces or non-scalar values has no Optuna distribution"
            )
        if ambiguous(value):
            return d.CategoricalDistribution([choice_label(v) for v in value])
        return d.CategoricalDistribution(list(value))
    if kind == "uniform":
        return d.FloatDistribution(float(value[0]), float(value[1]))
    if kind == "loguniform":
        return d.FloatDistribution(float(value[0]), float(value[1]), log=True)
    if kind == "randint":
        return d.IntDistribution(int(value[0]), int(value[1]) - 1)  # NNI's high is exclusive
    if kind == "quniform":
        low, high, q = (float(v) for v in value)
        integers = all(float(v).is_integer() for v in value)
        step = q if on_grid(low, q) and on_grid(high, q) else None
        if integers:
            return d.IntDistribution(int(low), int(high), step=int(step or 1))
        return d.FloatDistribution(low, high, step=step)
    raise InexpressibleError(
        f"{name}: NNI's _type {kind!r} has no Optuna distribution (Optuna offers categorical, "
        "uniform, log-uniform, stepped uniform and integer ones)"
    )


def optuna_distributions(space: dict) -> dict:
    return {name: optuna_distribution(name, spec) for name, spec in space.items()}


def suggest(trial, name: str, distribution):
    """Ask an Optuna trial for `name` from `distribution` (Optuna has no public call that
    takes a distribution object)."""
    from optuna import distributions as d

    if isinstance(distribution, d.CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, d.IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    return trial.suggest_float(
        name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
    )
