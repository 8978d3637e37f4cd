"""The warm trial launcher: same results as in-process, signals and SIGKILL reach the child,
crashes are contained, every trial sees its own environment."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from nnisuite.models.costs import TIMINGS
from tests.helpers.paths import REPO

IGNORED = {"train_seconds", *TIMINGS}  # wall-clock, the only keys allowed to differ


def client(launcher, module, *args, env=None, **kw):
    env = os.environ | {"NNISUITE_LAUNCHER": launcher} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "nnisuite.launcher", module, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def launcher_pid(launcher_path) -> int:
    """The launcher's pid, from the ready file beside its socket."""
    return int((Path(launcher_path).parent / "ready").read_text())


def launcher_children(launcher_path) -> list[psutil.Process]:
    """The trials the launcher has forked."""
    return psutil.Process(launcher_pid(launcher_path)).children()


def forked_by_launcher(output: str, launcher_path) -> bool:
    """env_trial's last field is its parent's pid: the launcher's when it forked the trial (the
    client falls back to running the trial itself, silently, when it cannot connect)."""
    return int(output.split()[-1]) == launcher_pid(launcher_path)


class ChildWatch:
    """Records, in a thread, whether the launcher has forked any trial while it runs."""

    def __init__(self, launcher_path):
        self.path, self.seen, self.stop = launcher_path, set(), threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self.stop.is_set():
            self.seen.update(p.pid for p in launcher_children(self.path))
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_same_metrics_as_in_process(run_nni_trial, launcher_socket):
    params = {"features1": 256, "features2": 128, "lr": 0.05, "batch_size": 32}
    args = ["--epochs", "3", "--threads", "1"]
    plain, plain_records = run_nni_trial("nnisuite.trials.mlp", params, args, launcher=False)
    with ChildWatch(launcher_socket) as watch:
        warm, warm_records = run_nni_trial(
            "nnisuite.trials.mlp", params, args, launcher=launcher_socket
        )
    assert plain.returncode == 0 and warm.returncode == 0, warm.stderr
    assert watch.seen, "the trial did not run inside the warm launcher"
    assert len(warm_records) == len(plain_records) == 4
    for a, b in zip(plain_records, warm_records):
        assert a["type"] == b["type"]
        assert {k: v for k, v in a["value"].items() if k not in IGNORED | {"epoch_seconds"}} == {
            k: v for k, v in b["value"].items() if k not in IGNORED | {"epoch_seconds"}
        }


def test_environment_argv_and_cwd_are_the_trials_own(launcher_socket):
    base = {k: v for k, v in os.environ.items() if k != "ONLY_IN_THIS_TRIAL"}
    outs = []
    for trial_id, extra in (("trialA", {"ONLY_IN_THIS_TRIAL": "first"}), ("trialB", {})):
        env = base | {"NNI_TRIAL_JOB_ID": trial_id, "NNISUITE_LAUNCHER": launcher_socket} | extra
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "nnisuite.launcher",
                "tests.fixtures.env_trial",
                "--x",
                trial_id,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert forked_by_launcher(proc.stdout, launcher_socket), proc.stdout
        outs.append(proc.stdout.split())
    (a_id, a_var, _, a_arg, a_cwd, a_pid, _), (b_id, b_var, _, b_arg, _, b_pid, _) = outs
    assert (a_id, a_var, a_arg) == ("trialA", "first", "trialA")
    assert (b_id, b_var, b_arg) == ("trialB", "-", "trialB")  # nothing leaked from trial A
    assert a_cwd == str(REPO) and a_pid != b_pid  # never two trials in one process


def test_a_crashing_trial_does_not_take_the_launcher_down(launcher_socket):
    before = launcher_pid(launcher_socket)
    crash = client(launcher_socket, "tests.fixtures.crash_trial")
    try:
        _, err = crash.communicate(timeout=60)
    finally:
        crash.kill()
    assert crash.returncode == 1 and "crashes on purpose" in err
    ok = client(launcher_socket, "tests.fixtures.env_trial", "--after-crash")
    try:
        out, _ = ok.communicate(timeout=60)
    finally:
        ok.kill()
    assert ok.returncode == 0 and "--after-crash" in out
    assert forked_by_launcher(out, launcher_socket) and launcher_pid(launcher_socket) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killing_the_client_ends_the_child(launcher_socket, sig):
    proc = client(launcher_socket, "tests.fixtures.sleep_trial")
    try:
        child_pid = int(proc.stdout.readline())
        assert child_pid in [c.pid for c in launcher_children(launcher_socket)]
        proc.send_signal(sig)
        proc.wait(timeout=20)
        assert wait_gone(child_pid), f"child {child_pid} outlived its client ({sig.name})"
        if sig == signal.SIGTERM:
            assert proc.returncode == -sig  # the client dies as its child died
        if sig == signal.SIGINT:  # this plain module turns SIGINT into KeyboardInterrupt: exit 1
            assert proc.returncode == 1 and "KeyboardInterrupt" in proc.stderr.read()
    finally:
        proc.kill()
    ok = client(launcher_socket, "tests.fixtures.env_trial")
    try:
        out, _ = ok.communicate(timeout=60)
    finally:
        ok.kill()
    assert ok.returncode == 0 and forked_by_launcher(out, launcher_socket)  # serves the next


def test_without_a_launcher_the_client_runs_the_trial_itself(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NNISUITE_LAUNCHER"}
    stale = env | {"NNISUITE_LAUNCHER": str(tmp_path / "no-such.sock")}  # a dead launcher
    for flag, trial_env in (("--plain", env), ("--stale", stale)):
        proc = subprocess.run(
            [sys.executable, "-m", "nnisuite.launcher", "tests.fixtures.env_trial", flag],
            cwd=REPO,  # NNI runs it from the trial code directory
            env=trial_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0 and flag in proc.stdout, proc.stderr


def test_nni_stopping_a_trial_reads_as_a_stop_not_a_failure(tmp_path, launcher_socket):
    """Under NNI a trial dies of NNI's SIGINT (NNI 3.0 calls any other exit FAILED): through
    the launcher, the client NNI watches dies of SIGINT too."""
    import json

    sys_dir = tmp_path / "trial"
    sys_dir.mkdir()
    (sys_dir / "parameter.cfg").write_text(
        json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"lr": 0.01}})
    )
    env = {
        "NNI_PLATFORM": "local",
        "NNI_EXP_ID": "x",
        "NNI_TRIAL_JOB_ID": "stopme",
        "NNI_SYS_DIR": str(sys_dir),
        "NNI_OUTPUT_DIR": str(sys_dir),
        "NNI_TRIAL_SEQ_ID": "0",
    }
    proc = client(
        launcher_socket, "nnisuite.trials.mlp", "--epochs", "100000", "--threads", "1", env=env
    )
    try:
        metrics = sys_dir / ".nni" / "metrics"
        deadline = time.monotonic() + 60
        while not (metrics.exists() and metrics.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metrics.exists(), "the trial never reported"
        children = [c.pid for c in launcher_children(launcher_socket)]
        assert children, "the trial did not run inside the warm launcher"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGINT
    assert all(wait_gone(pid) for pid in children)


def test_a_block_uses_a_running_launcher_only_if_it_imported_the_same(monkeypatch):
    """warm_launcher inside another (a repeated study's run; the tests' shared launcher) uses
    the running one when it asks for the same imports, and starts its own otherwise (a NAS or a
    user's script's study would lose its imports); each block puts the environment back."""
    from nnisuite.launcher.warm import PRELOADED, SOCKET, warm_launcher

    for name in (SOCKET, PRELOADED):
        monkeypatch.delenv(name, raising=False)
    with warm_launcher(stream=io.StringIO(), preload=()) as outer:
        assert outer and os.environ[SOCKET] == outer and os.environ[PRELOADED] == ""
        with warm_launcher(stream=io.StringIO(), preload=()) as same:
            assert same == outer
        with warm_launcher(stream=io.StringIO(), preload=("json",)) as other:
            assert other and other != outer and os.environ[PRELOADED] == "json"
            assert launcher_pid(other) != launcher_pid(outer)
        assert os.environ[SOCKET] == outer and os.environ[PRELOADED] == ""
    assert SOCKET not in os.environ and PRELOADED not in os.environ


def test_a_forked_trial_inherits_the_launchers_objects_frozen(monkeypatch):
    """The launcher moves what it holds to the collector's permanent generation before each
    fork (nnisuite.launcher.server.GC_FREEZE): the trial's collections skip those objects and do not
    copy their pages. NNISUITE_LAUNCHER_GC_FREEZE=0 turns it off."""
    from nnisuite.launcher.server import GC_FREEZE
    from nnisuite.launcher.warm import PRELOADED, SOCKET, warm_launcher

    for name in (SOCKET, PRELOADED):
        monkeypatch.delenv(name, raising=False)
    frozen = {}
    for switch in ("1", "0"):
        monkeypatch.setenv(GC_FREEZE, switch)
        with warm_launcher(stream=io.StringIO(), preload=()) as path:
            assert path
            out, err = client(path, "tests.fixtures.gc_trial").communicate(timeout=60)
            frozen[switch] = int(out.split()[0])
    # numpy, typeguard, yaml, ... (nni's dependencies, preloaded always): tens of thousands
    assert frozen["1"] > 10_000, frozen
    assert frozen["0"] == 0, frozen
