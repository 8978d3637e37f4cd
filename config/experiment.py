"""Experiment YAML files: load them as NNI does, find the trial they run, apply overrides.

    raw = load_yaml("experiments/mlp_tpe_digits.yaml")
    raw = apply_overrides(raw, max_trials=4, epochs=2, dataset="digits")
    config = to_nni_config(raw, "experiments/mlp_tpe_digits.yaml")   # nni ExperimentConfig

Relative paths (searchSpaceFile, trialCodeDirectory) are relative to the YAML file, as in nnictl.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from nnisuite.launcher import CLIENT_MODULE


class ConfigError(ValueError):
    """An experiment file that cannot be read at all."""


# libyaml's safe loader where PyYAML was built with it (the wheels are): the same documents
# as yaml.safe_load, ~10x faster (the validation fuzz spent half its time scanning YAML)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LIBYAML_SWITCH = "NNISUITE_NNI_LIBYAML"


class _LibYamlForNNI:
    """PyYAML as NNI's config modules see it: safe_load through SAFE_LOADER (the same
    documents), every other name PyYAML's own."""

    def __getattr__(self, name):
        return getattr(yaml, name)

    @staticmethod
    def safe_load(stream):
        return yaml.load(stream, Loader=SAFE_LOADER)  # noqa: S506


def nni_reads_yaml_with_libyaml() -> None:
    """NNI 3.0 parses its algorithm registry (nni/tools/package_utils/config_manager.py, on every
    tuner name it checks or builds) and each searchSpaceFile (experiment_config.py, on every
    ExperimentConfig) with pure-Python yaml.safe_load: 13-17 ms a call, a third of the
    validation fuzz's CPU. This gives those two modules libyaml's safe loader, in this process
    only (NNI on disk untouched); idempotent. Off with NNISUITE_NNI_LIBYAML=0."""
    if SAFE_LOADER is yaml.SafeLoader or os.environ.get(LIBYAML_SWITCH) == "0":
        return
    from nni.experiment.config import experiment_config
    from nni.tools.package_utils import config_manager

    for module in (experiment_config, config_manager):
        if module.yaml is yaml:
            module.yaml = _LibYamlForNNI()


TYPES_SWITCH = "NNISUITE_NNI_TYPE_CACHE"
CACHED_VALUE_TYPES = (str, int, float, bool, type(None), Path)  # immutable, hashable


def nni_checks_config_types_once() -> None:
    """NNI 3.0's config classes (nni/experiment/config/base.py) ask
    `utils.fields(config)` for their fields, with their type hints, at every field they set,
    unpack, resolve and validate; each call runs typing.get_type_hints on the class and copies
    every field (35,716 calls in the validation fuzz), and each value is checked against its
    hint with typeguard. Here, in this process only (NNI on disk untouched; idempotent), a
    class's fields and hints are worked out once (classes do not change), and the answer of
    typeguard for an immutable value (str, int, float, bool, None, a path) or a config object
    (its class decides) against a hint is kept (it cannot change either); lists and dicts are
    checked each time as before. Same configs, same errors (tests/test_config.py compares them
    with NNI's own functions). Off with NNISUITE_NNI_TYPE_CACHE=0."""
    if os.environ.get(TYPES_SWITCH) == "0":
        return
    from nni.experiment.config import utils
    from nni.experiment.config.base import ConfigBase
    from nni.experiment.config.utils import internal

    if getattr(internal.fields, "nnisuite", False):
        return
    nni_is_instance = internal.is_instance

    @functools.cache
    def class_fields(cls) -> tuple:
        import dataclasses
        import typing

        hints = typing.get_type_hints(cls)
        return tuple(replace_type(f, hints[f.name]) for f in dataclasses.fields(cls))

    def fields(config) -> list:
        return list(class_fields(type(config)))  # NNI's callers only read name, type, default

    answers: dict = {}  # (the value's type, the value or None for a config, the hint)

    def is_instance(value, type_hint) -> bool:
        if type(value) in CACHED_VALUE_TYPES or isinstance(value, Path):
            key = (type(value), value, type_hint)
        elif isinstance(value, ConfigBase):  # a plain class: its type decides
            key = (type(value), None, type_hint)
        else:
            return nni_is_instance(value, type_hint)
        try:
            return answers[key]
        except TypeError:  # a hint that cannot be a key
            return nni_is_instance(value, type_hint)
        except KeyError:
            if len(answers) > 4096:
                answers.clear()
            answers[key] = found = nni_is_instance(value, type_hint)
            return found

    fields.nnisuite = True
    fields.nni, is_instance.nni = internal.fields, nni_is_instance  # NNI's own, for the tests
    for module in (internal, utils):
        module.fields, module.is_instance = fields, is_instance


def replace_type(field_, type_hint):
    """A copy of a dataclass field with its type hint resolved (NNI's utils.fields does so)."""
    field_ = copy.copy(field_)
    field_.type = type_hint
    return field_


MAX_VALUES = 1_000_000  # values a document may expand to once its aliases are followed
MAX_DEPTH = 100  # nesting levels a document may have (Python's recursion stops near 1000)


class Refused(yaml.YAMLError):
    """Valid YAML that nnisuite will not read; the message says why, in one line."""


def load_yaml(path: str | Path) -> dict:
    """The file's mapping (a fresh copy each call: callers may change it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such experiment file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): an experiment file is YAML text"
        ) from None
    try:
        data = parsed(text)
    except Refused as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc)[:500]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return copy.deepcopy(data)


@functools.lru_cache(maxsize=64)
def parsed(text: str):
    """A YAML document, parsed once per text: a plan's runs (variants x seeds) and the
    validation read the same few files hundreds of times (keyed by the text, not the file's
    time stamp, so a file rewritten within a clock tick is read again). Never change what it
    returns: load_yaml copies it."""
    loader = SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        checked(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def checked(root) -> None:
    """Refused: a mapping that repeats a key (PyYAML keeps the last silently: `maxTrialNumber: 2`
    then `maxTrialNumber: 500` read as 500), aliases that expand to more than MAX_VALUES
    values (a "billion laughs" document: each alias level multiplies what it expands to), or
    nesting deeper than MAX_DEPTH (every reader after this one recurses).
    Counted on the composed node graph, where an alias is one shared node: nothing expands."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if not done:
            stack.append((node, True))
            stack += [(c, False) for c in children if id(c) not in size]
            continue
        size[id(node)] = 1 + sum(size.get(id(c), 1) for c in children)
        depth[id(node)] = 1 + max((depth.get(id(c), 1) for c in children), default=0)
        if depth[id(node)] > MAX_DEPTH:
            raise Refused(
                f"line {node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep: "
                "refused"
            )
        if size[id(node)] > MAX_VALUES:
            raise Refused(
                f"line {node.start_mark.line + 1}: its aliases expand to more than "
                f"{MAX_VALUES:,} values (a 'billion laughs' document?): refused"
            )
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise Refused(
                            f"line {key.start_mark.line + 1}: key {key.value[:80]!r} given twice "
                            f"(first at line {seen[key.value]}): YAML would keep the last "
                            "silently; remove one"
                        )
                    seen[key.value] = key.start_mark.line + 1


def resolve(path_value: str, config_file: str | Path) -> Path:
    p = Path(os.path.expanduser(str(path_value)))
    return p if p.is_absolute() else (Path(config_file).resolve().parent / p).resolve()


def get_key(raw: dict, name: str):
    """A config value by NNI's rules: case and underscores ignored (trialCommand, trial_command)."""
    want = name.replace("_", "").lower()
    for key, value in raw.items():
        if str(key).replace("_", "").lower() == want:
            return key, value
    return None, None


def set_key(raw: dict, name: str, value) -> dict:
    key, _ = get_key(raw, name)
    out = dict(raw)
    out[key or name] = value
    return out


# What a trial that is not nnisuite's gets instead of a flag: its environment.
FOREIGN_ENV = {"--seed": "NNISUITE_SEED", "--threads": "OMP_NUM_THREADS"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PYTHON = re.compile(r"^python[0-9.]*$")
PYTHON_OPTIONS_WITH_VALUE = ("-W", "-X")


@dataclass
class TrialCommand:
    """A parsed trial command: `[NAME=value ...] PREFIX [MODULE | SCRIPT] ARGS`, where PREFIX
    is `python3 -m nnisuite.launcher [--python P]` or `python3 -m` (a module: nnisuite.trials.mlp,
    their.module), or `python3 [-u ...]` (a script: train.py); anything else (`bash run.sh`) is all
    prefix."""

    prefix: list[str]  # everything before the module or script name, env assignments aside
    module: str | None  # e.g. nnisuite.trials.mlp; None when the command runs no module
    args: list[str]
    script: str | None = None  # e.g. train.py, as written (relative to trialCodeDirectory)
    env: dict[str, str] = field(default_factory=dict)  # leading NAME=value assignments

    @classmethod
    def parse(cls, command: str) -> TrialCommand:
        tokens = shlex.split(command or "")
        env = {}
        while tokens and ENV_ASSIGNMENT.match(tokens[0]):
            name, value = tokens.pop(0).split("=", 1)
            env[name] = value
        if "-m" in tokens:
            i = tokens.index("-m") + 1
            if i < len(tokens) and tokens[i] == CLIENT_MODULE:
                i += 1
                if tokens[i : i + 1] == ["--python"]:
                    i += 2
                if tokens[i : i + 1] == ["--script"] and i + 1 < len(tokens):
                    return cls(tokens[: i + 1], None, tokens[i + 2 :], tokens[i + 1], env)
                if i < len(tokens):
                    return cls(tokens[:i], tokens[i], tokens[i + 1 :], None, env)
            elif i < len(tokens):
                return cls(tokens[:i], tokens[i], tokens[i + 1 :], None, env)
        if tokens and PYTHON.match(Path(tokens[0]).name):
            i = 1
            while i < len(tokens) and tokens[i].startswith("-") and tokens[i] not in ("-c", "-"):
                i += 2 if tokens[i] in PYTHON_OPTIONS_WITH_VALUE else 1
            if i < len(tokens) and tokens[i].endswith(".py"):
                return cls(tokens[:i], None, tokens[i + 1 :], tokens[i], env)
        return cls(tokens, None, [], None, env)

    @property
    def python(self) -> str | None:
        """The interpreter the command names (python3, /opt/env/bin/python), if any."""
        if self.prefix and PYTHON.match(Path(self.prefix[0]).name):
            return self.prefix[0]
        return None

    @property
    def through_launcher(self) -> bool:
        """Whether the command runs through nnisuite's client (`python3 -m nnisuite.launcher
        ...`)."""
        prefix = self.prefix
        return CLIENT_MODULE in prefix and prefix[prefix.index(CLIENT_MODULE) - 1 :][:1] == ["-m"]

    def flag(self, flag: str) -> str | None:
        """The value of `--flag value` or `--flag=value` in the trial's arguments, or None."""
        for i, tok in enumerate(self.args):
            if tok == flag and i + 1 < len(self.args):
                return self.args[i + 1]
            if tok.startswith(flag + "="):
                return tok[len(flag) + 1 :]
        return None

    def with_flag(self, flag: str, value) -> TrialCommand:
        """Set `--flag value`, replacing an existing `--flag value` or `--flag=value`."""
        args, i = [], 0
        while i < len(self.args):
            tok = self.args[i]
            if tok == flag:
                i += 2
                continue
            if tok.startswith(flag + "="):
                i += 1
                continue
            args.append(tok)
            i += 1
        return replace(self, args=[*args, flag, str(value)])

    def with_env(self, name: str, value) -> TrialCommand:
        """Set the environment variable `name` for the trial (a `NAME=value` prefix)."""
        return replace(self, env={**self.env, name: str(value)})

    def __str__(self) -> str:
        named = [self.module] if self.module else [self.script] if self.script else []
        assignments = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        return " ".join([*assignments, shlex.join([*self.prefix, *named, *self.args])])


def apply_overrides(
    raw: dict,
    *,
    max_trials: int | None = None,
    concurrency: int | None = None,
    experiment_dir: str | None = None,
    dataset: str | None = None,
    epochs: int | None = None,
    name: str | None = None,
    trial_flags: dict | None = None,
    own_trial: bool = True,
) -> dict:
    """The runner's command-line overrides, applied to a loaded YAML mapping. For a trial that
    is not nnisuite's (`own_trial=False`: nnisuite.config.trial says which) the seed and thread
    count go into its environment (NNISUITE_SEED, OMP_NUM_THREADS) instead of flags, and
    --dataset / --epochs, which only nnisuite's trials take, are a ConfigError."""
    if max_trials is not None:
        raw = set_key(raw, "maxTrialNumber", int(max_trials))
    if concurrency is not None:
        raw = set_key(raw, "trialConcurrency", int(concurrency))
    if experiment_dir is not None:
        raw = set_key(raw, "experimentWorkingDirectory", str(Path(experiment_dir).resolve()))
    if name is not None:
        raw = set_key(raw, "experimentName", name)
    flags = dict(trial_flags or {})
    if dataset is not None:
        flags["--dataset"] = dataset
    if epochs is not None:
        flags["--epochs"] = int(epochs)
    if concurrency is not None:  # one core per concurrent trial, at least one thread
        flags.setdefault("--threads", max(1, (os.cpu_count() or 1) // int(concurrency)))
    if flags:
        _, command = get_key(raw, "trialCommand")
        parsed = TrialCommand.parse(command or "")
        for flag, value in flags.items():
            if own_trial:
                parsed = parsed.with_flag(flag, value)
            elif flag in FOREIGN_ENV:
                parsed = parsed.with_env(FOREIGN_ENV[flag], value)
            else:
                raise ConfigError(
                    f"{flag} sets a flag of nnisuite's own trials; {command!r} is your own "
                    f"trial: put the setting in its trialCommand instead"
                )
        raw = set_key(raw, "trialCommand", str(parsed))
    return raw


def to_nni_config(raw: dict, config_file: str | Path):
    """NNI's own ExperimentConfig from a mapping, relative paths based at the YAML's folder."""
    from nni.experiment.config import ExperimentConfig
    from nni.experiment.config import utils as nni_utils

    nni_reads_yaml_with_libyaml()
    nni_checks_config_types_once()
    nni_utils.set_base_path(Path(config_file).resolve().parent)
    try:
        return ExperimentConfig(**raw)
    finally:
        nni_utils.unset_base_path()
