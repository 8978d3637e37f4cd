"""`python -m nnisuite.study.run` as a real subprocess for the fault-injection tests: its output
read by a thread, its process tree (the warm launcher, the forked trials, the NNI manager, the
guard) found with psutil, and everything it started killed at the end whatever happened."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

from nnisuite.launcher.warm import PRELOADED, SOCKET
from nnisuite.study.manager import free_port
from tests.helpers.paths import REPO

# `nnisuite run` as `make` / `pip install -e .` installs it beside this Python
NNISUITE = [str(Path(sys.executable).with_name("nnisuite")), "run"]
RUN_MODULE = [sys.executable, "-m", "nnisuite.study.run"]


class Runner:
    """port=None: the runner chooses its own (no --port). `program` and `cwd`: how and where it
    runs (default `python -m nnisuite.study.run` in the repo; NNISUITE: the console script).
    plots=False (the default here) exports with --no-plots --no-optuna --no-importance: these
    tests are about what happens to a study, and the plots cost 2-3 s of CPU per export, the
    forest 1-2 s (the export's own tests, and the tests that pass plots=True, make them)."""

    def __init__(
        self,
        *args: str,
        env: dict | None = None,
        port: int | None = 0,
        program: list[str] = RUN_MODULE,
        cwd: Path = REPO,
        plots: bool = False,
        own_launcher: bool = True,
    ):
        self.port = free_port() if port == 0 else port
        # its own warm launcher, as a user's runner has; own_launcher=False (a test of what
        # the study makes, not of its process tree): the tests' shared one (conftest)
        env = dict(env or os.environ)
        if own_launcher:
            env = {k: v for k, v in env.items() if k not in (SOCKET, PRELOADED)}
        flags = ["--port", str(self.port)] if self.port else []
        runs = program == RUN_MODULE or program[-1] == "run"  # nnisuite.study.run's flags
        flags += [] if plots or not runs else ["--no-plots", "--no-optuna", "--no-importance"]
        self.proc = subprocess.Popen(
            [*program, *args, *flags],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.seen: set[int] = set()  # every pid of its tree ever observed
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def tree(self) -> list[psutil.Process]:
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(p.pid for p in procs)
        return procs

    def find(self, fragment: str) -> list[psutil.Process]:
        found = []
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                if fragment in " ".join(p.cmdline()):
                    found.append(p)
        return found

    def launcher(self) -> psutil.Process | None:
        """The warm launcher: the runner's own child (its forked trials share its cmdline)."""
        for p in self.find("nnisuite.launcher.server"):
            with contextlib.suppress(psutil.Error):
                if p.ppid() == self.proc.pid:
                    return p
        return None

    def forked_trials(self) -> list[psutil.Process]:
        launcher = self.launcher()
        if launcher is None:
            return []
        with contextlib.suppress(psutil.Error):
            return launcher.children()
        return []

    def manager(self) -> psutil.Process | None:
        found = self.find("nni_node/main.js")
        return found[0] if found else None

    def wait_until(self, condition, timeout: float = 120.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tree()
            if condition():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"runner exited ({self.proc.returncode}) before {what}:\n" + self.output[-3000:]
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n" + self.output[-3000:])

    def wait(self, timeout: float = 240.0) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("runner did not exit:\n" + self.output[-3000:]) from None
        self.reader.join(timeout=5)
        return self.proc.returncode

    def kill_everything(self) -> None:
        """The cleanup every test runs: the runner, then anything it started."""
        self.tree()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        for pid in self.seen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def runner(*args: str, port: int | None = 0, env: dict | None = None, **how):
    r = Runner(*args, port=port, env=env, **how)
    try:
        yield r
    finally:
        r.kill_everything()


def alive(pids) -> list[int]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
    return out


def wait_dead(pids, timeout: float = 10.0) -> list[int]:
    """The pids still alive after `timeout` seconds (empty: all gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pids):
            return []
        time.sleep(0.1)
    return alive(pids)


def cli(module: str, *argv: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGV...` in the repo, run to its end, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fault_experiment(
    tmp_path: Path,
    space: dict,
    command_args: str = "",
    *,
    tuner: dict | None = None,
    max_trials: int = 4,
    concurrency: int = 2,
    **extra,
) -> Path:
    """An experiment YAML running tests.fixtures.fault_trial; returns its path."""
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    raw = {
        "experimentName": "faults",
        "searchSpaceFile": str(space_file),
        "trialCodeDirectory": str(REPO),
        "trialCommand": (
            f"python3 -m nnisuite.launcher tests.fixtures.fault_trial {command_args}".strip()
        ),
        "trialConcurrency": concurrency,
        "maxTrialNumber": max_trials,
        "tuner": tuner or {"name": "GridSearch"},
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path / "nni"),
        **extra,
    }
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
