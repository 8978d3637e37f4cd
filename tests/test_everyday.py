"""Studies run the everyday way, through the runner a user runs (`python -m nnisuite.study.run`) on
real NNI managers: two studies at once without --port, a Ctrl-C while NNI starts, `nnictl stop`
during a study, a bad --out, and a resume of a finished study. (Resume of an interrupted study,
with every trial's parameters checked: test_faults; repeated runs made otherwise: test_repeat.)"""

from __future__ import annotations

import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from nnisuite.study.manager import free_port, quoted, resumable
from nnisuite.study.run import resume_hint
from tests.helpers.nni import nnictl, running_experiment_ids
from tests.helpers.paths import REPO
from tests.helpers.runner import fault_experiment, runner, wait_dead

UNIFORM_X = {"x": {"_type": "uniform", "_value": [0, 1]}}
RANDOM = {"name": "Random", "classArgs": {"seed": 1}}


def args(tmp_path, yaml, out="out"):
    return [str(yaml), "--experiment-dir", str(tmp_path / "nni"), "--out", str(tmp_path / out)]


def experiment_id(output: str) -> str:
    return re.search(r"experiment (\w+):", output).group(1)


def run_cli(*argv, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nnisuite.study.run", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_commands_printed_for_a_folder_with_spaces_can_be_pasted(tmp_path):
    folder = tmp_path / "my runs" / "nni"
    assert quoted(folder) == f"'{folder}'"
    out = Path("relative out")  # printed absolute: the command works from any folder
    assert resume_hint("abc", folder, out).endswith(
        f"--experiment-dir '{folder}' --out '{out.resolve()}'"
    )
    assert not resumable(folder, "abc")  # nothing recorded: no resume command is printed


@pytest.mark.parametrize("what", ["out", "experiment-dir"])
def test_a_bad_output_folder_is_refused_before_anything_starts(tmp_path, what):
    yaml = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=2)
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    for bad, says in ((a_file, "exists and is not a folder"), (a_file / "sub", "is not a folder")):
        flags = {"out": str(tmp_path / "o"), "experiment-dir": str(tmp_path / "nni")}
        flags[what] = str(bad)
        started = time.monotonic()
        proc = run_cli(str(yaml), *(x for k, v in flags.items() for x in (f"--{k}", v)))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert errors == [f"error: --{what} {bad}: {says}"] or (
            errors[0].startswith(f"error: --{what} {bad}:") and says in proc.stderr
        ), proc.stderr
        assert "Traceback" not in proc.stderr and "web UI" not in proc.stdout
        assert time.monotonic() - started < 30
    assert not (tmp_path / "nni").exists() or what == "out"


@pytest.mark.integration
def test_two_studies_at_once_without_a_port_each_watch_their_own(tmp_path):
    """Both want the usual port (the tests' own in place of 8080, conftest): the second must
    take another port, never talk to the first's manager; then a --resume of a finished study
    exports it again and starts nothing."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    yamls = [
        fault_experiment(tmp_path / name, UNIFORM_X, tuner=RANDOM, max_trials=3)
        for name in ("a", "b")
    ]
    with runner(*args(tmp_path / "a", yamls[0]), port=None) as first:
        with runner(*args(tmp_path / "b", yamls[1]), port=None) as second:
            codes = [first.wait(), second.wait()]
    outputs = [first.output, second.output]
    assert codes == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    ids = [experiment_id(o) for o in outputs]
    ports = [int(re.search(r"web UI http://127.0.0.1:(\d+)", o).group(1)) for o in outputs]
    assert ids[0] != ids[1] and ports[0] != ports[1]
    for name, exp_id in zip(("a", "b"), ids):
        trials = pd.read_csv(tmp_path / name / "out" / "trials.csv")
        assert len(trials) == 3 and (trials["status"] == "SUCCEEDED").all()
        assert f"# Experiment {exp_id}" in (tmp_path / name / "out" / "summary.md").read_text()
        assert exp_id not in running_experiment_ids()
    before = (tmp_path / "a" / "out" / "summary.md").read_text()
    ended = re.search(r"ended (\S+); wall time (\d+ s)", before).groups()
    proc = run_cli(
        "--resume", ids[0], "--experiment-dir", str(tmp_path / "a" / "nni"),
        "--out", str(tmp_path / "a" / "again"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "already ran all its 3 trials: nothing to resume" in proc.stdout
    assert "web UI http" not in proc.stdout  # no manager started
    again = (tmp_path / "a" / "again" / "summary.md").read_text()
    assert re.search(r"ended (\S+); wall time (\d+ s)", again).groups() == ended


class OtherManager(http.server.BaseHTTPRequestHandler):
    """Stands for another study's manager on the port: answers everything, records posts."""

    posts: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "RUNNING"}')

    def do_POST(self):  # noqa: N802
        OtherManager.posts.append(self.path)
        self.do_GET()

    def log_message(self, *_):
        pass


@pytest.mark.integration
def test_a_port_taken_while_nni_starts_is_never_talked_to(tmp_path):
    """The race two studies without --port run: the port is free when chosen and taken by
    another server before NNI's manager binds it. NNI's launcher would post this study's config
    to whatever answers there; the runner moves to a free port and leaves the other alone."""
    yaml = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=2)
    port = free_port()
    env = {**os.environ, "NNISUITE_DEFAULT_PORT": str(port)}
    OtherManager.posts = []
    server = None
    try:
        with runner(*args(tmp_path, yaml), port=None, env=env) as r:
            r.wait_until(lambda: r.manager() is not None, what="the NNI manager process")
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), OtherManager)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            assert r.wait() == 0, r.output[-3000:]
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert f"port {port} was taken while NNI started" in r.output
    web = int(re.search(r"web UI http://127.0.0.1:(\d+)", r.output).group(1))
    assert web != port and OtherManager.posts == []
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 2 and (trials["status"] == "SUCCEEDED").all()


@pytest.mark.integration
def test_ctrl_c_while_nni_starts_leaves_no_manager_and_an_honest_hint(tmp_path):
    yaml = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=2)
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: r.manager() is not None, what="the NNI manager process")
        manager = r.manager().pid
        r.proc.send_signal(signal.SIGINT)
        assert r.wait(timeout=120) == 130, r.output[-3000:]
        assert not wait_dead([manager, *r.seen], 15), "a process of the runner outlived it"
    exp_id = experiment_id(r.output)
    assert exp_id not in running_experiment_ids()
    if "nothing to resume" in r.output:
        assert "--resume" not in r.output
    else:  # NNI had recorded the study: the printed command must work
        assert f"--resume {exp_id}" in r.output
        with runner("--resume", exp_id, *args(tmp_path, yaml)[1:4]) as again:
            assert again.wait() == 0, again.output[-3000:]
        assert exp_id not in running_experiment_ids()


@pytest.mark.integration
@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
def test_a_runner_stopped_while_its_launcher_imports_leaves_no_launcher(tmp_path, how):
    """The warm launcher spends its first ~2 s importing PyTorch: a Ctrl-C then (0.3 s after
    the experiment's line) stops it with the study; a runner SIGKILLed then takes it along
    (the launcher asked the kernel for its parent's death before importing anything)."""
    yaml = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=2)
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: r.launcher() is not None, what="the warm launcher process")
        launcher = r.launcher().pid
        if how == "ctrl-c":
            r.proc.send_signal(signal.SIGINT)
            assert r.wait(timeout=120) == 130, r.output[-3000:]
        else:
            r.proc.kill()
            r.proc.wait()
        assert not wait_dead([launcher], 10), "the warm launcher outlived its runner"
        if how == "ctrl-c":
            assert not wait_dead(r.seen, 15), "a process of the runner outlived it"


@pytest.mark.integration
def test_nnictl_stop_during_a_study_is_a_stop_not_a_crash(tmp_path):
    yaml = fault_experiment(
        tmp_path, UNIFORM_X, "--mode slow --steps 40", tuner=RANDOM, max_trials=4
    )
    with runner(*args(tmp_path, yaml)) as r:
        r.wait_until(lambda: " 2 running" in r.output, what="two trials running")
        exp_id = experiment_id(r.output)
        stop = nnictl("stop", exp_id)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        code = r.wait()
        assert not wait_dead(r.seen, 15)
    assert code == 130, r.output[-3000:]
    assert "watchdog" not in r.output and "died" not in r.output
    assert "stopped from outside the runner" in r.output
    assert f"--resume {exp_id}" in r.output
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert "RUNNING" not in set(trials["status"])
    assert exp_id not in running_experiment_ids()
    # the runner helper's --no-plots --no-optuna --no-importance: tables, no plot, no Optuna
    # section, no forest
    assert "no plots: --no-plots" in r.output and not list((tmp_path / "out").glob("*.png"))
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Optuna" not in summary and "Not computed (not asked for" in summary
    assert not (tmp_path / "out" / "importance.csv").exists()


@pytest.mark.integration
def test_ctrl_c_during_the_export_of_a_finished_study_says_how_to_write_it(tmp_path):
    """Ctrl-C once the study finished, while its export (plots, Optuna, importance) is being
    written: exit 130, not 0; --out untouched (the export is staged), and the printed export
    command writes it."""
    yaml = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=2)
    with runner(*args(tmp_path, yaml), plots=True) as r:
        r.wait_until(lambda: "\ntrials: " in r.output, what="the end-of-study counts", timeout=240)
        r.proc.send_signal(signal.SIGINT)
        code = r.wait(timeout=120)
        assert not wait_dead(r.seen, 15), "a process of the runner outlived it"
    if code == 0:  # the export finished before the signal came: nothing to check this time
        assert (tmp_path / "out" / "summary.md").is_file()
        pytest.skip("the export had finished before the Ctrl-C arrived")
    assert code == 130, r.output[-3000:]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    hint = re.search(r"to write it: (nnisuite export .*)", r.output).group(1)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("nnisuite")), *hint.split()[1:], "--no-plots"],
        capture_output=True, text=True, timeout=300, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "trials.csv").is_file()


@pytest.mark.integration
def test_nnictl_resume_beside_the_runner_is_seen_and_its_manager_keeps_its_entry(tmp_path):
    """`nnictl resume ID` while a runner runs ID starts a second manager on the same database
    (the runner's lock is nnisuite's, not NNI's): the runner says so within seconds, and when
    it ends NNI's list of experiments still names the manager that runs, so `nnictl stop ID`
    stops it."""
    from nnisuite.analysis.store import manifest_entry
    from tests.helpers.nni import live_managers

    hold = tmp_path / "release"
    yaml = fault_experiment(
        tmp_path, UNIFORM_X, f"--hold {hold}", tuner=RANDOM, max_trials=2, concurrency=2
    )
    other, exp_id = free_port(), None
    try:
        with runner(*args(tmp_path, yaml)) as r:
            r.wait_until(lambda: Path(f"{hold}.started").exists(), what="a trial started")
            exp_id = experiment_id(r.output)
            started = nnictl("resume", exp_id, "--port", str(other),
                             "--experiment_dir", str(tmp_path / "nni"))  # fmt: skip
            assert started.returncode == 0, started.stdout + started.stderr
            t0 = time.monotonic()
            r.wait_until(lambda: "a second NNI manager" in r.output, what="the warning", timeout=60)
            seen_after = time.monotonic() - t0
            assert f"port {other}" in r.output
            hold.touch()
            assert r.wait() == 0, r.output[-3000:]
        second = live_managers().get(exp_id)
        assert second is not None  # the runner left nnictl's manager alone
        entry = manifest_entry(exp_id)
        assert entry.get("status") != "STOPPED" and entry.get("pid") == second, entry
        stopped = nnictl("stop", exp_id)
        assert "There are no experiments matched" not in stopped.stdout + stopped.stderr
        assert not wait_dead([second], 30)
        print(f"\nsecond manager seen after {seen_after:.1f} s")
    finally:
        left = live_managers().get(exp_id)
        if left is not None:  # the test failed before its own stop
            os.kill(left, signal.SIGKILL)
    assert exp_id not in running_experiment_ids()
