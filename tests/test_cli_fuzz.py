"""Every flag of every entry point, given plausible bad values (0, -1, huge, a wrong type, empty,
a missing path, an existing file where a folder is wanted, an unknown name) and incompatible
pairs: each command ends before any training or NNI start with exit 2 and one error line, or
gets past its checks to where the work starts; never a traceback; nothing written outside the
folders the command was given (the repo's files, and NNI's experiment list in the home folder,
stay as they were).

The work itself is not run: the function each entry point starts its work with is replaced by
one that raises WORK (training, an NNI study, a benchmark), so reaching it means every check has
passed. Commands that only read (export, compare, optuna, validate) run for real on a small
experiment written in NNI's schema. A few commands also run as real `python -m` processes."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnisuite.analysis.store import MANIFEST
from tests.helpers.database import Database
from tests.helpers.paths import REPO


class Work(Exception):
    """The command got past its checks to its work."""


def stop_at_work(*_args, **_kwargs):
    raise Work


# entry point -> (the work it starts, replaced by stop_at_work; its required arguments)
ENTRIES = {
    "nnisuite.trials.mlp": (["nnisuite.trials.runner.train"], []),
    "nnisuite.trials.rnn": (["nnisuite.trials.runner.train"], []),
    "nnisuite.study.run": (["nnisuite.study.run.run_study"], ["{yaml}"]),
    # --no-launcher: the warm launcher (torch imported, ~4 s) is not what is checked here
    "nnisuite.study.repeat": (
        ["nnisuite.study.repeat.run_one"],
        ["{plan}", "--out", "{out}", "--no-launcher"],
    ),
    "nnisuite.config.validate": ([], ["{yaml}"]),
    "nnisuite.deploy.best": (["nnisuite.deploy.best.retrain"], ["{db}", "--out", "{out}"]),
    "nas": (["nnisuite.nas.study.run", "nnisuite.nas.oneshot.run"], ["--config", "{nas}"]),
    "nnisuite.analysis.export": (
        [],
        ["{db}", "--out", "{out}", "--no-plots", "--no-optuna", "--no-importance"],
    ),
    "nnisuite.analysis.compare": ([], ["{db}", "{db}", "--out", "{out}", "--no-plots"]),
    "nnisuite.analysis.optuna": (
        ["nnisuite.analysis.optuna.serve_dashboard"],
        ["{db}", "--storage", "{storage}"],
    ),
    "nnisuite.analysis.attention": (
        ["nnisuite.analysis.attention.render", "nnisuite.analysis.attention.render_trained"],
        ["--out", "{out}"],
    ),
    "nnisuite.benchmarks.epoch": (["nnisuite.benchmarks.epoch.run"], ["--out", "{out}"]),
    "nnisuite.benchmarks.export": (["nnisuite.benchmarks.export.measure"], ["--out", "{out}"]),
    "nnisuite.benchmarks.study": (["nnisuite.benchmarks.study.run"], ["--out", "{out}"]),
    "nnisuite.benchmarks.manager": (["nnisuite.benchmarks.manager.run"], ["--out", "{out}"]),
    "nnisuite.benchmarks.tabular build": (
        ["nnisuite.benchmarks.tabular.build.build"],
        ["--dataset", "digits", "--out", "{out}"],
    ),
    "nnisuite.benchmarks.tabular run": (
        ["nnisuite.benchmarks.tabular.study.one_run"],
        ["{plan}", "--table", "{table}", "--out", "{out}", "--seeds", "1", "--workers", "1"],
    ),
}


def module_and_prefix(entry: str) -> tuple[str, list[str]]:
    """The module an entry runs and the subcommand it starts its argv with."""
    name, _, sub = entry.partition(" ")
    if name == "nas":
        return "nnisuite.nas.__main__", []
    if sub:
        return f"{name}.__main__", [sub]
    return name, []


BAD = ["0", "-1", "1e12", "99999999999", "abc", "", "{missing}", "{file}", "nonsense-name"]
PAIRS = {  # incompatible pairs: both flags together
    "nnisuite.trials.mlp": [["--optimizer", "adam", "--momentum", "0.9"], ["--dataset", "mnist"]],
    "nas": [
        ["--strategy", "grid", "--compare", "{file}"],
        ["--min-depth", "5", "--max-depth", "2"],
    ],
    "nnisuite.analysis.attention": [["--images", "2"], ["--dataset", "digits"]],
    "nnisuite.benchmarks.study": [["--quick", "--trials", "2"]],
    "nnisuite.study.run": [["--resume", "abc"], ["--resume", "abc", "--epochs", "2"]],
    "nnisuite.config.validate": [["{missing}"], ["{file}"], ["{root}"]],
}


def parser_of(module, prefix=()):
    if hasattr(module, "build_parser"):
        parser = module.build_parser()
        for sub in prefix:  # a subcommand's own parser
            (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            parser = subs.choices[sub]
        return parser
    if module.__name__ in ("nnisuite.trials.mlp", "nnisuite.trials.rnn"):
        from nnisuite.trials.params import build_parser

        return build_parser(module.PARAMS, module.__name__, "")
    raise AssertionError(f"{module.__name__}: no parser to fuzz")


def flags_of(parser) -> list[tuple[str, bool]]:
    """(flag, takes a value) for every optional flag but --help."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        flag = next(f for f in action.option_strings if f.startswith("--"))
        out.append((flag, action.nargs != 0))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = {
        "experimentName": "cli",
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 train.py",
        "maxTrialNumber": 3,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
    }
    db = Database(root / "nni", "cliexp", config)
    for i in range(3):
        db.start(i * 10, f"t{i}", i, i, {"x": i / 3})
        db.metric(i * 10 + 5, f"t{i}", i, "FINAL", {"default": 0.5 + i / 10})
        db.event(i * 10 + 6, f"t{i}", "SUCCEEDED", seq=i)
    plan = root / "plan.yaml"
    plan.write_text(
        f"base: {REPO / 'experiments' / 'mlp_tpe_digits.yaml'}\nseeds: 1\n"
        "variants: {tpe: {tuner: {name: TPE, classArgs: {optimize_mode: maximize}}}}\n"
    )
    a_file = root / "a_file.txt"
    a_file.write_text("not a folder, not a model\n")
    return {
        "yaml": str(REPO / "experiments" / "mlp_tpe_digits.yaml"),
        "nas": str(REPO / "experiments" / "nas_depth.yaml"),
        "plan": str(plan),
        "table": str(REPO / "benchmarks" / "tables" / "digits"),
        "db": str(db.write()),
        "storage": f"sqlite:///{root / 'optuna.db'}",
        "missing": str(root / "no" / "such" / "thing"),
        "file": str(a_file),
        "root": root,
    }


def fill(args, world, out):
    return [a.format(**world, out=out) if "{" in a else a for a in args]


def run_in_process(entry: str, argv: list[str], monkeypatch) -> tuple[str, int | None, str]:
    """(outcome, exit code, stderr): outcome 'work', 'exit' or 'traceback: ...'."""
    name, prefix = module_and_prefix(entry)
    module = importlib.import_module(name)
    argv = prefix + argv
    for target in ENTRIES[entry][0]:
        owner, name = target.rsplit(".", 1)
        monkeypatch.setattr(importlib.import_module(owner), name, stop_at_work)
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = (
                module.main(argv)
                if entry not in ("nnisuite.trials.mlp", "nnisuite.trials.rnn")
                else None
            )
            if code is None:
                from nnisuite.trials.runner import main_guard

                code = main_guard(module.main, argv)
    except Work:
        return "work", None, err.getvalue()
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - what the test is looking for
        return f"traceback: {type(exc).__name__}: {exc}", None, err.getvalue()
    return "exit", code, err.getvalue()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def repo_state() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout


def commands(world):
    for entry, (_, required) in ENTRIES.items():
        name, prefix = module_and_prefix(entry)
        module = importlib.import_module(name)
        for flag, takes_value in flags_of(parser_of(module, prefix)):
            for value in BAD if takes_value else [None]:
                yield entry, required, [flag] if value is None else [flag, value]
            if takes_value:  # the `=` spelling, and the flag given twice (an error, not the last)
                yield entry, required, [f"{flag}=abc"]
                yield entry, required, [flag, "1", f"{flag}=2"]
        for pair in PAIRS.get(entry, []):
            yield entry, required, pair


def registered(roots) -> set[str]:
    """The ids NNI's home list holds for experiments kept under any of `roots` (other tests,
    running beside this one in parallel workers, register theirs under their own folders)."""
    import json

    try:
        entries = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return set()
    roots = [str(r) for r in roots]
    return {
        exp_id
        for exp_id, entry in entries.items()
        if any(str(entry.get("logDir") or "").startswith(r) for r in roots)
    }


@pytest.mark.slow
def test_every_flag_of_every_entry_point(world, monkeypatch, tmp_path):
    roots = [tmp_path, world["root"], REPO, Path.home() / "nni-experiments"]
    manifest = registered(roots)
    before = repo_state()
    monkeypatch.chdir(tmp_path)  # default output folders (runs/...) land here, not in the repo
    monkeypatch.setenv("NNI_EXPERIMENT_DIR", str(tmp_path / "nni-default"))
    found, counts = [], {"work": 0, "exit 0": 0, "exit 2": 0}
    for i, (entry, required, extra) in enumerate(commands(world)):
        out = str(tmp_path / f"out{i}")
        argv = fill(required, world, out)
        extra = fill(extra, world, out)
        if "--out" in extra and "--out" in argv:  # the fuzzed --out replaces the required one
            j = argv.index("--out")
            argv = argv[:j] + argv[j + 2 :]
        with monkeypatch.context() as patch:
            outcome, code, stderr = run_in_process(entry, argv + extra, patch)
        command = f"{entry} {' '.join(argv + extra)}"
        if outcome.startswith("traceback"):
            found.append(f"{command}: {outcome}")
        elif outcome == "exit" and code not in (0, 2):
            found.append(f"{command}: exit {code}")
        elif outcome == "exit" and code == 2 and len(error_lines(stderr)) != 1:
            found.append(f"{command}: exit 2 with {len(error_lines(stderr))} error lines")
        else:
            counts["work" if outcome == "work" else f"exit {code}"] += 1
    total = sum(counts.values()) + len(found)
    print(f"\nCLI FUZZ: {total} commands over {len(ENTRIES)} entry points: {counts}")
    assert not found, "\n".join(found[:40])
    assert counts["exit 2"] > 300 and counts["work"] > 50
    assert repo_state() == before, "a command wrote into the repository"
    new = registered(roots) - manifest
    assert not new, f"commands registered experiments {new} in NNI's home list"


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["nnisuite.trials.mlp", "--device", "gpu"], "device 'gpu' unknown"),
        (["nnisuite.trials.mlp", "--seed", "-1"], "seed must be"),
        (
            ["nnisuite.analysis.attention", "--out", "{root}/o", "--seq-len", "0"],
            "--seq-len must be",
        ),
        (["nnisuite.benchmarks.epoch", "--out", "{root}/o", "--repeats", "0"], "--repeats must be"),
        (["nas", "--config", "{nas}", "--max-depth", "50"], "--max-depth (over"),
        (["nnisuite.study.run", "{yaml}", "--out", "{file}"], "exists and is not a folder"),
    ],
)
def test_the_python_m_forms_end_in_one_line(world, argv, fragment):
    argv = [a.format(**world) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NNI_EXPERIMENT_DIR": str(Path(world["root"]) / "nni-default")},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(error_lines(proc.stderr)) == 1 and fragment in proc.stderr, proc.stderr
