"""A study stopped at every phase, by the runner's own lines (no sleeps): Ctrl-C (SIGINT) at each
of validation, the warm launcher's start, the manager's start, the first trial, mid-study, the
stop and the export (plots, Optuna and importance included); SIGTERM and a second Ctrl-C 1.5 s
after the first mid-study and during the export. After each: no process of the study alive,
the documented exit code, --out either a whole export of what NNI holds or untouched with one
line saying how to write it, and the printed command (resume or export) completing the study
with every row right."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.nni import running_experiment_ids
from tests.helpers.paths import REPO
from tests.helpers.runner import fault_experiment, runner, wait_dead

UNIFORM_X = {"x": {"_type": "uniform", "_value": [0, 1]}}
TRIALS = 3
NNISUITE = str(Path(sys.executable).with_name("nnisuite"))


def running(r, n: int) -> bool:
    found = re.findall(r"(\d+) succeeded, (\d+) running", r.output)
    return bool(found) and int(found[-1][1]) >= n


def done_one(r) -> bool:
    found = re.findall(r"(\d+) succeeded, (\d+) running", r.output)
    return bool(found) and int(found[-1][0]) >= 1 and int(found[-1][1]) >= 1


# phase -> what in the runner's output (or process tree) says it is under way
PHASES = {
    "validation": lambda r: True,  # at once: the runner is reading and checking the file
    "launcher start": lambda r: re.search(r"^experiment \w+: ", r.output, re.M) is not None,
    "manager start": lambda r: "warm launcher ready" in r.output,
    "first trial": lambda r: running(r, 1),
    "mid-study": done_one,
    "stop": lambda r: " ended: DONE" in r.output,
    "export": lambda r: "\ntrials: " in r.output,
}
CASES = [(phase, "SIGINT") for phase in PHASES] + [
    (phase, how) for phase in ("mid-study", "export") for how in ("SIGTERM", "double SIGINT")
]


def before_nnisuite(output: str) -> bool:
    """A KeyboardInterrupt's traceback none of whose frames is the repository's code: CPython's
    start (`Fatal Python error: init_import_site ...`, or runpy's `_get_module_details`), which
    nothing of nnisuite can say in one line (it has not run yet)."""
    frames = re.findall(r'File "([^"]+)"', output)
    ours = [f for f in frames if f.startswith(str(REPO)) and "/.venv/" not in f]
    return "Traceback" in output and output.rstrip().endswith("KeyboardInterrupt") and not ours


def rows_right(trials: pd.DataFrame) -> None:
    """Every trial succeeded with the final its x gives (the fault trial reports 0.5 + x / 2)."""
    assert len(trials) == TRIALS and (trials["status"] == "SUCCEEDED").all(), trials
    assert ((trials["default"] - (0.5 + trials["x"] / 2)).abs() < 1e-9).all(), trials


@pytest.mark.integration
@pytest.mark.parametrize(("phase", "how"), CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_a_stop_at_any_phase_leaves_nothing_and_the_printed_command_completes(tmp_path, phase, how):
    yaml = fault_experiment(
        tmp_path, UNIFORM_X, "--mode slow --steps 5",
        tuner={"name": "Random", "classArgs": {"seed": 1}}, max_trials=TRIALS, concurrency=2,
    )  # fmt: skip
    out = tmp_path / "out"
    flags = [str(yaml), "--experiment-dir", str(tmp_path / "nni"), "--out", str(out)]
    with runner(*flags, plots=True) as r:
        r.wait_until(lambda: PHASES[phase](r), what=phase, timeout=240)
        signum = signal.SIGTERM if how == "SIGTERM" else signal.SIGINT
        r.proc.send_signal(signum)
        if how == "double SIGINT":
            deadline = time.monotonic() + 1.5
            while r.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGINT)
        code = r.wait(timeout=180)
        r.tree()
        left = wait_dead(r.seen, 15)
        assert not left, f"alive after the runner: {left}\n{r.output[-3000:]}"
    output = r.output
    if phase == "validation" and before_nnisuite(output):
        # the signal came while CPython itself started the runner (its site module, runpy
        # finding the module), before any of nnisuite ran: CPython's own lines, nothing started
        assert code != 0, output
        assert not out.exists() and not (tmp_path / "nni").exists()
        return
    assert "Traceback" not in output, output[-3000:]
    # one voice: a forked export worker neither reports the stop as a failed write nor repeats
    # the hint
    assert "error: the export failed" not in output, output[-3000:]
    assert output.count("to continue it:") <= 1 and output.count("to write it:") <= 1, output
    found = re.search(r"^experiment (\w+): ", output, re.M)
    if found:
        assert found.group(1) not in running_experiment_ids()
    if code == 0:  # the study and its export had finished before the signal arrived
        rows_right(pd.read_csv(out / "trials.csv"))
        return
    if code == -signal.SIGINT and phase == "validation" and not found:
        return  # the signal came before Python had its handler (what a shell shows as 130)
    assert code == 130, output[-3000:]
    written = (out / "summary.md").is_file()
    assert written or not out.exists() or not any(out.iterdir()), sorted(out.iterdir())
    resume = re.search(r"to continue it: (nnisuite run --resume .*)", output)
    export = re.search(r"to write it: (nnisuite export .*)", output)
    if resume:
        done = subprocess.run(
            [NNISUITE, *resume.group(1).split()[1:], "--no-plots"],
            capture_output=True, text=True, timeout=300, cwd="/",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    elif export:
        assert not written
        done = subprocess.run(
            [NNISUITE, *export.group(1).split()[1:], "--no-plots"],
            capture_output=True, text=True, timeout=300, cwd="/",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    else:  # stopped before NNI recorded the study: said so, and nothing to resume
        assert "nothing to resume, run the same command again" in output, output[-3000:]
        assert not written
        return
    rows_right(pd.read_csv(out / "trials.csv"))


# nnisuite's runner with a Ctrl-C delivered during the first fork that runs Python's at-fork
# hooks: NNI's manager start (subprocess.Popen with preexec_fn=os.setpgrp)
CTRL_C_IN_THE_FORK = """
import os, signal, sys
armed = [True]


def ctrl_c():
    if armed[0]:
        armed[0] = False
        os.kill(os.getpid(), signal.SIGINT)


os.register_at_fork(after_in_parent=ctrl_c)
from nnisuite.study.run import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.integration
def test_a_ctrl_c_while_the_manager_forks_stops_the_study_and_is_never_dropped(tmp_path):
    """Without nnisuite/signals.py the Ctrl-C was printed as "Exception ignored ...
    KeyboardInterrupt" inside logging's at-fork hook and dropped: the study ran on to exit 0."""
    yaml = fault_experiment(
        tmp_path, UNIFORM_X, "--mode slow --steps 5",
        tuner={"name": "Random", "classArgs": {"seed": 1}}, max_trials=TRIALS, concurrency=2,
    )  # fmt: skip
    flags = [str(yaml), "--experiment-dir", str(tmp_path / "nni"), "--out", str(tmp_path / "out")]
    program = [sys.executable, "-c", CTRL_C_IN_THE_FORK, "run"]
    with runner(*flags, program=program) as r:
        code = r.wait(timeout=180)
        r.tree()
        left = wait_dead(r.seen, 15)
        assert not left, f"alive after the runner: {left}\n{r.output[-3000:]}"
    assert code == 130, r.output[-3000:]
    assert "Traceback" not in r.output and "Exception ignored" not in r.output, r.output[-3000:]
    assert "interrupted: stopping the experiment" in r.output, r.output[-3000:]
    found = re.search(r"^experiment (\w+): ", r.output, re.M)
    assert found and found.group(1) not in running_experiment_ids()
