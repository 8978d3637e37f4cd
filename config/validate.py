"""Check an experiment YAML (or NAS settings file) before anything starts.

    python -m nnisuite.config.validate experiments/*.yaml      # exit 0: all good; 2: problems

Each problem is one line (`error:`, `warning:` or `note:`) naming the file, the key, what is
wrong and the fix; only errors fail (exit 2). The runners
(`python -m nnisuite.study.run`, `python -m nnisuite.nas`) run the same checks first, and `nnictl
create` users get them with this command. Checked:
- every top-level key: a key NNI knows (did-you-mean for typos), of the right type and range
  (`trialConcurrency must be a positive integer, got -1`), the required ones present;
- the search space: known `_type`, well-formed `_value` (nnisuite.config.search_space);
- the trial, when it is one of nnisuite's (`python3 -m nnisuite.launcher nnisuite.trials.mlp
  ...`): a space key it does not accept (the log's `feature1`), a value its type cannot take, a
  value or flag its own range checks refuse, a required parameter nobody sets, bad trial-command
  flags;
- the trial, when it is your own (`python3 train.py`, `python3 -m your.module`, `bash run.sh`,
  with trialCodeDirectory relative to the YAML as in nnictl): that its file exists, and for a
  Python file the parameter names it reads from nni.get_next_parameter(), read from its source
  (nothing is imported or run): an error at file:line for a name read that the space lacks (it
  would crash, get None, or silently train on its default when the name is close to a space
  name: `p.get("lrate", 0.1)` beside `lr_rate`), a warning for a name read with a default and
  nothing like it in the space (an optional parameter) and for a space name never read (tuning
  nothing), each with a did-you-mean; one note says what was not checked. Names a dict of
  defaults holds (`params = {...}; params.update(nni.get_next_parameter())`, `{**defaults,
  **p}`) or argparse declares (`add_argument` destinations under NNI's `merge_parameter(args,
  p)`, `vars(args).update(p)`) are untuned on purpose; a space name never read beside such a
  near name the trial reads (space `features1`, trial `feature1`: the log's defect) is an
  error naming both lines. Functions the parameters are handed to (`main(p)`, `train(**p)`),
  of the same file or imported from a local module (`from model import build`), are followed,
  and local modules the file imports are read when the call is there. Not seen: keys that are
  not string literals (`p[name]`), iteration over the parameters, the dict handed to a
  function reached another way (`model.build(**p)`) or stored in an object, argparse options
  added in another file, exec / getattr: where the scan loses track it says so at file:line
  and reports no unread names;
- tuner / assessor / advisor (nnisuite.config.algorithms): a name in NNI's registry, of the right
  kind, its packages installed, classArgs its constructor takes with fitting values, and
  search-space types the tuner can sample. A custom `className` is imported from its
  `codeDirectory` to read its constructor, as NNI's dispatcher will import it: validating a
  file from someone else that names one runs that folder's module (read it first); a module
  that fails to import is one error at its file:line;
- last, NNI's own ExperimentConfig validation, its bare assertions given a message.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import io
import re
import sys
import traceback
from pathlib import Path

from nnisuite.config.algorithms import algorithm_problems
from nnisuite.config.experiment import ConfigError, get_key, load_yaml
from nnisuite.config.nas_settings import is_nas_settings
from nnisuite.config.problem import Problem, errors, report
from nnisuite.config.search_space import check_space_entry, load_space, space_values
from nnisuite.flags import Parser
from nnisuite.launcher import trial_command
from nnisuite.shipped import find_study

NNI_DOCS = "see https://nni.readthedocs.io/en/stable/reference/experiment_config.html"
LOG_LEVELS = ("fatal", "error", "warning", "info", "debug", "trace")
PLATFORMS = (
    "local",
    "remote",
    "openpai",
    "aml",
    "dlc",
    "kubeflow",
    "frameworkcontroller",
    "adl",
)

DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*[smhd]\s*$")


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _duration(x) -> bool:
    return (
        (_int(x) or isinstance(x, float))
        and x > 0
        or isinstance(x, str)
        and bool(DURATION.match(x))
    )


def _platforms(x) -> bool:
    items = x if isinstance(x, list) else [x]
    return bool(items) and all(
        isinstance(i, dict) and isinstance(i.get("platform"), str) and i["platform"] in PLATFORMS
        for i in items
    )


def _text(x) -> bool:
    return isinstance(x, str) and bool(x.strip())


def _mapping(x) -> bool:
    return isinstance(x, dict)


def _gpu_indices(x) -> bool:
    if x is None or (_int(x) and x >= 0):
        return True
    if isinstance(x, str):
        return all(part.strip().isdigit() for part in x.split(","))
    return isinstance(x, list) and all(_int(i) and i >= 0 for i in x)


# camelCase key -> (test of its value, what it must be, an example). None is "not set" for the
# optional keys.
RULES = {
    "experimentName": (lambda x: isinstance(x, str), "a string", "mlp_tpe"),
    "experimentType": (lambda x: x == "hpo", "hpo (NAS runs with python -m nnisuite.nas)", "hpo"),
    "searchSpaceFile": (_text, "a path (relative to this file)", "../search_spaces/mlp_tpe.yaml"),
    "searchSpace": (lambda x: isinstance(x, dict), "a mapping of name: {_type, _value}", "{}"),
    "trialCommand": (_text, "a command line (a string)", trial_command("nnisuite.trials.mlp")),
    "trialCodeDirectory": (_text, "a path", ".."),
    "trialConcurrency": (lambda x: _int(x) and x > 0, "a positive integer", "2"),
    "trialGpuNumber": (lambda x: _int(x) and x >= 0, "an integer >= 0", "1"),
    "maxExperimentDuration": (_duration, "a duration (s, m, h or d)", "2h"),
    "maxTrialNumber": (lambda x: _int(x) and x > 0, "a positive integer", "10"),
    "maxTrialDuration": (_duration, "a duration (s, m, h or d)", "30m"),
    "nniManagerIp": (_text, "an IP address or host name", "192.0.2.1"),
    "useAnnotation": (lambda x: isinstance(x, bool), "true or false", "false"),
    "debug": (lambda x: isinstance(x, bool), "true or false", "false"),
    "logLevel": (
        lambda x: isinstance(x, str) and x in LOG_LEVELS,
        f"one of {', '.join(LOG_LEVELS)}",
        "info",
    ),
    "experimentWorkingDirectory": (_text, "a path", "~/nni-experiments"),
    "tunerGpuIndices": (_gpu_indices, "GPU indices (an integer, a list or '0,1')", "0"),
    "tuner": (_mapping, "a mapping: name (or className) and classArgs", "{name: TPE}"),
    "assessor": (_mapping, "a mapping: name and classArgs", "{name: Medianstop}"),
    "advisor": (_mapping, "a mapping: name and classArgs", "{name: Hyperband}"),
    "trainingService": (
        _platforms,
        f"a mapping with a platform ({', '.join(PLATFORMS)})",
        "{platform: local}",
    ),
    "sharedStorage": (_mapping, "a mapping (NNI's sharedStorage)", "{storageType: NFS, ...}"),
}
REQUIRED = ("trialCommand", "trialConcurrency", "trainingService", "tuner")


def config_key_problems(raw: dict, file: str) -> list[Problem]:
    """Top-level keys: known to NNI, of the right type and range, the required ones set."""
    problems = []
    canonical = {k.lower(): k for k in RULES}
    for key, value in raw.items():
        name = canonical.get(str(key).replace("_", "").lower())
        if name is None:
            close = difflib.get_close_matches(str(key), list(RULES), n=1)
            fix = f"did you mean {close[0]!r}?" if close else "remove it (NNI does not know it)"
            problems.append(Problem(file, str(key), "unknown config key", fix))
            continue
        if value is None and name not in REQUIRED:
            continue
        test, what, example = RULES[name]
        if not test(value):
            shown = repr(value) if not isinstance(value, dict) else "a mapping"
            problems.append(
                Problem(file, str(key), f"{name} must be {what}, got {shown}", f"{name}: {example}")
            )
    for name in REQUIRED:
        if name == "tuner" and get_key(raw, "advisor")[0] is not None:
            continue  # NNI 3.0 reads a lone advisor as the tuner
        if get_key(raw, name)[0] is None:
            problems.append(Problem(file, name, "required key missing", f"add {name}"))
    _, advisor = get_key(raw, "advisor")
    _, tuner = get_key(raw, "tuner")
    if advisor is not None and tuner is not None:
        problems.append(Problem(file, "advisor", "set with tuner", "NNI 3.0: keep only tuner"))
    if (
        get_key(raw, "searchSpaceFile")[1] is not None
        and get_key(raw, "searchSpace")[1] is not None
    ):
        problems.append(Problem(file, "searchSpace", "set with searchSpaceFile", "keep one"))
    return problems


def check_trial(space: dict, raw: dict, path: Path, space_file: str) -> list[Problem]:
    """The trial against the space: nnisuite's own trials by their PARAMS dataclass; anyone
    else's Python trial by reading its source (nnisuite.config.scan); a note for what cannot be
    checked."""
    from nnisuite.config.trial import Trial

    trial = Trial.of(raw, path)
    file = str(path)
    missing = trial.missing()
    if missing:
        return [Problem(file, "trialCommand", missing, "check trialCommand and trialCodeDirectory")]
    if trial.own:
        return check_own_trial(space, trial, file)
    if trial.source is None:
        return [
            Problem(
                file,
                "trialCommand",
                f"{str(trial.command)!r} is not a Python file nnisuite can read: its parameter "
                "names, flags and value types are not checked",
                "run it once by hand, or make the command python3 SCRIPT.py",
                "note",
            )
        ]
    from nnisuite.config.scan import compare, scan_trial
    from nnisuite.config.search_space import key_lines

    inline = Path(space_file).resolve() == path.resolve()
    scan = scan_trial(trial.source, trial.code_dir)
    problems = compare(scan, space, space_file, key_lines(space_file, inline))
    problems.append(
        Problem(
            file,
            "trialCommand",
            f"{trial.label} is your own trial: checked are the parameter names it reads; "
            "not checked are value types, its flags and its required settings (only nnisuite's "
            "trials declare them)",
            "nnisuite validate --help says what the scan sees",
            "note",
        )
    )
    return problems


@functools.lru_cache(maxsize=16)
def flag_parser(cls, module: str) -> argparse.ArgumentParser:
    """The trial's own flag parser (nnisuite.trials.params.build_parser), built once per trial
    class: parse_args leaves a parser as it was."""
    from nnisuite.trials.params import build_parser

    return build_parser(cls, module, "")


def check_own_trial(space: dict, trial, file: str) -> list[Problem]:
    """nnisuite's own trial: every space key a field of its PARAMS, values of its types, its
    flags parsed by its own parser, required fields set."""
    from nnisuite.trials.params import CLI_ONLY, ParameterError, coerce, field_types

    parsed = trial.command
    try:
        cls = trial.params_class()
    except ImportError as exc:
        return [
            Problem(
                file,
                "trialCommand",
                f"trial module {parsed.module!r} cannot be imported from {trial.code_dir} ({exc})",
                "check trialCodeDirectory and the module",
            )
        ]
    if cls is None:
        return []
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
            flags = vars(flag_parser(cls, parsed.module).parse_args(parsed.args))
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
    problems += range_problems(cls, types, flags, space, file, parsed.module)
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


def range_problems(cls, types, flags: dict, space: dict, file: str, module: str) -> list[Problem]:
    """The trial's own range checks (its PARAMS' check(): --epochs 0, --dataset imagenet, a
    width past its maximum) on the trial command's flags, then on every choice and both ends of
    every range of the space, each over those flags: what the trial would refuse at run time,
    refused before anything starts. Paths (--out, --data-dir) are the worker's: not looked at."""
    from nnisuite.config.search_space import space_extremes
    from nnisuite.trials.params import ParameterError, coerce

    given = {}
    for name, raw in flags.items():
        if raw is not None and name in types and name not in ("out", "data_dir"):
            try:
                given[name] = coerce(name, raw, types[name])
            except ParameterError:
                return []  # a bad type: reported already
    try:
        base = cls(**given)
    except TypeError:
        return []  # a required field the space sets: checked per value below is not possible
    try:
        base.check()
    except ParameterError as exc:
        return [Problem(file, "trialCommand", f"{module} refuses it: {exc}", "fix the flag")]
    problems = []
    for name, spec in space.items():
        if name not in types or check_space_entry(name, spec, file):
            continue
        for value in space_extremes(spec):
            try:
                dataclasses.replace(base, **{name: coerce(name, value, types[name])}).check()
            except ParameterError as exc:
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
                problems.append(
                    Problem(
                        file,
                        f"search space {name!r}",
                        f"value {shown}: {module} refuses it ({exc}); every trial given it fails",
                        f"keep {name} within what {module} accepts",
                    )
                )
                break
    return problems


def nni_config_problems(raw: dict, path: Path) -> list[Problem]:
    """NNI's own validation, last; its bare `assert`s get the failing check as the message."""
    from nni.experiment.config import ExperimentConfig
    from nni.experiment.config import utils as nni_utils

    from nnisuite.config.experiment import to_nni_config

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            to_nni_config(raw, path).validate()
    except AttributeError as exc:  # NNI: "ExperimentConfig does not have field(s) a, b"
        if "does not have field" not in str(exc):
            return [Problem(str(path), "config", f"NNI cannot read it ({exc})", NNI_DOCS)]
        known = [nni_utils.camel_case(f.name) for f in dataclasses.fields(ExperimentConfig)]
        problems = []
        for bad_key in (k.strip() for k in str(exc).split("field(s)")[-1].split(",")):
            close = difflib.get_close_matches(bad_key, known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "remove it (see NNI's reference)"
            problems.append(Problem(str(path), bad_key, "unknown config key", fix))
        return problems
    except AssertionError as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        check = (frame.line or "").strip()
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        message = str(exc) or f"NNI's check `{check}` failed ({where})"
        return [Problem(str(path), "config", message, NNI_DOCS)]
    except Exception as exc:  # noqa: BLE001 - NNI raises ValueError / TypeError on bad values
        message = (str(exc) or type(exc).__name__).splitlines()[0]
        return [Problem(str(path), "config", message, NNI_DOCS)]
    return []


def nas_settings_problems(raw: dict, path: Path) -> list[Problem]:
    from nnisuite.config.nas_settings import SettingsError, check, settings_from

    try:
        check(settings_from(raw))
    except SettingsError as exc:
        key = getattr(exc, "key", None) or "NAS settings"
        return [Problem(str(path), key, str(exc), "see python -m nnisuite.nas --help")]
    return []


def plan_problems(path: Path) -> list[Problem]:
    """A study-of-studies file: the file itself, then every variant's run (seed 0)."""
    from nnisuite.config.plan import RepeatError, load_plan, run_config

    try:
        plan = load_plan(path)
    except RepeatError as exc:
        return [
            Problem(str(path), "study", str(exc).split(": ", 1)[-1], "see nnisuite.study.repeat")
        ]
    from nnisuite.config.plan import is_nas, nas_settings

    problems = []
    for variant in plan["variants"]:
        if is_nas(plan):
            from nnisuite.config.nas_settings import SettingsError, check

            try:
                check(nas_settings(plan, variant, 0))
            except SettingsError as exc:
                problems.append(Problem(str(path), f"variant {variant}", str(exc), "see nas"))
            continue
        for problem in validate(plan["base"], run_config(plan, variant, 0, None)):
            problem.key = f"variant {variant}: {problem.key}"
            problems.append(problem)
    return problems


def validate(path: str | Path, raw: dict | None = None) -> list[Problem]:
    """Every problem of one experiment file (empty: it is fine). `raw` overrides the file."""
    path = Path(path)
    try:
        raw = raw if raw is not None else load_yaml(path)
    except ConfigError as exc:
        return [Problem(str(path), "file", str(exc).split(": ", 1)[-1], "give a valid YAML file")]
    if is_nas_settings(raw):
        return nas_settings_problems(raw, path)  # settings for `python -m nnisuite.nas`, not nnictl
    from nnisuite.config.plan import is_plan

    if is_plan(raw):
        return plan_problems(path)  # a study of studies for `python -m nnisuite.study.repeat`
    problems = config_key_problems(raw, str(path))
    space, space_file, space_problems = load_space(raw, path)
    problems += [p for p in space_problems if p.key not in {q.key for q in problems}]
    if isinstance(space, dict):
        for name, spec in space.items():
            problems += check_space_entry(str(name), spec, space_file)
        _, code_dir = get_key(raw, "trialCodeDirectory")
        _, command = get_key(raw, "trialCommand")
        if isinstance(command, str) and command.strip() and isinstance(code_dir, (str, type(None))):
            problems += check_trial(space, raw, path, space_file)
        if not errors(problems):
            for kind in ("tuner", "assessor", "advisor"):
                key, spec = get_key(raw, kind)
                if key is not None and spec is not None:
                    problems += algorithm_problems(kind, spec, space, str(path))
    elif space is not None:
        problems.append(
            Problem(space_file, "search space", "must be a mapping", "name: {_type, _value}")
        )
    if not errors(problems):
        problems += nni_config_problems(raw, path)
        problems += tpe_start_up(raw, str(path))
    return problems


TPE_START_UP = 20  # NNI 3.0's TPE samples at random until it has this many results (n_startup_jobs)


def tpe_start_up(raw: dict, file: str) -> list[Problem]:
    """A note when NNI's TPE never leaves its random start-up: with maxTrialNumber within
    n_startup_jobs (20 unless tpe_args says otherwise) the study is random search with TPE's
    seed, and a comparison of it with Random compares two random searches."""
    _, tuner = get_key(raw, "tuner")
    _, trials = get_key(raw, "maxTrialNumber")
    if not isinstance(tuner, dict) or tuner.get("name") != "TPE" or not isinstance(trials, int):
        return []
    args = tuner.get("classArgs") or {}
    start = (args.get("tpe_args") or {}).get("n_startup_jobs", TPE_START_UP)
    if not isinstance(start, int) or trials > start:
        return []
    return [
        Problem(
            file,
            "tuner",
            f"TPE samples at random for its first {start} trials (n_startup_jobs) and this study "
            f"has {trials}: it is random search",
            "set tuner.classArgs.tpe_args.n_startup_jobs below maxTrialNumber to let TPE model",
            "note",
        )
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m nnisuite.config.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        nargs="+",
        type=find_study,
        help="experiment, plan or NAS settings YAML files, or names of shipped studies",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    failed = False
    for file in args.files:
        if report(validate(file), sys.stderr):
            failed = True
        else:
            print(f"ok: {file}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
