"""NNI 3.0's tuners, assessors and advisors as a validator sees them: the registry, what each
one's constructor takes, which packages it needs, which search-space types it can sample.

    problems = algorithm_problems("tuner", {"name": "TPE", "classArgs": {...}}, space, "x.yaml")
    TUNERS   # the built-in tuner names (nni/runtime/default_config/builtin_algorithms.yml)

Checks, in the order NNI would fail at run time: the name is in NNI's registry (case does not
matter to NNI) or a custom `className` + `codeDirectory`; the algorithm is of the kind its key
says; its module imports (a missing package is named with the extra that installs it); every
classArgs key is a parameter of its constructor, `optimize_mode` is maximize or minimize, values
have the annotated types, NNI's own classArgs schema (classArgsValidator) accepts them; and the
tuner, built as NNI's dispatcher builds it, accepts each parameter of the search space.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import io
import logging
import typing
from pathlib import Path

from nnisuite.config.problem import Problem

KINDS = ("tuner", "assessor", "advisor")
OPTIMIZE_MODES = ("maximize", "minimize")
# The package a tuner's module imports, and how to install it (docs/results.md, "Which tuner?").
PACKAGES = {
    "hyperopt": "pip install -e '.[hyperopt]' (Anneal, TPE_legacy)",
    "ConfigSpace": "pip install -e '.[bohb]' (BOHB)",
    "statsmodels": "pip install -e '.[bohb]' (BOHB)",
    "pybnn": "pip install -e '.[dngo]' (DNGO)",
    "smac": "none that works: SMAC needs smac4nni, which does not build (microsoft/nni#5501)",
    "gym": "none that works here: PPO needs gym and TensorFlow 1 (docs/results.md, 'Which tuner?')",
}
# Built without side effects in well under a second; the others are only signature-checked
# (NetworkMorphism builds a Keras-style graph for 3 s; advisors need a live command channel).
NOT_BUILT = {"networkmorphism", "hyperband", "bohb"}


# NNI's config_manager parses its two registry files (YAML, pure-Python PyYAML) on every
# lookup: 13 ms each time, 22 s of the validation fuzz. Read once per state of the files.
_REGISTRY: dict[tuple, list] = {}


def registry() -> list:
    """NNI's algorithm registry as config_manager.get_all_algo_meta() reads it (the built-in
    file and the user's `nnictl algo register`ed ones), cached until either file changes."""
    from nni.runtime.config import get_builtin_config_file, get_config_file
    from nni.tools.package_utils import config_manager

    from nnisuite.config.experiment import nni_reads_yaml_with_libyaml

    nni_reads_yaml_with_libyaml()
    files = (
        get_builtin_config_file("builtin_algorithms.yml"),
        get_config_file("registered_algorithms.yml"),
    )
    state = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if state not in _REGISTRY:
        _REGISTRY.clear()
        _REGISTRY[state] = config_manager.get_all_algo_meta()
    return _REGISTRY[state]


def names(kind: str) -> list[str]:
    """Built-in names of a kind (advisors are tuners in NNI 3.0's registry)."""
    want = "assessor" if kind == "assessor" else "tuner"
    return sorted(m.name for m in registry() if m.algo_type == want)


def lookup(name: str):
    """config_manager.get_algo_meta(name), over the cached registry: by name or alias, any case."""
    name = name.lower()
    for meta in registry():
        if meta.name.lower() == name or (meta.alias is not None and meta.alias.lower() == name):
            return meta
    return None


def algorithm_class(meta):
    """The class NNI would build; ImportError names a missing package."""
    module_name, _, class_name = meta.class_name.rpartition(".")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        module = importlib.import_module(module_name)
    return getattr(module, class_name)


def matches(value, hint) -> bool:
    """Whether a YAML value fits a constructor annotation (unknown hints accept anything)."""
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin is dict or hint is dict:  # get_origin(typing.Dict[...]) is dict too
        return isinstance(value, dict)
    if origin is list or hint is list:
        return isinstance(value, list)
    return True


def signature_problems(cls, label: str, args: dict, file: str, key: str) -> list[Problem]:
    problems = []
    try:
        signature = inspect.signature(cls.__init__)
        hints = typing.get_type_hints(cls.__init__)
    except (TypeError, ValueError, NameError):
        return []
    params = {n: p for n, p in signature.parameters.items() if n != "self"}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = sorted(n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD)
    for name, value in args.items():
        if name not in params and not takes_any:
            close = difflib.get_close_matches(str(name), accepted, n=1)
            problems.append(
                Problem(
                    file,
                    f"{key}.classArgs.{name}",
                    f"{label} has no argument {name!r}; it takes {', '.join(accepted) or 'none'}",
                    f"did you mean {close[0]!r}?" if close else "remove it",
                )
            )
        elif name == "optimize_mode":
            continue  # its own rule, below
        elif name in params and not matches(value, hints.get(name, params[name].annotation)):
            problems.append(
                Problem(
                    file,
                    f"{key}.classArgs.{name}",
                    f"{value!r} does not fit {label}'s {name}: {hints.get(name)}",
                    "give a value of that type",
                )
            )
    for name, param in params.items():
        if (
            param.default is inspect.Parameter.empty
            and param.kind is param.POSITIONAL_OR_KEYWORD
            and name not in args
        ):
            problems.append(
                Problem(file, f"{key}.classArgs", f"{label} needs {name!r}", f"add {name}: ...")
            )
    mode = args.get("optimize_mode")
    if "optimize_mode" in args and mode not in OPTIMIZE_MODES:
        problems.append(
            Problem(
                file,
                f"{key}.classArgs.optimize_mode",
                f"must be maximize or minimize, got {mode!r}",
                "write optimize_mode: maximize (nnisuite's `default` is an accuracy)",
            )
        )
    return problems


def schema_problems(meta, label: str, args: dict, file: str, key: str) -> list[Problem]:
    """NNI's own classArgsValidator (a `schema` schema) where the algorithm has one."""
    if not meta.validator_class_name:
        return []
    module_name, _, class_name = meta.validator_class_name.rpartition(".")
    try:
        validator = getattr(importlib.import_module(module_name), class_name)()
        validator.validate_class_args(**args)
    except ImportError:
        return []  # reported as a missing package
    except Exception as exc:  # noqa: BLE001 - schema.SchemaError and friends
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return [Problem(file, f"{key}.classArgs", f"{label}: {message}", "see NNI's tuner docs")]
    return []


@contextlib.contextmanager
def dispatcher_like():
    """Quiet, with NNI_CHECKPOINT_DIRECTORY set as in NNI's dispatcher (PBT keeps its
    population there)."""
    import os
    import tempfile

    previous = os.environ.get("NNI_CHECKPOINT_DIRECTORY")
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="nnisuite-validate-") as scratch:
        os.environ["NNI_CHECKPOINT_DIRECTORY"] = scratch
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                yield
        finally:
            logging.disable(logging.NOTSET)
            if previous is None:
                os.environ.pop("NNI_CHECKPOINT_DIRECTORY", None)
            else:
                os.environ["NNI_CHECKPOINT_DIRECTORY"] = previous


def space_problems(meta, label: str, args: dict, space: dict, file: str, key: str):
    """Build the tuner as NNI's dispatcher does and hand it the search space; when it refuses,
    a fresh tuner per parameter says which ones."""
    cls = algorithm_class(meta)
    merged = dict(meta.class_args or {}) | args
    with dispatcher_like():
        try:
            tuner = cls(**merged)
        except Exception as exc:  # noqa: BLE001 - whatever NNI would raise at start
            return [
                Problem(file, f"{key}.classArgs", f"NNI cannot build {label}: {exc}", "fix them")
            ]
        if not hasattr(tuner, "update_search_space") or not isinstance(space, dict):
            return []
        try:
            tuner.update_search_space(space)
            return []
        except Exception as whole:  # noqa: BLE001 - each tuner raises its own kind
            problems = []
            for name, spec in space.items():
                problems += one_parameter(
                    cls(**merged).update_search_space, label, name, spec, file
                )
            if problems:
                return problems
            text = " ".join(str(whole).split()) or type(whole).__name__
            return [Problem(file, "search space", f"tuner {label} refuses it ({text})", "see NNI")]


def one_parameter(update, label: str, name: str, spec, file: str) -> list[Problem]:
    """The tuner's update_search_space on a space of this one parameter."""
    try:
        update({name: spec})
    except Exception as exc:  # noqa: BLE001 - each tuner raises its own kind
        kind = spec.get("_type") if isinstance(spec, dict) else spec
        text = " ".join(str(exc).split()) or type(exc).__name__
        return [
            Problem(
                file,
                f"search space {name!r}",
                f"tuner {label} cannot take this {kind!r} parameter ({text})",
                "choose another tuner (docs/results.md, 'Which tuner?') or another _type",
            )
        ]
    return []


def algorithm_problems(kind: str, spec, space, file: str) -> list[Problem]:
    """Every problem of a `tuner:` / `assessor:` / `advisor:` entry (empty: fine)."""
    from nnisuite.config.experiment import get_key

    if not isinstance(spec, dict):
        return [
            Problem(
                file,
                kind,
                f"must be a mapping with name and classArgs, got {spec!r}",
                f"write {kind}: {{name: {'Medianstop' if kind == 'assessor' else 'TPE'}}}",
            )
        ]
    known = ("name", "className", "codeDirectory", "classArgs")
    problems = []
    for k in spec:
        if str(k).replace("_", "").lower() not in {x.lower() for x in known}:
            close = difflib.get_close_matches(str(k), known, n=1)
            problems.append(
                Problem(
                    file,
                    f"{kind}.{k}",
                    f"unknown key; {kind} takes {', '.join(known)}",
                    f"did you mean {close[0]!r}?" if close else "remove it",
                )
            )
    _, name = get_key(spec, "name")
    _, class_name = get_key(spec, "className")
    _, code_dir = get_key(spec, "codeDirectory")
    _, args = get_key(spec, "classArgs")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        problems.append(
            Problem(file, f"{kind}.classArgs", f"must be a mapping, got {args!r}", "key: value")
        )
        args = {}
    if class_name is not None:  # a custom algorithm
        if name is not None:
            problems.append(Problem(file, kind, "has both name and className", "keep one"))
        if not isinstance(class_name, str) or "." not in class_name:
            problems.append(
                Problem(file, f"{kind}.className", f"must be module.Class, got {class_name!r}", "")
            )
        from nnisuite.config.experiment import resolve

        if not isinstance(code_dir, str) or not resolve(code_dir, file).is_dir():
            problems.append(
                Problem(
                    file,
                    f"{kind}.codeDirectory",
                    f"must be the folder of the custom {kind}'s module, got {code_dir!r}",
                    "give an existing folder",
                )
            )
        if problems:
            return problems
        return custom_problems(kind, class_name, str(resolve(code_dir, file)), args, space, file)
    if not isinstance(name, str) or not name:
        return problems + [
            Problem(file, f"{kind}.name", f"must be a built-in name, got {name!r}", "e.g. TPE")
        ]
    meta = lookup(name)
    if meta is None:
        choices = names(kind)
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
        return problems + [
            Problem(
                file,
                f"{kind}.name",
                f"unknown {kind} {name!r}; NNI's built-in {kind}s are {', '.join(choices)}",
                f"did you mean {close[0]!r}?" if close else "use one of those",
            )
        ]
    if (meta.algo_type == "assessor") != (kind == "assessor"):
        return problems + [
            Problem(
                file,
                f"{kind}.name",
                f"{meta.name} is {'an assessor' if meta.algo_type == 'assessor' else 'a tuner'},"
                f" not {'an assessor' if kind == 'assessor' else 'a tuner'}",
                f"move it under {meta.algo_type}:",
            )
        ]
    if args and not meta.accept_class_args:
        return problems + [
            Problem(file, f"{kind}.classArgs", f"{meta.name} takes no classArgs", "remove them")
        ]
    try:
        cls = algorithm_class(meta)
    except ImportError as exc:
        package = getattr(exc, "name", None) or str(exc)
        top = str(package).split(".")[0]
        how = PACKAGES.get(top, f"pip install {top}")
        return problems + [
            Problem(
                file,
                f"{kind}.name",
                f"{kind} {meta.name} needs the Python package {top!r}, which is not installed",
                how,
            )
        ]
    merged = dict(meta.class_args or {}) | args  # the registry's own classArgs (Anneal's)
    problems += signature_problems(cls, meta.name, merged, file, kind)
    problems += schema_problems(meta, meta.name, args, file, kind)  # NNI checks the user's own
    if problems or kind == "assessor":
        return problems
    if meta.name.lower() in NOT_BUILT or meta.is_advisor:
        from nni.common.hpo_utils import validate_search_space

        try:
            validate_search_space(space)
        except Exception as exc:  # noqa: BLE001
            return [Problem(file, "search space", f"{meta.name}: {exc}", "see NNI's docs")]
        return []
    return space_problems(meta, meta.name, args, space, file, kind)


def custom_problems(kind: str, class_name: str, folder: str, args: dict, space, file: str):
    """A custom class checked as NNI's dispatcher would meet it: imported from its
    codeDirectory, its classArgs against its constructor (and the module's own
    `validate_class_args(**args)` where it has one: nnisuite.study.optuna_tuner), and a tuner
    (not an advisor) built and handed the search space."""
    import sys
    from types import SimpleNamespace

    module_name, _, short = class_name.rpartition(".")
    sys.path.insert(0, folder)
    try:
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                module = importlib.import_module(module_name)
            cls = getattr(module, short)
        except (ImportError, AttributeError) as exc:
            return [
                Problem(
                    file,
                    f"{kind}.className",
                    f"cannot import {class_name} from {folder} ({exc})",
                    "check className (module.Class) and codeDirectory",
                )
            ]
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module, run
            return [
                Problem(
                    file,
                    f"{kind}.className",
                    f"importing {module_name} from {folder} raised {type(exc).__name__}: "
                    f"{str(exc)[:200]} (at {where_raised(exc, folder)})",
                    "fix the module: NNI's dispatcher imports it the same way",
                )
            ]
        problems = signature_problems(cls, short, args, file, kind)
        check = getattr(module, "validate_class_args", None)
        if not problems and callable(check):
            try:
                check(**args)
            except ValueError as exc:
                problems.append(Problem(file, f"{kind}.classArgs", f"{short}: {exc}", "fix it"))
        if problems or kind == "assessor" or advisor_class(cls):
            return problems
        meta = SimpleNamespace(class_name=class_name, class_args=None)
        return space_problems(meta, short, args, space, file, kind)
    finally:
        sys.path.remove(folder)


def where_raised(exc: BaseException, folder: str) -> str:
    """file:line of the deepest frame of `exc` in `folder` (a SyntaxError: its own line)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    found = "?"
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith(str(Path(folder).resolve())) or name.startswith(folder):
            found = f"{name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def advisor_class(cls) -> bool:
    """Hyperband and BOHB are message dispatchers (advisors): they need a live channel."""
    from nni.runtime.msg_dispatcher_base import MsgDispatcherBase

    return isinstance(cls, type) and issubclass(cls, MsgDispatcherBase)
