"""Check an experiment YAML and its search space before anything runs.

    python -m experiments.validate experiments/*.yaml      # exit 0: all good; 2: problems

Each problem is one line naming the file, the key and the fix: unknown `_type`, malformed
`_value` (empty choice, low >= high, non-positive bounds of log types), a space key the trial
does not accept (the log's `feature1`), a value the trial's type cannot take, a required trial
parameter nobody sets, bad trial-command flags, a missing space file, and NNI's own
`ExperimentConfig` validation (unknown config keys, missing fields).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import io
import sys
from pathlib import Path

from experiments.config import ConfigError, TrialCommand, get_key, load_yaml, resolve
from experiments.problem import Problem
from experiments.search_space import check_space_entry, load_space, space_values
from launcher import trial_command


def trial_params_class(module_name: str, code_dir: Path):
    """The parameter dataclass a trial module declares as PARAMS, or None. A module that has
    no top-level PARAMS (a user's own trial) is not imported: importing a trial runs it."""
    import ast
    import importlib.util

    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ImportError(f"no module named {module_name!r}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    declares = any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "PARAMS" for t in node.targets)
        for node in tree.body
    )
    if not declares:
        return None
    return getattr(importlib.import_module(module_name), "PARAMS", None)


def check_trial(space: dict, command: str, code_dir: Path, file: str) -> list[Problem]:
    from trials.params import CLI_ONLY, ParameterError, build_parser, coerce, field_types

    parsed = TrialCommand.parse(command)
    if parsed.module is None:
        return [
            Problem(
                file,
                "trialCommand",
                f"cannot tell which trial {command!r} runs",
                f"run a trial module: {trial_command('trials.mlp')} [FLAGS]",
            )
        ]
    try:
        cls = trial_params_class(parsed.module, code_dir)
    except ImportError as exc:
        return [
            Problem(
                file,
                "trialCommand",
                f"trial module {parsed.module!r} not found under {code_dir} ({exc})",
                "check trialCodeDirectory and the module",
            )
        ]
    if cls is None:
        return []  # a user's own trial without a PARAMS declaration: nothing to check against
    problems = []
    types = field_types(cls)
    accepted = sorted(n for n in types if n not in CLI_ONLY)
    for name, spec in space.items():
        if name not in types or name in CLI_ONLY:
            close = difflib.get_close_matches(name, accepted, n=1)
            fix = f"rename it to {close[0]!r}" if close else "remove it or add it to the trial"
            why = " (a command-line setting, not tunable)" if name in CLI_ONLY else ""
            problems.append(
                Problem(
                    file,
                    f"search space {name!r}",
                    f"{parsed.module} has no tunable parameter {name!r}{why}; "
                    f"it accepts {', '.join(accepted)}",
                    fix,
                )
            )
            continue
        if check_space_entry(name, spec, file):
            continue  # malformed: reported by the space check
        for value in space_values(spec):
            try:
                coerce(name, value, types[name])
            except ParameterError:
                problems.append(
                    Problem(
                        file,
                        f"search space {name!r}",
                        f"value {value!r} is not a valid {types[name].__name__} "
                        f"for {parsed.module}",
                        f"give {name} {types[name].__name__} values",
                    )
                )
                break
    # Flags of the trial command, parsed by the trial's own parser.
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            flags = vars(build_parser(cls, parsed.module, "").parse_args(parsed.args))
    except SystemExit:
        message = err.getvalue().strip().splitlines()[-1] if err.getvalue() else "bad flags"
        problems.append(
            Problem(file, "trialCommand", message, f"see python -m {parsed.module} --help")
        )
        flags = {}
    for name, raw in flags.items():
        if raw is not None:
            try:
                coerce(name, raw, types[name])
            except ParameterError as exc:
                problems.append(Problem(file, "trialCommand", str(exc), "fix the flag's value"))
    for f in dataclasses.fields(cls):
        has_default = not (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        if not has_default and f.name not in space and flags.get(f.name) is None:
            flag = "--" + f.name.replace("_", "-")
            problems.append(
                Problem(
                    file,
                    f.name,
                    f"required parameter of {parsed.module} is "
                    "set by neither the search space nor the trial command",
                    f"add it to the search space or pass {flag} in trialCommand",
                )
            )
    return problems


def nni_config_problems(raw: dict, path: Path) -> list[Problem]:
    """NNI's own validation: unknown keys, missing fields, bad values."""
    from nni.experiment.config import ExperimentConfig
    from nni.experiment.config import utils as nni_utils

    from experiments.config import to_nni_config

    try:
        to_nni_config(raw, path).validate()
    except AttributeError as exc:  # NNI: "ExperimentConfig does not have field(s) a, b"
        known = [nni_utils.camel_case(f.name) for f in dataclasses.fields(ExperimentConfig)]
        lowered = {nni_utils.case_insensitive(k): k for k in raw}
        problems = []
        text = str(exc).split("field(s)")[-1]
        for bad_key in (k.strip() for k in text.split(",")):
            original = lowered.get(bad_key, bad_key)
            close = difflib.get_close_matches(str(original), known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "remove it (see NNI's reference)"
            problems.append(Problem(str(path), str(original), "unknown config key", fix))
        return problems or [Problem(str(path), "config", str(exc), "see NNI's config reference")]
    except Exception as exc:  # NNI raises ValueError / AssertionError / TypeError on bad values
        message = str(exc) or type(exc).__name__
        return [
            Problem(
                str(path),
                "config",
                message.splitlines()[0],
                "see https://nni.readthedocs.io/en/stable/reference/experiment_config.html",
            )
        ]
    return []


def nas_settings_problems(raw: dict, path: Path) -> list[Problem]:
    from nas.settings import DEFAULTS, SettingsError, check

    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        return [
            Problem(str(path), k, "unknown NAS setting", f"use one of {sorted(DEFAULTS)}")
            for k in unknown
        ]
    try:
        check(DEFAULTS | {k: v for k, v in raw.items() if v is not None})
    except SettingsError as exc:
        return [Problem(str(path), "NAS settings", str(exc), "see python -m nas --help")]
    return []


def validate(path: str | Path, raw: dict | None = None) -> list[Problem]:
    """Every problem of one experiment file (empty: it is fine). `raw` overrides the file."""
    path = Path(path)
    try:
        raw = raw if raw is not None else load_yaml(path)
    except ConfigError as exc:
        return [Problem(str(path), "file", str(exc).split(": ", 1)[-1], "give a valid YAML file")]
    if "strategy" in raw and get_key(raw, "trialCommand")[1] is None:
        return nas_settings_problems(raw, path)  # settings for `python -m nas`, not nnictl
    space, space_file, problems = load_space(raw, path)
    if space is not None:
        for name, spec in space.items():
            problems += check_space_entry(str(name), spec, space_file)
        _, code_dir = get_key(raw, "trialCodeDirectory")
        _, command = get_key(raw, "trialCommand")
        if command:
            problems += check_trial(space, command, resolve(code_dir or ".", path), str(path))
    if not problems:
        problems += nni_config_problems(raw, path)
    return problems


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", help="experiment YAML files")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    failed = False
    for file in args.files:
        problems = validate(file)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            failed = True
        else:
            print(f"ok: {file}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
