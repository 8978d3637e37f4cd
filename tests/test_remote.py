"""NNI's remote (SSH) training service against a real sshd on 127.0.0.1: the shipped remote
experiment, pointed at the loopback worker, runs two trials to SUCCEEDED."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from analysis.store import load_experiment
from experiments.config import to_nni_config
from launcher import REPO
from tests.helpers.nni import running_experiment
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
    assert [t.status for t in exp.trials] == ["SUCCEEDED", "SUCCEEDED"]
    for trial in exp.trials:
        assert {"default", "test_accuracy"} <= set(trial.final)
        assert len(trial.intermediates) == 1
