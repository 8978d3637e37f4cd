"""The exporter on real experiments: agreement with NNI's own export while the manager runs and
with the database after it stops and after a resume; dict and scalar metrics; a failing trial;
an experiment without results; and every expected error as one line with exit code 2."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from nnisuite.analysis import export as export_cli
from nnisuite.analysis.export import export_experiment
from nnisuite.analysis.store import ExportError, load_experiment
from nnisuite.config.experiment import to_nni_config
from nnisuite.study.manager import free_port, watch
from tests.helpers.nni import nnictl, running_experiment, running_experiment_ids
from tests.helpers.paths import REPO


def mixed_config(tmp_path):
    raw = {
        "experimentName": "mixed",
        "searchSpace": {"mode": {"_type": "choice", "_value": ["dict", "scalar", "fail"]}},
        "trialCommand": f"{sys.executable} tests/fixtures/mixed_trial.py",
        "trialCodeDirectory": str(REPO),
        "trialConcurrency": 3,
        "maxTrialNumber": 3,
        "tuner": {"name": "GridSearch"},
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path / "nni"),
    }
    return to_nni_config(raw, tmp_path / "mixed.yaml")


def rows_by_id(df: pd.DataFrame) -> dict:
    return {r["trial_id"]: r for r in df.to_dict("records")}


@pytest.mark.integration
def test_export_lifecycle_running_stopped_resumed(tmp_path):
    config = mixed_config(tmp_path)
    with running_experiment(config, timeout_s=180) as (exp, port, status):
        assert status in ("DONE", "NO_MORE_TRIAL")
        # the tables only where the tables are compared (the stopped export draws, as users get it)
        running = export_experiment(f"http://127.0.0.1:{port}", tmp_path / "rest", plots=False)
        nni_json = tmp_path / "nni_export.json"
        out = nnictl("experiment", "export", exp.id, "--type", "json", "--filename", str(nni_json))
        assert nni_json.exists(), out.stdout + out.stderr
        exp_id = exp.id
    rest = rows_by_id(running.trials)
    by_mode = {r["mode"]: r for r in rest.values()}
    assert set(by_mode) == {"dict", "scalar", "fail"}
    assert by_mode["dict"]["default"] == 0.9 and by_mode["dict"]["test_accuracy"] == 0.8
    assert by_mode["scalar"]["default"] == 0.7 and pd.isna(by_mode["scalar"]["test_accuracy"])
    assert by_mode["fail"]["status"] == "FAILED" and pd.isna(by_mode["fail"]["default"])
    assert by_mode["fail"]["intermediate_count"] == 1
    assert by_mode["dict"]["intermediate_count"] == 2
    assert by_mode["dict"]["best_intermediate"] == pytest.approx(0.6)
    # NNI's own export (finished trials only): the same trials and final metrics. Its
    # parameters can belong to another trial (NNI 3.0 hands parameters out in request order);
    # ours are the ones each trial's metrics name, so they match the metric's shape.
    records = json.loads(nni_json.read_text())
    assert {r["trialJobId"] for r in records} == {i for i, r in rest.items() if r["mode"] != "fail"}
    for record in records:
        ours = rest[record["trialJobId"]]
        value = json.loads(record["value"])
        assert (value["default"] if isinstance(value, dict) else value) == ours["default"]
        assert ours["mode"] == ("dict" if isinstance(value, dict) else "scalar")
    # the database after the manager stopped: the same table, trial by trial
    stopped = export_experiment(exp_id, tmp_path / "db", tmp_path / "nni")
    db_rows = rows_by_id(stopped.trials)
    assert db_rows.keys() == rest.keys()
    for trial_id, row in rest.items():
        for key in ("status", "mode", "default", "test_accuracy", "intermediate_count"):
            a, b = row[key], db_rows[trial_id][key]
            assert (pd.isna(a) and pd.isna(b)) or a == b, (trial_id, key, a, b)
    assert (tmp_path / "db" / "intermediate.png").read_bytes()[:4] == b"\x89PNG"
    steps = pd.read_csv(tmp_path / "db" / "intermediate.csv")
    assert len(steps) == 5 and set(steps.columns) >= {"trial_id", "step", "default", "loss"}
    assert "FAILED 1" in stopped.summary and "SUCCEEDED 2" in stopped.summary
    # resume (a new profile revision), stop again: the export still agrees
    for _ in range(3):  # plain nnictl gives its manager 3 s to listen: under load, try again
        port = free_port()
        resumed = nnictl(
            "resume", exp_id, "--experiment_dir", str(tmp_path / "nni"), "--port", str(port)
        )
        if "Create experiment failed" not in resumed.stdout + resumed.stderr:
            break
    try:
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        watch(port, 3, poll_s=0.5, timeout_s=20, stream=io.StringIO())
    finally:
        nnictl("stop", exp_id)
    assert exp_id not in running_experiment_ids()
    db = tmp_path / "nni" / exp_id / "db" / "nni.sqlite"
    with sqlite3.connect(db) as conn:
        revisions = conn.execute("SELECT COUNT(DISTINCT revision) FROM ExperimentProfile")
        assert revisions.fetchone()[0] > 1
    again = rows_by_id(export_experiment(str(db), tmp_path / "resumed", plots=False).trials)
    assert again.keys() == rest.keys()
    assert {r["mode"]: r["default"] for r in again.values()}["dict"] == 0.9
    # an experiment without any final result still exports, and says so
    empty_db = tmp_path / "empty.sqlite"
    shutil.copyfile(db, empty_db)
    with sqlite3.connect(empty_db) as conn:
        conn.execute("DELETE FROM MetricData WHERE type = 'FINAL'")
    empty = export_experiment(str(empty_db), tmp_path / "empty", plots=False)
    assert empty.trials["default"].isna().all() and len(empty.trials) == 3
    assert "No trial has a final result yet" in empty.summary


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "nnisuite.analysis.export", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def assert_clean_error(proc, *fragments):
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_experiment_id(tmp_path):
    proc = run_cli("nosuchid", "--out", str(tmp_path / "o"), "--experiment-dir", str(tmp_path))
    assert_clean_error(proc, "'nosuchid' not found")


def test_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "nni.sqlite"
    bad.write_text("hello, not sqlite\n" * 100)
    assert_clean_error(run_cli(str(bad), "--out", str(tmp_path / "o")), "not a readable")


def test_sqlite_database_that_is_not_nni(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert_clean_error(run_cli(str(other), "--out", str(tmp_path / "o")), "not an NNI database")


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_truncated_database(tmp_path):
    db = tmp_path / "full.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE MetricData (timestamp integer, data text)")
        conn.executemany(
            "INSERT INTO MetricData VALUES (?, ?)", [(i, "x" * 500) for i in range(2000)]
        )
    truncated = tmp_path / "nni.sqlite"
    truncated.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    assert_clean_error(run_cli(str(truncated), "--out", str(tmp_path / "o")), "not a readable")


def test_unreachable_manager_url(tmp_path):
    port = free_port()
    assert_clean_error(
        run_cli(f"http://127.0.0.1:{port}", "--out", str(tmp_path / "o")), "not reachable"
    )


def test_errors_are_export_errors_in_python_too(tmp_path):
    with pytest.raises(ExportError):
        load_experiment("nosuchid", tmp_path)
    assert (
        export_cli.main(
            ["nosuchid", "--out", str(tmp_path / "o"), "--experiment-dir", str(tmp_path)]
        )
        == 2
    )


def test_assessor_stops_read_from_the_manager_log(tmp_path):
    """USER_CANCELED + the manager's cancel line = EARLY_STOPPED, unless the trial had already
    reported its final result (the stop came too late to cut anything: SUCCEEDED)."""
    from nnisuite.analysis.store import Trial, correct_statuses, seconds

    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "nnimanager.log").write_text(
        '[INFO] (NNIManager) cancelTrialJob: "cut"\n'
        '[INFO] (NNIManager) cancelTrialJob: "late"\n'
        "[INFO] Trial job slow has been canceled because it is over max trial duration.\n"
        "[INFO] Trial job quick has been canceled because it is over max trial duration.\n"
        "[INFO] Trial job unknown has been canceled because it is over max trial duration.\n"
    )
    trials = {
        "cut": Trial("cut", 0, "USER_CANCELED", intermediates=[{"default": 0.1}] * 2),
        "late": Trial("late", 1, "USER_CANCELED", final={"default": 0.2}),
        "slow": Trial("slow", 2, "USER_CANCELED", start_time=100.0, end_time=109.5),
        "user": Trial("user", 3, "USER_CANCELED"),  # canceled by a person: no log line
        # exited 1 after 3.8 s; NNI's check, reading its previous poll, "canceled" it at 4.3 s
        "quick": Trial("quick", 4, "FAILED", start_time=100.0, end_time=103.8),
        "unknown": Trial("unknown", 5, "FAILED", start_time=100.0),  # no end: cannot tell
    }
    correct_statuses(trials, tmp_path, "4s")
    assert {k: t.status for k, t in trials.items()} == {
        "cut": "EARLY_STOPPED",
        "late": "SUCCEEDED",
        "slow": "TIMED_OUT",
        "user": "USER_CANCELED",
        "quick": "FAILED",
        "unknown": "TIMED_OUT",
    }
    assert [seconds(d) for d in (4, "4s", "1.5m", "2h", "1d", "7", None, "soon")] == [
        4,
        4.0,
        90.0,
        7200.0,
        86400.0,
        7.0,
        None,
        None,
    ]


def test_an_export_replaces_an_earlier_one_whole_and_keeps_your_files(tmp_path):
    """--out holding an earlier export: the new one leaves none of the earlier files it does
    not write itself (an importance table or plots of another experiment beside a summary
    that says they were not computed); a file of the user's there stays."""
    from nnisuite.analysis.export import export
    from nnisuite.analysis.store import load_experiment
    from nnisuite.benchmarks.nni_db import write_experiment

    root = tmp_path / "nni"
    write_experiment(root, "first", trials=12, intermediates=3, seed=1)
    write_experiment(root, "second", trials=4, intermediates=2, seed=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    export(load_experiment("first", root, live=False), out, plots=True, optuna=False)
    assert list(out.glob("*.png")) and (out / "importance.csv").is_file()
    second = export(load_experiment("second", root, live=False), out, plots=False, optuna=False)
    left = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert left == {p.name for p in second.files} | {"notes.txt"}, left
    assert not list(out.glob("*.png")) and (out / "notes.txt").read_text() == "mine"
    assert "second" in (out / "summary.md").read_text()


FORK_HIT = """
import os, signal, sys, time
from nnisuite.analysis.export import Forked

armed = [True]


def ctrl_c_during_the_fork():  # runs in the parent between fork() and Forked's next line
    if armed[0]:
        armed[0] = False
        os.kill(os.getpid(), signal.SIGINT)


signal.signal(signal.SIGINT, signal.default_int_handler)  # as the runner has it (an xdist
# worker, this script's parent, ignores SIGINT, and its children inherit that)
os.register_at_fork(after_in_parent=ctrl_c_during_the_fork)
try:
    Forked(lambda: time.sleep(5))  # killed, or it holds this pipe for 5 s
    print("lost")
except KeyboardInterrupt:
    print("raised")
try:
    print("child left", os.waitpid(-1, os.WNOHANG))
except ChildProcessError:
    print("no child left")
"""


def test_a_ctrl_c_while_an_export_worker_forks_is_raised_once_and_leaves_no_worker():
    """CI caught a double Ctrl-C landing inside logging's at-fork hook: Python printed
    "Exception ignored ... KeyboardInterrupt" with a traceback and dropped the interrupt."""
    run = subprocess.run(
        [sys.executable, "-c", FORK_HIT], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert run.stdout.split("\n")[:2] == ["raised", "no child left"], run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
