"""NNI's remote (SSH) training service against a real sshd on 127.0.0.1: the shipped remote
experiment, pointed at the loopback worker, runs two trials to SUCCEEDED."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nni
import pytest
import yaml

from nnisuite.analysis.store import load_experiment
from nnisuite.config.experiment import to_nni_config
from tests.helpers.nni import running_experiment
from tests.helpers.paths import REPO
from tests.helpers.sshd import SFTP, SSHD, loopback_sshd

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        SSHD is None or SFTP is None,
        reason="sshd absent: apt-get install openssh-server (CI installs it)",
    ),
]


def test_remote_experiment_on_a_loopback_sshd(tmp_path):
    with loopback_sshd(tmp_path / "ssh") as (port, user, key):
        raw = yaml.safe_load((REPO / "experiments" / "mlp_tpe_remote.yaml").read_text())
        python = Path(sys.executable)
        raw["trialCommand"] = (
            raw["trialCommand"]
            .replace("/opt/nnisuite/.venv/bin/python", str(python))
            .replace("--epochs 10", "--epochs 1")
        )
        raw.update(
            maxTrialNumber=2,
            trialConcurrency=2,
            experimentWorkingDirectory=str(tmp_path / "nni"),
            searchSpaceFile=str(REPO / "search_spaces" / "mlp_tpe.yaml"),
            trialCodeDirectory=str(REPO),
            nniManagerIp="127.0.0.1",
        )
        raw["trainingService"]["machineList"] = [
            {
                "host": "127.0.0.1",
                "port": port,
                "user": user,
                "sshKeyFile": str(key),
                "pythonPath": str(python.parent),
            }
        ]
        config = to_nni_config(raw, tmp_path / "remote.yaml")
        ids = []
        try:
            with running_experiment(config, timeout_s=300, launcher=False) as (
                nni_exp,
                manager_port,
                status,
            ):
                ids.append(nni_exp.id)
                exp = load_experiment(f"http://127.0.0.1:{manager_port}")
        finally:  # the worker's side of the experiment (the worker is this machine)
            for exp_id in ids:
                shutil.rmtree(Path.home() / "nni-experiments" / exp_id, ignore_errors=True)
    assert status == "DONE", [(t.trial_id, t.status) for t in exp.trials]
    # the worker's nni version, read from its metadata (nni_patches/node_preload.js), is
    # the one NNI's own query (which imports all of nni there) would have logged; the trial
    # keeper's two start scripts ran by path, and the study ran on the keeper they started
    log = (tmp_path / "nni" / ids[0] / "log" / "nnimanager.log").read_text()
    assert "nni's version read from its package metadata (no import)" in log
    for script in ("create_trial_keeper_dir", "launch_trial_keeper"):
        assert f"nnisuite: {script} run by path (nni not imported)" in log
    assert f"Installed nni v{nni.__version__}\n" in log and "version mismatch" not in log
    assert [t.status for t in exp.trials] == ["SUCCEEDED", "SUCCEEDED"]
    for trial in exp.trials:
        assert {"default", "test_accuracy"} <= set(trial.final)
        assert len(trial.intermediates) == 1


def test_the_runner_asks_every_host_before_anything_starts(tmp_path):
    """machineList checked over SSH by the runner: a host that cannot run trials is one line
    naming it (unreachable, key refused, no Python at pythonPath, Python without nni), exit 2,
    no manager started; a good host passes."""
    from nnisuite.config.machines import entries
    from nnisuite.study.manager import free_port
    from tests.helpers.runner import cli
    from tests.helpers.sshd import keygen

    with loopback_sshd(tmp_path / "ssh") as (port, user, key):
        keygen(tmp_path / "stranger")
        python = Path(sys.executable)
        bare = tmp_path / "bare"  # the interpreter this venv was made from, outside the venv
        bare.mkdir()
        (bare / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
        good = {"host": "127.0.0.1", "port": port, "user": user, "sshKeyFile": str(key)}
        hosts = [
            {**good, "pythonPath": str(python.parent)},
            {**good, "port": free_port()},  # nothing listens there
            {**good, "sshKeyFile": str(tmp_path / "stranger")},  # a key sshd does not know
            {**good, "pythonPath": str(tmp_path / "no-python")},  # no Python there
            {**good, "pythonPath": str(bare)},  # a Python without nni
        ]
        raw = yaml.safe_load((REPO / "experiments" / "mlp_tpe_remote.yaml").read_text())
        raw["trainingService"]["machineList"] = hosts
        raw.update(
            searchSpaceFile=str(REPO / "search_spaces" / "mlp_tpe.yaml"),
            trialCodeDirectory=str(REPO),
            experimentWorkingDirectory=str(tmp_path / "nni"),
            nniManagerIp="127.0.0.1",
        )
        assert len(entries(raw)) == 5
        config = tmp_path / "remote.yaml"
        config.write_text(yaml.safe_dump(raw))
        done = cli("nnisuite.study.run", str(config), "--out", str(tmp_path / "o"))
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stdout + done.stderr
    assert "web UI" not in done.stdout and not (tmp_path / "nni").exists()  # nothing started
    said = {int(e.split(f"{user}@127.0.0.1:", 1)[1].split(":", 1)[0]): e for e in errors}
    assert port in said and len(errors) == 4, errors  # the first host is fine; 4 lines
    assert "unreachable over SSH" in said[hosts[1]["port"]]
    only_port = [e for e in errors if f":{port}:" in e]
    assert any("was refused" in e for e in only_port)
    assert any("lacks nni" in e and str(bare / "python3") in e for e in only_port)
    no_python = f"no python3 (or python) in pythonPath {tmp_path / 'no-python'}"
    assert any(no_python in e for e in only_port)
