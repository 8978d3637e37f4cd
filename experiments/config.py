"""Experiment YAML files: load them as NNI does, find the trial they run, apply overrides.

    raw = load_yaml("experiments/mlp_tpe_digits.yaml")
    raw = apply_overrides(raw, max_trials=4, epochs=2, dataset="digits")
    config = to_nni_config(raw, "experiments/mlp_tpe_digits.yaml")   # nni ExperimentConfig

Relative paths (searchSpaceFile, trialCodeDirectory) are relative to the YAML file, as in nnictl.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from launcher import CLIENT_MODULE


class ConfigError(ValueError):
    """An experiment file that cannot be read at all."""


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such experiment file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return data


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


@dataclass
class TrialCommand:
    """A parsed trial command: `[python3 -m launcher [--python P]] MODULE [ARGS]`."""

    prefix: list[str]  # everything before the module name
    module: str | None  # e.g. trials.mlp; None when the command runs something else
    args: list[str]

    @classmethod
    def parse(cls, command: str) -> TrialCommand:
        tokens = shlex.split(command or "")
        if "-m" in tokens:
            i = tokens.index("-m") + 1
            if i < len(tokens) and tokens[i] == CLIENT_MODULE:
                i += 1
                if tokens[i : i + 1] == ["--python"]:
                    i += 2
                if i < len(tokens):
                    return cls(tokens[:i], tokens[i], tokens[i + 1 :])
            elif i < len(tokens):
                return cls(tokens[:i], tokens[i], tokens[i + 1 :])
        return cls(tokens, None, [])

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
        return TrialCommand(self.prefix, self.module, [*args, flag, str(value)])

    def __str__(self) -> str:
        parts = [*self.prefix, *([self.module] if self.module else []), *self.args]
        return shlex.join(parts)


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
) -> dict:
    """The runner's command-line overrides, applied to a loaded YAML mapping."""
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
            parsed = parsed.with_flag(flag, value)
        raw = set_key(raw, "trialCommand", str(parsed))
    return raw


def to_nni_config(raw: dict, config_file: str | Path):
    """NNI's own ExperimentConfig from a mapping, relative paths based at the YAML's folder."""
    from nni.experiment.config import ExperimentConfig
    from nni.experiment.config import utils as nni_utils

    nni_utils.set_base_path(Path(config_file).resolve().parent)
    try:
        return ExperimentConfig(**raw)
    finally:
        nni_utils.unset_base_path()
