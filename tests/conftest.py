"""Shared fixtures: run a trial module under NNI's own trial SDK (no manager), find the data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist_available() -> bool:
    from trials.data import find_idx_files

    return find_idx_files("fashion-mnist", None) is not None


needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist (CI installs it)",
)


def read_nni_metrics(sys_dir: Path) -> list[dict]:
    """Parse the metrics file NNI's local trial channel writes (records `ME%06d<json>`)."""
    raw = (sys_dir / ".nni" / "metrics").read_bytes()
    records, pos = [], 0
    while pos < len(raw):
        assert raw[pos : pos + 2] == b"ME", f"bad metric record at byte {pos}"
        size = int(raw[pos + 2 : pos + 8])
        records.append(json.loads(raw[pos + 8 : pos + 8 + size]))
        pos += 8 + size
    return records


@pytest.fixture
def run_nni_trial(tmp_path):
    """Run `python -m MODULE ARGS` as NNI's local platform runs a trial: parameters from
    parameter.cfg, metrics through nni's real SDK into .nni/metrics. Returns (proc, records)."""

    def run(module: str, parameters: dict, args=(), timeout=300, launcher: str | None = None):
        sys_dir = tmp_path / f"trial-{len(list(tmp_path.glob('trial-*')))}"
        sys_dir.mkdir()
        (sys_dir / "parameter.cfg").write_text(
            json.dumps(
                {"parameter_id": 0, "parameter_source": "algorithm", "parameters": parameters}
            )
        )
        env = os.environ | {
            "NNI_PLATFORM": "local",
            "NNI_EXP_ID": "testexp",
            "NNI_TRIAL_JOB_ID": sys_dir.name,
            "NNI_SYS_DIR": str(sys_dir),
            "NNI_OUTPUT_DIR": str(sys_dir),
            "NNI_TRIAL_SEQ_ID": "0",
        }
        command = [sys.executable, "-m", module, *args]
        if launcher:  # through the warm launcher, as `python3 -m trials.launch` runs it
            env["NNISUITE_LAUNCHER"] = launcher
            command = [sys.executable, "-m", "trials.launch", module, *args]
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        metrics = sys_dir / ".nni" / "metrics"
        records = read_nni_metrics(sys_dir) if metrics.exists() else []
        for r in records:
            r["value"] = json.loads(r["value"])  # NNI encodes the value twice
        return proc, records

    return run


@pytest.fixture(scope="module")
def launcher_socket():
    """A real warm launcher for the module's tests; stopped afterwards."""
    from trials.warm import warm_launcher

    with warm_launcher() as path:
        assert path, "the launcher did not start"
        yield path
