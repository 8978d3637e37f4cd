"""Which trial an experiment runs: one of nnisuite's own (a module that declares PARAMS, every
check applies) or the user's own (anything NNI accepts: checked as far as can be without running
it).

    trial = Trial.of(raw, "experiments/mlp_tpe_digits.yaml")
    trial.kind      # "nnisuite", "python-module", "python-script" or "other"
    trial.source    # the Python file it runs, where one can be found (for the ast scan)

`trialCodeDirectory` is relative to the YAML file, as in nnictl; the trial runs from there.
Nothing here imports or runs the user's code: a file is found on disk and, for nnisuite's own
trials, imported only when it declares a top-level PARAMS (nnisuite.trials.mlp,
nnisuite.trials.rnn).
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from nnisuite.config.experiment import TrialCommand, get_key, resolve


@dataclass
class Trial:
    command: TrialCommand
    code_dir: Path
    kind: str  # nnisuite | python-module | python-script | other
    source: Path | None  # the .py file the trial runs, where one is found

    @classmethod
    def of(cls, raw: dict, config_file: str | Path) -> Trial:
        _, command = get_key(raw, "trialCommand")
        _, code_dir = get_key(raw, "trialCodeDirectory")
        code = resolve(code_dir if isinstance(code_dir, str) else ".", config_file)
        return cls.parse(command if isinstance(command, str) else "", code)

    @classmethod
    def parse(cls, command: str, code_dir: Path) -> Trial:
        parsed = TrialCommand.parse(command)
        if parsed.module:
            source = module_file(parsed.module, code_dir)
            kind = "nnisuite" if source and declares_params(source) else "python-module"
            return cls(parsed, code_dir, kind, source)
        if parsed.script:
            path = Path(os.path.expanduser(parsed.script))
            path = path if path.is_absolute() else code_dir / path
            return cls(parsed, code_dir, "python-script", path)
        return cls(parsed, code_dir, "other", None)

    @property
    def own(self) -> bool:
        """Whether this is one of nnisuite's trials (flags --epochs, --seed, ... it knows)."""
        return self.kind == "nnisuite"

    @property
    def label(self) -> str:
        return self.command.module or self.command.script or str(self.command)

    def params_class(self):
        """nnisuite's trial's parameter dataclass (its module imported), else None."""
        if not self.own:
            return None
        import importlib

        from nnisuite.launcher import needs_cwd

        if needs_cwd(self.command.module) and str(self.code_dir) not in sys.path:
            sys.path.insert(0, str(self.code_dir))
        return getattr(importlib.import_module(self.command.module), "PARAMS", None)

    def missing(self) -> str | None:
        """What is missing for the trial to start at all (its file, its interpreter), or None."""
        if not self.code_dir.is_dir():
            return f"trialCodeDirectory {self.code_dir} is not a folder"
        if self.kind == "python-script" and not self.source.is_file():
            return f"the trial script {self.source} does not exist"
        if self.kind in ("python-module", "nnisuite") and self.source is None:
            where = self.code_dir
            return f"trial module {self.command.module!r} not found under {where}"
        return None

    def preload(self) -> tuple[str, ...] | None:
        """What a warm launcher for this trial imports before forking: None (nnisuite's own
        list) for nnisuite's trials, else the heavy libraries the trial's file imports."""
        if self.own or self.source is None:
            return None if self.own else ()
        return heavy_imports(self.source)

    def same_python(self) -> bool:
        """Whether the command's interpreter is the runner's own (same folder: same venv),
        so a trial forked from the runner's warm launcher runs as it would have."""
        name = self.command.python
        if not name:
            return False
        found = shutil.which(name, path=runner_path()) if os.sep not in name else name
        if not found:
            return False
        here = Path(sys.executable)
        return Path(os.path.abspath(found)).parent == Path(os.path.abspath(here)).parent


def runner_path(path: str | None = None) -> str:
    """PATH with this runner's interpreter folder first (as an activated venv has it): what the
    runners give the NNI manager, so a trial's `python3` is the Python nnisuite runs on."""
    path = os.environ.get("PATH", "") if path is None else path
    here = str(Path(sys.executable).parent)
    parts = [p for p in path.split(os.pathsep) if p and p != here]
    return os.pathsep.join([here, *parts])


def module_file(module: str, code_dir: Path) -> Path | None:
    """The file `python -m module` runs from code_dir: code_dir/a/b.py or code_dir/a/b/__main__.py,
    else where the running interpreter would find it (an installed package; always for
    nnisuite's and NNI's modules, which the launcher runs with code_dir off sys.path). Imports
    nothing of the module itself (find_spec imports its parent packages only when they are not
    under code_dir)."""
    from nnisuite.launcher import needs_cwd

    parts = module.split(".")
    for candidate in (
        ()
        if not needs_cwd(module)
        else (
            code_dir.joinpath(*parts).with_suffix(".py"),
            code_dir.joinpath(*parts, "__main__.py"),
        )
    ):
        if candidate.is_file():
            return candidate
    if needs_cwd(module) and any(
        (code_dir / parts[0]).with_suffix(s).exists() for s in ("", ".py")
    ):
        return None  # the package is the user's, under code_dir, and has no such module
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    if spec.submodule_search_locations:  # a package: python -m runs its __main__
        main = Path(spec.origin).parent / "__main__.py"
        return main if main.is_file() else None
    return Path(spec.origin)


def declares_params(source: Path) -> bool:
    """Whether a trial file assigns a top-level PARAMS (nnisuite's trial convention)."""
    try:
        return assigns_params(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False


@functools.lru_cache(maxsize=64)
def assigns_params(text: str) -> bool:
    """declares_params of a file's text, parsed once per text (a plan's runs and the
    validation ask about the same few trial files hundreds of times)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "PARAMS" for t in node.targets)
        for node in tree.body
    )


def through_launcher(trial: Trial, choice: bool | None) -> tuple[str | None, bool, str | None]:
    """How the trial starts: (the trialCommand to run instead, or None to keep it; whether the
    study needs a warm launcher; a line saying what was chosen and how to change it, or None
    for nnisuite's own trials, whose launcher line the runner prints). `choice`: --launcher
    (True), --no-launcher (False), neither (None: on where it is sure to run the same)."""
    from nnisuite.launcher import CLIENT_MODULE, module_command

    cmd = trial.command
    if trial.own or cmd.through_launcher:
        return None, choice is not False, None
    if trial.kind != "python-script":
        why = "--launcher takes only python SCRIPT.py commands and nnisuite's trials"
        return None, False, f"trials run as written ({why})"
    if choice is False:
        return None, False, "trials run as written (--no-launcher)"
    if choice is None and not trial.same_python():
        return (
            None,
            False,
            f"trials run as written: {cmd.python} is not this runner's Python "
            f"({sys.executable}); --launcher forks them from a warm one of this Python instead",
        )
    rewritten = replace(cmd, prefix=[*module_command(CLIENT_MODULE), "--script"], module=None)
    heavy = ", ".join(trial.preload() or ()) or "nni's dependencies"
    return (
        str(rewritten),
        True,
        f"trials of {cmd.script} fork from a warm launcher of {sys.executable} ({heavy} "
        "imported once, not per trial); --no-launcher runs the command as written",
    )


# Libraries worth importing once in a warm launcher (seconds each) and safe to import before a
# fork (no threads or devices at import).
HEAVY = ("numpy", "torch", "torchvision", "pandas", "scipy", "sklearn")


def heavy_imports(source: Path) -> tuple[str, ...]:
    """The modules of HEAVY that a trial file imports at its top level or in its functions,
    as it names them (torch.nn.functional); read with ast, nothing imported."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ()
    found: list[str] = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in HEAVY and name not in found:
                found.append(name)
    return tuple(found)
