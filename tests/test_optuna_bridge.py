"""nnisuite.analysis.optuna: an NNI experiment as an Optuna study (checked against the live
manager's REST API), idempotent on the same storage, bad input as one line and exit 2 with nothing
written, and optuna-dashboard in a real headless Chromium."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import optuna  # noqa: E402 - a declared test dependency (the optuna extra): it must import
import psutil
import pytest

from nnisuite.analysis.store import load_experiment
from nnisuite.benchmarks.nni_db import write_experiment
from nnisuite.study.manager import free_port
from tests.helpers.markers import CHROMIUM, needs_chromium
from tests.helpers.nni import experiment_config, running_experiment
from tests.helpers.paths import DIGITS_YAML, REPO


def bridge(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "nnisuite.analysis.optuna", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("nni")
    write_experiment(root, "synth", trials=15, intermediates=3, seed=4)
    return root


@pytest.mark.integration
def test_round_trip_against_the_live_manager(tmp_path):
    from nnisuite.analysis.optuna import to_study

    config = experiment_config(DIGITS_YAML, tmp_path, max_trials=4, concurrency=2, epochs=2)
    with running_experiment(config, timeout_s=240) as (exp, port, status):
        assert status == "DONE"
        rest = load_experiment(f"http://127.0.0.1:{port}")  # the manager still runs
        study, notes = to_study(rest, f"sqlite:///{tmp_path / 'study.db'}")
    assert not notes
    assert len(study.trials) == len(rest.trials) == 4
    assert study.direction.name == "MAXIMIZE"  # the shipped file's optimize_mode
    by_id = {t.user_attrs["nni_trial_id"]: t for t in study.trials}
    for nni_trial in rest.trials:
        trial = by_id[nni_trial.trial_id]
        assert trial.state.name == "COMPLETE"
        assert trial.params == nni_trial.parameters
        assert trial.value == nni_trial.final["default"]
        assert len(trial.intermediate_values) == len(nni_trial.intermediates) == 2
        assert trial.user_attrs["test_accuracy"] == nni_trial.final["test_accuracy"]
        assert trial.datetime_start is not None and trial.datetime_complete is not None
    assert set(study.trials[0].distributions) == {"features1", "features2", "lr", "batch_size"}
    assert study.trials[0].distributions["lr"].log


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_states_and_a_second_run_replaces_the_study(synthetic, tmp_path):
    db = tmp_path / "study.db"
    con = sqlite3.connect(synthetic / "synth" / "db" / "nni.sqlite")
    update = "UPDATE TrialJobEvent SET event=? WHERE trialJobId=? AND event='SUCCEEDED'"
    with con:  # one trial early-stopped, one failed, neither with a final result
        con.execute(update, ("EARLY_STOPPED", "t00001"))
        con.execute(update, ("FAILED", "t00002"))
        con.execute(
            "DELETE FROM MetricData WHERE trialJobId IN ('t00001','t00002') AND type='FINAL'"
        )
    con.close()
    first = bridge("synth", "--experiment-dir", str(synthetic), "--storage", f"sqlite:///{db}")
    assert first.returncode == 0, first.stderr
    assert "15 trials (COMPLETE 13, FAIL 1, PRUNED 1)" in first.stdout
    second = bridge("synth", "--experiment-dir", str(synthetic), "--storage", f"sqlite:///{db}")
    assert second.returncode == 0 and "replaced study 'nni-synth' (15 trials)" in second.stderr
    study = optuna.load_study(study_name="nni-synth", storage=f"sqlite:///{db}")
    assert len(study.trials) == 15  # not 30
    assert len(optuna.get_all_study_summaries(f"sqlite:///{db}")) == 1


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["nosuch"], "'nosuch' not found"),
        (["NOT_NNI_DB"], "not an NNI database"),
        (["synth", "--storage-url", "sqlite:////no/such/dir/x.db"], "Optuna cannot open storage"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, fragment, synthetic, tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    args = [str(other) if a == "NOT_NNI_DB" else a for a in args]
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    if "--storage-url" in args:
        i = args.index("--storage-url")
        storage = args[i + 1]
        args = args[:i]
    proc = bridge(*args, "--experiment-dir", str(synthetic), "--storage", storage)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not (tmp_path / "study.db").exists()


def test_a_type_optuna_cannot_express_is_named(tmp_path):
    from nnisuite.analysis.optuna import BridgeError, to_study

    write_experiment(tmp_path, "normal", trials=3, intermediates=1)
    exp = load_experiment("normal", tmp_path)
    exp.profile["params"]["searchSpace"]["lr"] = {"_type": "normal", "_value": [0.01, 0.001]}
    with pytest.raises(BridgeError, match="'normal' has no Optuna distribution"):
        to_study(exp)


def test_a_finished_trial_without_an_end_time_is_kept():
    """A manager killed mid-run leaves trials with no end time (seen after SIGKILL + export)."""
    from nnisuite.analysis.optuna import to_study
    from nnisuite.analysis.store import Experiment, Trial

    space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    exp = Experiment(
        id="killed",
        profile={"params": {"searchSpace": space}, "startTime": 1_700_000_000_000},
        trials=[
            Trial("a", 0, "SUCCEEDED", {"x": 0.5}, {"default": 0.9}, start_time=1_700_000_010.0),
            Trial("b", 1, "INTERRUPTED", {"x": 0.2}),
            Trial("c", 2, "RUNNING", {"x": 0.3}, start_time=1_700_000_020.0),
        ],
        source="test",
    )
    study, notes = to_study(exp)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "RUNNING"]
    assert study.trials[0].datetime_complete == study.trials[0].datetime_start
    assert study.trials[1].datetime_start.timestamp() == 1_700_000_000
    assert len(notes) == 2 and "trial a (SUCCEEDED): no end time stored" in notes[0]


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.integration
@needs_chromium
def test_dashboard_in_a_real_browser(synthetic, tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_port()
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnisuite.analysis.optuna",
            "synth",
            "--experiment-dir",
            str(synthetic),
            "--storage",
            storage,
            "--dashboard",
            "--port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_port(port)
        bound = {
            c.laddr.ip
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert bound and bound <= {"127.0.0.1", "::1"}, bound  # this machine only by default
        best = optuna.load_study(study_name="nni-synth", storage=storage).best_value
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/dashboard")
                page.get_by_text("nni-synth").first.wait_for(timeout=30_000)
                page.get_by_text("nni-synth").first.click()
                page.get_by_text("Hyperparameter Importance").first.wait_for(timeout=30_000)
                # the dashboard fills in its trials as it loads them: under load the heading is
                # there before the last trial and the best value are
                page.get_by_text("trial #14").first.wait_for(timeout=60_000)
                page.get_by_text(f"{best:.4f}"[:5]).first.wait_for(timeout=60_000)
                text = page.inner_text("body")
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                browser.close()
        assert f"{best:.4f}"[:5] in text  # the best value, as the dashboard rounds it
        assert "trial #14" in text and "trial #15" not in text  # all 15 trials, numbered from 0
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with pytest.raises(OSError):  # the dashboard stopped with its parent
        socket.create_connection(("127.0.0.1", port), 1)


@pytest.mark.slow  # two commands in their own Pythons: 5 s
def test_the_bridge_and_the_export_print_no_experimental_warning(synthetic, tmp_path):
    """nnisuite calls Optuna's experimental APIs on purpose (metric names, plots): a user's
    terminal does not get Optuna's ExperimentalWarning for them."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = bridge("synth", "--experiment-dir", str(synthetic), "--storage", storage)
    assert proc.returncode == 0, proc.stderr
    export = subprocess.run(
        [sys.executable, "-m", "nnisuite.analysis.export", "synth", "--experiment-dir",
         str(synthetic), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    for stderr in (proc.stderr, export.stderr):
        assert "ExperimentalWarning" not in stderr and "is experimental" not in stderr, stderr
