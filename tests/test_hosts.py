"""A study spread over three machines, for real: network namespaces made by the test (a manager
with a bridge at 192.0.2.1, hosts at 192.0.2.11-13, each its own sshd), NNI's remote training
service, the runner in the manager's namespace. Which host ran each trial is exported; a host
lost mid-study (every process in it killed, its link down) fails its trials and the study ends
on the others; a host whose link drops for a few seconds and a host 10x slower stall nothing.
Every namespace and sshd is removed afterwards, also on failure."""

from __future__ import annotations

import contextlib
import getpass
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
import yaml

from tests.helpers.markers import needs_sshd
from tests.helpers.netns import cannot_make, listed, star
from tests.helpers.paths import REPO
from tests.helpers.sshd import keygen, sshd

WHY_NOT = cannot_make()
pytestmark = [
    pytest.mark.integration,
    needs_sshd,
    pytest.mark.skipif(WHY_NOT is not None, reason=f"no network namespaces: {WHY_NOT}"),
]
PYTHON = Path(sys.executable)


@contextlib.contextmanager
def three_hosts(root: Path):
    """(manager, hosts, machine_list): the namespaces up, an sshd on port 22 of each host."""
    keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    with star(3) as (manager, hosts), contextlib.ExitStack() as stack:
        for i, host in enumerate(hosts):
            stack.enter_context(
                sshd(root / f"sshd{i}", host.address, 22, root / "authorized_keys", host)
            )
        machines = [
            {
                "host": h.address,
                "port": 22,
                "user": getpass.getuser(),
                "sshKeyFile": str(root / "client_key"),
                "pythonPath": str(PYTHON.parent),
            }
            for h in hosts
        ]
        names = {manager.name, *(h.name for h in hosts)}
        try:
            yield manager, hosts, machines
        finally:
            for pid in [p for m in (manager, *hosts) for p in m.pids()]:  # nothing outlives it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert not names & set(listed())


def fault_study(root: Path, manager, machines, trials: int, steps: int, extra: str = "") -> Path:
    (root / "space.yaml").write_text("x: {_type: uniform, _value: [0, 1]}\n")
    raw = {
        "experimentName": "hosts",
        "searchSpaceFile": str(root / "space.yaml"),
        "trialCodeDirectory": str(REPO),
        "trialCommand": f"python3 -m nnisuite.launcher --python {PYTHON} "
        "tests.fixtures.fault_trial "
        f"--mode slow --steps {steps} {extra}".strip(),
        "trialConcurrency": 3,
        "maxTrialNumber": trials,
        "tuner": {"name": "Random", "classArgs": {"seed": 0}},
        "experimentWorkingDirectory": str(root / "nni"),
        "nniManagerIp": manager.address,
        "trainingService": {"platform": "remote", "machineList": machines},
    }
    path = root / "hosts.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# the tables and the summary only: the plots and importance (4 s of CPU) say nothing of hosts
QUIET = ("--no-plots", "--no-optuna", "--no-importance")


class Run:
    """The runner inside the manager's namespace, its output read line by line."""

    def __init__(self, manager, config: Path, out: Path):
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            manager.run(
                str(PYTHON), "-m", "nnisuite.study.run", str(config), "--out", str(out), *QUIET
            ),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line))

    @property
    def output(self) -> str:
        return "".join(line for _, line in self.lines)

    def when(self, pattern: str, timeout: float = 240) -> float:
        """Seconds since the start at which a line matched `pattern` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if re.search(pattern, line):
                    return at
            assert self.proc.poll() is None or time.monotonic() < deadline, self.output[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output[-3000:]}")

    def wait(self, timeout: float = 400) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def exported(root: Path) -> tuple[pd.DataFrame, str]:
    return pd.read_csv(root / "out" / "trials.csv"), (root / "out" / "summary.md").read_text()


def workers_of(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """From NNI's own log, independently of the export: worker number -> host, and
    trial -> worker number."""
    (log,) = [p for p in (root / "nni").glob("*/log/nnimanager.log") if p.parts[-3][0] != "_"]
    text = log.read_text()
    hosts = dict(re.findall(r"RemoteV3\.Worker\.(\d+)\) Initializing SSH worker (\S+)", text))
    trials = {t: w for t, w in re.findall(r"Created trial (\S+) on worker (\d+)", text)}
    return hosts, trials


def test_a_study_over_three_hosts_says_which_host_ran_each_trial(tmp_path):
    raw = yaml.safe_load((REPO / "experiments" / "mlp_tpe_remote.yaml").read_text())
    with three_hosts(tmp_path) as (manager, hosts, machines):
        raw["trialCommand"] = (
            raw["trialCommand"]
            .replace("/opt/nnisuite/.venv/bin/python", str(PYTHON))
            .replace("--epochs 10", "--epochs 1")
        )
        raw.update(
            maxTrialNumber=3,  # NNI hands trials to the hosts in turn: one each
            trialConcurrency=3,
            experimentWorkingDirectory=str(tmp_path / "nni"),
            searchSpaceFile=str(REPO / "search_spaces" / "mlp_tpe.yaml"),
            trialCodeDirectory=str(REPO),
            nniManagerIp=manager.address,
        )
        raw["trainingService"]["machineList"] = machines
        config = tmp_path / "remote.yaml"
        config.write_text(yaml.safe_dump(raw))
        run = Run(manager, config, tmp_path / "out")
        assert run.wait() == 0, run.output[-3000:]
    assert "warm launcher" not in run.output  # trials run on the hosts, not forked here
    trials, summary = exported(tmp_path)
    assert len(trials) == 3 and (trials["status"] == "SUCCEEDED").all()
    assert set(trials["host"]) == {h.address for h in hosts}  # all three ran trials
    worker_host, trial_worker = workers_of(tmp_path)
    for row in trials.itertuples():  # the export agrees with NNI's log, trial by trial
        assert worker_host[trial_worker[row.trial_id]] == row.host
    assert "trials per host" in summary and trials["test_accuracy"].notna().all()
    (log,) = [p for p in (tmp_path / "nni").glob("*/log/nnimanager.log") if p.parts[-3][0] != "_"]
    assert log.read_text().count("nnisuite: skipped `") == 3  # no pip upgrade on the hosts


def test_a_lost_host_fails_its_trials_and_a_short_outage_or_a_slow_host_stall_nothing(tmp_path):
    """One study, three things that happen to hosts: 192.0.2.12 is lost for good mid-study
    (every process killed, its link down), 192.0.2.11's link drops for 8 s and comes back,
    192.0.2.13 runs every step 10x slower. The lost host's trials FAIL, the runner names it once,
    and the study ends on the other two (exit 0); nothing else is reported."""
    with three_hosts(tmp_path) as (manager, hosts, machines):
        flaky, lost, slow = hosts
        config = fault_study(
            tmp_path, manager, machines, trials=7, steps=10, extra=f"--slow-on {slow.address}"
        )
        run = Run(manager, config, tmp_path / "out")
        run.when(r"3 running")
        time.sleep(1)
        gone_at = time.monotonic() - run.started
        lost.lose()  # for good
        flaky.unplug()  # gone for 8 s, well inside what counts as lost
        time.sleep(8)
        flaky.plug()
        said_at = run.when(rf"worker {re.escape(lost.address)} lost", timeout=180)
        code = run.wait()
    assert code == 0, run.output[-3000:]
    assert run.output.count(" lost; ") == 1 and "watchdog" not in run.output
    trials, summary = exported(tmp_path)
    assert len(trials) == 7
    there = trials[trials["host"] == lost.address]
    assert len(there) >= 1 and (there["status"] == "FAILED").all(), there  # never RUNNING
    others = trials[trials["host"] != lost.address]
    assert (others["status"] == "SUCCEEDED").all(), others  # the outage lost nothing
    assert {flaky.address, slow.address} <= set(others["host"])
    duration = others.groupby("host")["duration_s"].median()
    # that host was slow indeed: 10 steps of 2 s there against 0.2 s (start-up aside)
    assert duration[slow.address] - duration[flaky.address] > 12
    detect = said_at - gone_at
    print(f"host lost at {gone_at:.0f} s, said at {said_at:.0f} s: {detect:.0f} s to detect")
    assert detect < 120
