"""Fault injection on real NNI managers and real processes, through the runner the user runs
(`python -m nnisuite.study.run`): each fault ends with the study complete or cleanly stopped,
nothing finished lost in the export, and no process of the runner's left behind."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from nnisuite.analysis.store import load_experiment
from tests.helpers.nni import running_experiment_ids
from tests.helpers.runner import fault_experiment, runner, wait_dead

pytestmark = pytest.mark.integration
UNIFORM_X = {"x": {"_type": "uniform", "_value": [0, 1]}}
SEEDED_TPE = {
    "name": "TPE",
    "classArgs": {"optimize_mode": "maximize", "seed": 0, "tpe_args": {"n_startup_jobs": 2}},
}


def args(tmp_path, yaml, out="out", *more):
    return [str(yaml), "--experiment-dir", str(tmp_path / "nni"), "--out", str(tmp_path / out)]


def exported(tmp_path, out="out") -> pd.DataFrame:
    return pd.read_csv(tmp_path / out / "trials.csv")


def experiment_id(r) -> str:
    return re.search(r"experiment (\w+)", r.output).group(1)


def reporting(tmp_path, r) -> int:
    """How many trials of the runner's experiment have an intermediate result in NNI's
    database (read from a snapshot: the manager keeps writing)."""
    from nnisuite.analysis.store import opened

    db = tmp_path / "nni" / experiment_id(r) / "db" / "nni.sqlite"  # printed before any trial
    if not db.exists():
        return 0
    with opened(db) as conn:
        rows = conn.execute(
            "SELECT COUNT(DISTINCT trialJobId) FROM MetricData WHERE type = 'PERIODICAL'"
        )
        return rows.fetchone()[0]


def report(fault: str, **figures) -> None:
    """One line of measured figures per fault (shown with pytest -s; the table of
    docs/what-happens-when.md)."""
    print(f"\nFAULT {fault}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def assert_nothing_left(r, exp_id: str) -> None:
    assert not wait_dead(r.seen, 10), "processes of the runner outlived it"
    assert exp_id not in running_experiment_ids()


def test_sigkill_one_trial_mid_run(tmp_path):
    """Recorded FAILED; the study goes on to its trial count."""
    yaml = fault_experiment(
        tmp_path, UNIFORM_X, "--mode slow --steps 15", tuner={"name": "Random"}, max_trials=4
    )
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: r.forked_trials(), what="a trial running")
        time.sleep(0.5)
        r.forked_trials()[0].kill()
        assert r.wait() == 0, r.output[-3000:]
        assert_nothing_left(r, experiment_id(r))
    trials = exported(tmp_path)
    assert sorted(trials["status"]) == ["FAILED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]
    assert trials.loc[trials["status"] == "SUCCEEDED", "default"].notna().all()
    report("trial SIGKILL", exit=0, trials=len(trials), failed=1, kept=3)


def test_a_trial_killed_by_a_signal_nobody_asked_for_failed(tmp_path):
    """The OOM killer's SIGKILL, a segfault, a SIGTERM sent to the trial alone (its client did
    not forward it): FAILED, never USER_CANCELED (a stop), whatever shell NNI runs it under."""
    yaml = fault_experiment(
        tmp_path, UNIFORM_X, "--mode slow --steps 100", tuner={"name": "Random"},
        max_trials=3, concurrency=3,
    )  # fmt: skip
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: len(r.forked_trials()) == 3, what="three trials running")
        time.sleep(0.5)
        for child, signum in zip(
            r.forked_trials(), (signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM)
        ):
            child.send_signal(signum)
        assert r.wait() == 5, r.output[-3000:]  # no trial has a result
        assert_nothing_left(r, experiment_id(r))
    trials = exported(tmp_path)
    assert list(trials["status"]) == ["FAILED"] * 3, trials
    stderr = "".join(p.read_text() for p in (tmp_path / "nni").rglob("trial.stderr"))
    for name in ("SIGKILL", "SIGSEGV", "SIGTERM"):
        assert f"died of {name}" in stderr, stderr[-2000:]


def test_misbehaving_trials_are_recorded_and_the_study_completes(tmp_path):
    """A trial that hangs (and ignores SIGINT) is killed by maxTrialDuration; one that reports
    intermediates but no final, one that exits 1 at once: each recorded, the study done.
    The limit is well above the others' run: in CI, under load, the exit-1 trial (its fork,
    `import nni`, its parameters) took close to 4 s, the limit this test had then."""
    space = {"mode": {"_type": "choice", "_value": ["ok", "hang", "no_final", "exit1"]}}
    yaml = fault_experiment(tmp_path, space, maxTrialDuration="8s")
    with runner(*args(tmp_path, yaml)) as r:
        assert r.wait() == 0, r.output[-3000:]
        assert_nothing_left(r, experiment_id(r))
    trials = exported(tmp_path).set_index("mode")
    assert trials.loc["ok", "status"] == "SUCCEEDED" and trials.loc["ok", "default"] == 0.75
    assert trials.loc["hang", "status"] == "TIMED_OUT"
    assert trials.loc["hang", "intermediate_count"] == 1
    assert trials.loc["no_final", "status"] == "SUCCEEDED"
    assert pd.isna(trials.loc["no_final", "default"])
    assert trials.loc["no_final", "intermediate_count"] == 3
    assert trials.loc["exit1", "status"] == "FAILED"
    assert "TIMED_OUT 1" in (tmp_path / "out" / "summary.md").read_text()
    hang = trials.loc["hang", "duration_s"]
    report(
        "hang / no final / exit 1",
        exit=0,
        hang_killed_after_s=hang,
        statuses=dict(trials["status"]),
    )


def test_a_second_final_result_kills_tpe_and_the_watchdog_says_so(tmp_path):
    """microsoft/nni#5689: a foreign trial reporting its final result twice kills NNI's TPE
    dispatcher; the runner names the dead dispatcher, exports and exits 3 instead of hanging."""
    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    yaml = fault_experiment(
        tmp_path, space, "--mode twice", tuner=SEEDED_TPE, max_trials=4, concurrency=1
    )
    started = time.monotonic()
    with runner(*args(tmp_path, yaml)) as r:
        assert r.wait() == 3, r.output[-3000:]
        assert_nothing_left(r, experiment_id(r))
    elapsed = time.monotonic() - started
    assert "the tuner's dispatcher died" in r.output and "microsoft/nni#5689" in r.output
    assert "dispatcher.log" in r.output and "--resume" in r.output
    trials = exported(tmp_path)
    assert len(trials) >= 1 and trials["default"].notna().any()
    report("dispatcher death", exit=3, runner_wall_s=round(elapsed, 1), kept=len(trials))


def test_a_stalled_study_is_stopped_with_the_stuck_trials_named(tmp_path):
    space = {"mode": {"_type": "choice", "_value": ["hang"]}}
    yaml = fault_experiment(tmp_path, space, max_trials=1, concurrency=1)
    with runner(*args(tmp_path, yaml), "--stall-minutes", "0.1") as r:
        assert r.wait() == 3, r.output[-3000:]
        assert_nothing_left(r, experiment_id(r))
    assert "no trial changed state" in r.output and "is RUNNING" in r.output
    assert "hanging on purpose" in r.output  # the tail of the stuck trial's stderr
    trials = exported(tmp_path)
    assert list(trials["status"]) == ["INTERRUPTED"]
    report("stall (limit 6 s)", exit=3, statuses=list(trials["status"]))


def test_sigkill_the_warm_launcher_mid_study(tmp_path):
    """Its running trials end FAILED; later trials run as plain processes; the study ends.
    The first two trials would run for a minute: only PDEATHSIG can end them within 10 s."""
    space = {"steps": {"_type": "choice", "_value": [300, 301, 5, 6]}}  # GridSearch: in order
    yaml = fault_experiment(tmp_path, space, "--mode slow", max_trials=4)
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: len(r.forked_trials()) == 2, what="two trials forked")
        # both have their parameters (a first intermediate result): NNI 3.0 hands a trial's
        # parameters to whichever trial asks next, so one killed before asking would pass its
        # 301 slow steps to a later trial (a minute longer, the same outcome)
        r.wait_until(lambda: reporting(tmp_path, r) == 2, what="both trials reporting")
        victims = [p.pid for p in r.forked_trials()]
        r.launcher().kill()
        assert not wait_dead(victims, 10), "forked trials outlived their launcher"
        assert r.wait() == 0, r.output[-3000:]
        assert_nothing_left(r, experiment_id(r))
    trials = exported(tmp_path)
    assert len(trials) == 4
    assert sorted(trials["status"]) == ["FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert sorted(trials.loc[trials["status"] == "FAILED", "steps"]) == [300, 301]
    report("launcher SIGKILL", exit=0, failed=2, kept=2, later_trials_plain=2)


def done_and_running(r, done: int) -> bool:
    """The last progress line shows `done` trials succeeded and some running, and the warm
    launcher has forked trials."""
    lines = re.findall(r"(\d+) succeeded, (\d+) running", r.output)
    return (
        bool(lines)
        and int(lines[-1][0]) >= done
        and int(lines[-1][1]) > 0
        and bool(r.forked_trials())
    )


# every suggestion a start-up draw from the seed: a resumed tuner given the same seed would
# draw the stopped run's first configurations again (NNI 3.0 rebuilds it from its classArgs)
STARTUP_TPE = {
    "name": "TPE",
    "classArgs": {"optimize_mode": "maximize", "seed": 0, "tpe_args": {"n_startup_jobs": 20}},
}


def crash_config(tmp_path):
    return fault_experiment(
        tmp_path, UNIFORM_X, "--mode slow --steps 8", tuner=STARTUP_TPE, max_trials=6
    )


def assert_parameters_as_trained(trials: pd.DataFrame) -> None:
    """The fault trial's final is 0.5 + x / 2 of the x it was given: every exported x must be
    the one its trial trained on, and after a resume no configuration may repeat."""
    ran = 2 * (trials["default"] - 0.5)
    assert ((trials["x"] - ran).abs() < 1e-9).all(), trials[["trial_id", "x", "default"]]
    assert trials["x"].nunique() == len(trials), trials[["trial_id", "x"]]
    assert trials["sequence"].is_unique, trials[["trial_id", "sequence"]]


def finished_before(tmp_path, out) -> dict:
    trials = exported(tmp_path, out)
    return dict(zip(trials.loc[trials["default"].notna(), "trial_id"], trials["default"].dropna()))


def resume_and_check(tmp_path, exp_id, before: dict) -> pd.DataFrame:
    """--resume completes the study: 6 trials with a final, the earlier results unchanged,
    the tuner given every earlier result."""
    with runner(
        "--resume", exp_id, "--experiment-dir", str(tmp_path / "nni"), "--out", str(tmp_path / "r")
    ) as r:
        assert r.wait() == 0, r.output[:3000]  # the head: what the watchdog saw comes first
        assert_nothing_left(r, exp_id)
    counted = [int(n) for n in re.findall(r"trials (\d+)/6 done", r.output)]
    assert counted == sorted(counted), r.output[:3000]  # the progress never goes backwards
    trials = exported(tmp_path, "r")
    assert len(trials) == 6 and trials["default"].notna().all()
    assert (trials["status"] == "SUCCEEDED").all()
    after = dict(zip(trials["trial_id"], trials["default"]))
    assert all(after[t] == v for t, v in before.items())
    assert_parameters_as_trained(trials)
    dispatcher = (tmp_path / "nni" / exp_id / "log" / "dispatcher.log").read_text()
    replayed = [int(n) for n in re.findall(r"Replayed (\d+) FINISHED trials", dispatcher)]
    assert replayed and replayed[0] >= len(before)
    return trials


def test_sigkill_the_manager_then_resume(tmp_path):
    yaml = crash_config(tmp_path)
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: done_and_running(r, 2), what="2 done, more running")
        manager = r.manager()
        manager.kill()
        killed = time.monotonic()
        assert r.wait() == 3, r.output[-3000:]
        detected = time.monotonic() - killed
        exp_id = experiment_id(r)
        assert_nothing_left(r, exp_id)
    assert "the manager process exited" in r.output, r.output[-3000:]  # seen, not timed out
    assert f"--resume {exp_id}" in r.output and "nnimanager.log" in r.output
    interrupted = exported(tmp_path)
    assert "INTERRUPTED" in set(interrupted["status"]) and "RUNNING" not in set(
        interrupted["status"]
    )
    before = finished_before(tmp_path, "out")
    assert len(before) >= 2
    trials = resume_and_check(tmp_path, exp_id, before)
    assert trials["restarts"].sum() >= 1  # the interrupted trials ran again, and say so
    report(
        "manager SIGKILL",
        detected_s=round(detected, 1),
        exit=3,
        kept=len(before),
        rerun=int(trials["restarts"].sum()),
        after_resume=len(trials),
    )


def test_sigkill_the_runner_then_resume(tmp_path):
    """The guard stops the manager, the launcher and its trials die with the runner; resume
    completes the study."""
    yaml = crash_config(tmp_path)
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: done_and_running(r, 1), what="a trial done, another running")
        tree = [p.pid for p in r.tree()]
        exp_id = experiment_id(r)
        argv = r.launcher().cmdline()
        folder = Path(argv[argv.index("--socket") + 1]).parent
        assert folder.is_dir()
        killed = time.monotonic()
        os.kill(r.proc.pid, signal.SIGKILL)
        r.wait()
        assert not wait_dead(tree, 10), "processes outlived the runner by more than 10 s"
        cleaned = time.monotonic() - killed
        assert not folder.exists()  # the launcher's socket folder went with it
    assert exp_id not in running_experiment_ids()
    # the space file moved away since: the resume needs only what NNI recorded
    (tmp_path / "space.yaml").rename(tmp_path / "moved.yaml")
    stopped = load_experiment(exp_id, tmp_path / "nni")
    finished = {t.trial_id: t.final["default"] for t in stopped.trials if t.final}
    assert {t.status for t in stopped.trials} <= {"SUCCEEDED", "INTERRUPTED"}
    trials = resume_and_check(tmp_path, exp_id, finished)
    report(
        "runner SIGKILL",
        all_gone_after_s=round(cleaned, 1),
        kept=len(finished),
        rerun=int(trials["restarts"].sum()),
        after_resume=len(trials),
    )
