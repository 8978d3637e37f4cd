"""A failing integration test leaves nothing running: a test that starts a study and then
fails, run in a pytest of its own, leaves no NNI manager, runner, dispatcher or trial behind
(tests/helpers/cleanup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.nni import live_managers
from tests.helpers.paths import REPO
from tests.helpers.runner import NNISUITE

FAILING = """
import os, socket, subprocess, time
from pathlib import Path

import yaml


def test_starts_a_study_then_fails(tmp_path):
    Path(os.environ["HYGIENE_TMP"]).write_text(str(tmp_path))
    trial = "import time, nni\\nnni.get_next_parameter()\\ntime.sleep(120)\\n"
    (tmp_path / "t.py").write_text(trial)
    config = {
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 t.py", "trialCodeDirectory": ".", "trialConcurrency": 1,
        "maxTrialNumber": 2, "tuner": {"name": "Random"}, "trainingService": {"platform": "local"},
    }
    (tmp_path / "c.yml").write_text(yaml.safe_dump(config))
    port = int(os.environ["HYGIENE_PORT"])
    subprocess.Popen(
        [os.environ["NNISUITE"], "run", str(tmp_path / "c.yml"), "--port", str(port),
         "--experiment-dir", str(tmp_path / "nni"), "--no-launcher"],
        cwd=tmp_path, start_new_session=True,  # not in the test's process group: on its own
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    trials = "*/environments/local-env/trials/*"
    while time.monotonic() < deadline and not list((tmp_path / "nni").glob(trials)):
        time.sleep(0.2)  # until a trial runs
    assert False, "failing on purpose with a study running"
"""


@pytest.mark.integration
def test_a_failing_test_leaves_nothing_running(tmp_path):
    from nnisuite.study.manager import free_port

    (tmp_path / "test_fails.py").write_text(textwrap.dedent(FAILING))
    record = tmp_path / "inner-tmp"
    env = os.environ | {
        "HYGIENE_TMP": str(record),
        "HYGIENE_PORT": str(free_port()),
        "NNISUITE": NNISUITE[0],  # the console script beside this Python
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "tests.helpers.cleanup", str(tmp_path / "test_fails.py"),
         "--basetemp", str(tmp_path / "inner")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and "failing on purpose" in proc.stdout, proc.stdout[-3000:]
    inner = record.read_text()
    from tests.helpers.cleanup import started_in

    assert not started_in(inner), "a process of the failed test outlived it"
    managers = live_managers()
    assert not [e for e, pid in managers.items() if inner in " ".join(psutil_cmdline(pid))], (
        managers
    )


def psutil_cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def test_scratch_folders_of_processes_gone_are_removed(tmp_path, monkeypatch):
    """A runner SIGKILLed never runs its cleanup: its launcher / interpreter folders are
    removed by the next nnisuite process that makes one; a live process's folder and a folder
    with no owner record stay."""
    from nnisuite import runtime

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    tmp_path.chmod(0o700)
    make = "from nnisuite.runtime import scratch; print(scratch('nnisuite-launcher-'))"
    killed = subprocess.run(
        [sys.executable, "-c", make], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.strip()
    assert os.path.isdir(killed) and os.path.isfile(os.path.join(killed, runtime.OWNER))
    unrecorded = runtime.runtime_dir() / "nnisuite-python-old"
    unrecorded.mkdir()
    mine = runtime.scratch("nnisuite-python-")
    assert not os.path.exists(killed)  # its process exited
    assert mine.is_dir() and unrecorded.is_dir()
    runtime.scratch("nnisuite-launcher-")
    assert mine.is_dir()  # this process still runs
