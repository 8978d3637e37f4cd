"""nnisuite.study.manager without a manager: progress lines, the stall rule, an unreachable
manager noticed in seconds, ports, a stop that comes before the manager starts, a resumed
experiment's earlier sessions in its logs."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

from nni.experiment import Experiment

from nnisuite.analysis.store import Trial
from nnisuite.study.manager import (
    EXIT_INTERRUPTED,
    MIN_STALL_S,
    DispatcherLog,
    SessionLogs,
    Study,
    default_port,
    free_port,
    logged_disk_error,
    port_is_free,
    progress_line,
    run_study,
    signature,
    stall_limit,
    stopped_from_outside,
    watch,
)


def trial(tid, status, final=None, steps=0, start=None, end=None):
    return Trial(
        tid,
        status=status,
        final=final or {},
        intermediates=[{"step": i, "default": 0.5} for i in range(steps)],
        start_time=start,
        end_time=end,
    )


def test_progress_line_counts_and_best():
    trials = [
        trial("a", "SUCCEEDED", {"default": 0.91}),
        trial("b", "SUCCEEDED", {"default": 0.95}),
        trial("c", "FAILED"),
        trial("d", "EARLY_STOPPED"),
        trial("e", "INTERRUPTED"),
        trial("f", "RUNNING"),
        trial("g", "WAITING"),
        trial("h", "ADD_RESUMED"),  # NNI 3.0's status, on --resume, of a trial to run again
    ]
    line, best = progress_line(trials, 10)
    # the interrupted and the resumed trial run again on --resume: not done
    assert line == (
        "trials 4/10 done, 2 succeeded, 1 failed, 1 early-stopped, 1 interrupted, 1 running, "
        "2 waiting, best 0.9500 (b)"
    )
    assert best == 0.95
    assert progress_line([], None) == ("trials 0/? done, 0 succeeded, 0 running, best -", None)


def test_signature_changes_with_any_event():
    a = [trial("a", "RUNNING", steps=1)]
    assert signature(a) != signature([trial("a", "RUNNING", steps=2)])
    assert signature(a) != signature([trial("a", "SUCCEEDED", steps=1)])
    assert signature(a) == signature([trial("a", "RUNNING", steps=1)])


def test_stall_limit_is_5_minutes_or_3x_the_longest_trial():
    short = [trial("a", "SUCCEEDED", start=0.0, end=10.0)]
    long = [trial("a", "SUCCEEDED", start=0.0, end=200.0), trial("b", "RUNNING", start=5.0)]
    assert stall_limit(short, None) == MIN_STALL_S
    assert stall_limit(long, None) == 600.0
    assert stall_limit(long, 7.0) == 7.0


def test_an_unreachable_manager_is_noticed_within_seconds(monkeypatch):
    from nnisuite.study import manager

    monkeypatch.setattr(manager, "UNREACHABLE_S", 1.5)  # the grace is read at each poll
    out = io.StringIO()
    t0 = time.monotonic()
    outcome = watch(free_port(), 3, poll_s=0.2, stream=out)
    elapsed = time.monotonic() - t0
    assert outcome.status == "UNREACHABLE" and outcome.fault
    assert outcome.detail.startswith("no answer for ")  # waited out the grace, then gave up
    assert elapsed >= 1.5  # not at the first failed poll (a generous upper bound:)
    assert elapsed < 1.5 + 60


def test_a_dead_manager_process_is_noticed_at_once():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    outcome = watch(free_port(), 3, poll_s=0.2, stream=io.StringIO(), manager=proc)
    # the process' exit is read at the first failed poll: no waiting out the REST grace
    assert outcome.status == "UNREACHABLE" and outcome.detail == "the manager process exited (0)"


def test_ports():
    port = free_port()
    assert port_is_free(port)
    assert default_port(1234) == 1234
    chosen = default_port(None)
    usual = int(os.environ["NNISUITE_DEFAULT_PORT"])  # the tests' own in place of 8080 (conftest)
    assert usual != 8080
    assert chosen == usual if port_is_free(usual) else chosen != usual


class CtrlCOnFirstLine(io.StringIO):
    """Standard output where a Ctrl-C arrives as the study's first line is printed."""

    def write(self, text):
        first = "\n" not in self.getvalue()
        super().write(text)
        if first and "\n" in text:
            raise KeyboardInterrupt
        return len(text)


def test_a_stop_as_the_study_is_announced_ends_it_interrupted_with_what_to_do(
    tmp_path, monkeypatch
):
    """The window between the runner's first line and the watch (the claim, the launcher's
    start): exit 130 and the line saying there is nothing to resume, not a bare traceback."""
    from nnisuite.config.experiment import to_nni_config

    raw = {
        "searchSpace": {"x": {"_type": "choice", "_value": [1]}},
        "trialCommand": "true",
        "trialConcurrency": 1,
        "maxTrialNumber": 1,
        "tuner": {"name": "Random"},
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path / "nni"),
    }
    exp = Experiment(to_nni_config(raw, tmp_path / "x.yml"))
    study = Study(exp, None, tmp_path / "out", 1, "to continue it: (the resume)", title="study X")
    out = CtrlCOnFirstLine()
    monkeypatch.setattr(sys, "stdout", out)
    exported = []
    code = run_study(study, export=lambda *a: exported.append(a))
    assert code == EXIT_INTERRUPTED
    assert study.outcome.status == "INTERRUPTED" and not exported
    assert out.getvalue().splitlines() == [
        "study X",
        "the study did not finish; NNI had not recorded it yet (stopped while it started): "
        "nothing to resume, run the same command again",
    ]
    assert not Path(tmp_path / "nni").exists() or not any((tmp_path / "nni").rglob("*.sqlite"))


# What NNI 3.0 wrote as a session of a study ended (read off a real run): the manager asked to
# stop, and its dispatcher, still sending, failing to reach it after its retries
WORKER_FAILED = """\
[2026-12-07 17:58:37] ERROR (nni.runtime.msg_dispatcher_base/Thread-1 (command_queue_worker)) \
[Errno 111] Connect call failed ('127.0.0.1', 36163)
Traceback (most recent call last):
ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 36163)
[2026-12-07 17:58:37] INFO (nni.runtime.msg_dispatcher_base/MainThread) Dispatcher terminiated
"""
MANAGER_STOPPED = """\
[2026-12-07 17:58:27] INFO (NNIManager) Stopping experiment, cleaning up ...
[2026-12-07 17:58:27] ERROR (NNIDataStore) SQLITE_FULL: database or disk is full
"""


def test_a_resumed_experiments_earlier_sessions_are_not_read_as_this_ones(tmp_path):
    """A resume appends to the experiment's nnimanager.log and dispatcher.log: the watchdog
    reads only what this session's manager and dispatcher wrote (an earlier session's dispatcher
    that failed as it was stopped ended a resume as ERROR at its first poll), and still sees
    every fault this session logs."""
    folder = tmp_path / "log"
    folder.mkdir()
    (folder / "dispatcher.log").write_text(WORKER_FAILED)
    (folder / "nnimanager.log").write_text(MANAGER_STOPPED)
    logs = SessionLogs(folder)  # as the resumed session begins
    dispatcher = DispatcherLog(logs)
    assert dispatcher.worker_error() is None
    assert not stopped_from_outside(logs) and logged_disk_error(logs) is None
    with open(folder / "dispatcher.log", "a") as f:
        f.write(WORKER_FAILED)
    with open(folder / "nnimanager.log", "a") as f:
        f.write(MANAGER_STOPPED)
    assert "Connect call failed" in dispatcher.worker_error()
    assert stopped_from_outside(logs) and logged_disk_error(logs) == "SQLITE_FULL"
    # a first session: no files yet, then what it writes
    fresh = SessionLogs(tmp_path / "new" / "log")
    assert not stopped_from_outside(fresh) and DispatcherLog(fresh).worker_error() is None
    (tmp_path / "new" / "log").mkdir(parents=True)
    (tmp_path / "new" / "log" / "nnimanager.log").write_text(MANAGER_STOPPED)
    assert stopped_from_outside(fresh)
