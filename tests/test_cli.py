"""Every entry point: a parser with `help=` on every flag, `--help` that exits 0, usage errors
that exit 2, and a Ctrl-C none of its code handled said in one line."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from nnisuite.launcher import CLIENT_MODULE
from nnisuite.trials.params import build_parser as trial_parser
from tests.helpers.paths import REPO

ENTRY_POINTS = [
    "nnisuite.study.run",
    "nnisuite.config.validate",
    "nnisuite.study.guard",
    "nnisuite.nas.__main__",
    "nnisuite.analysis.export",
    "nnisuite.analysis.compare",
    "nnisuite.analysis.attention",
    "nnisuite.benchmarks.epoch",
    "nnisuite.benchmarks.study",
    "nnisuite.launcher.server",
]


def parsers():
    for name in ENTRY_POINTS:
        yield name, importlib.import_module(name).build_parser()
    for name in ("nnisuite.trials.mlp", "nnisuite.trials.rnn"):
        module = importlib.import_module(name)
        yield name, trial_parser(module.PARAMS, f"python -m {name}", module.__doc__)


@pytest.mark.parametrize(
    "name, parser", list(parsers()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_flag_has_help(name, parser):
    missing = [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and not a.help
    ]
    assert not missing, f"{name}: no help= for {missing}"


@pytest.mark.parametrize(
    "name, parser", list(parsers()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_help_exits_0_and_usage_errors_exit_2(name, parser, capsys):
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        parser.parse_args(["--no-such-flag"])
    assert bad.value.code == 2


def test_the_launcher_client_usage():
    bad = subprocess.run(
        [sys.executable, "-m", CLIENT_MODULE], cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("usage: python3 -m nnisuite.launcher")
    ok = subprocess.run(
        [sys.executable, "-m", CLIENT_MODULE, "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert ok.returncode == 0 and "trial command" in ok.stdout


def test_runner_usage_errors_exit_2(capsys):
    from nnisuite.study.run import main

    for argv in ([], ["x.yaml", "--resume", "abc"], ["--resume", "abc", "--epochs", "2"]):
        with pytest.raises(SystemExit) as bad:
            main(argv)
        assert bad.value.code == 2


@pytest.mark.parametrize("started_as_a_command", [True, False])
def test_a_ctrl_c_no_code_handled_is_one_line_in_a_command_only(started_as_a_command):
    """A process started as `python -m nnisuite.X` (sys.argv[0] is "-m" while Python finds the
    module, when nnisuite is imported) says a Ctrl-C that its code did not handle (one during its
    imports) in one line, and still exits as SIGINT's; a program of the user's that imports
    nnisuite keeps Python's traceback."""
    mark = "sys.argv[0] = '-m'; " if started_as_a_command else ""
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys; {mark}import nnisuite; raise KeyboardInterrupt"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == -2, proc  # what a shell shows as 130
    if started_as_a_command:
        assert proc.stderr == "interrupted\n"
    else:
        assert proc.stderr.startswith("Traceback") and "KeyboardInterrupt" in proc.stderr
