"""Fixtures: run a trial module under NNI's own trial SDK (no manager); a real warm launcher;
the order tests start in; and, with NNISUITE_TEST_CPU=FILE, each test's CPU seconds. Importable
helpers live in tests/helpers/."""

from __future__ import annotations

import gc
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnisuite.launcher import CLIENT_MODULE
from tests.helpers.nni import read_nni_metrics
from tests.helpers.paths import REPO

# after each test, passed or failed: what it started in its tmp_path is stopped
pytest_plugins = ["tests.helpers.cleanup"]


@pytest.fixture
def run_nni_trial(tmp_path, request):
    """Run `python -m MODULE ARGS` as NNI's local platform runs a trial: parameters from
    parameter.cfg, metrics through nni's real SDK into .nni/metrics. Returns (proc, records).
    By default the trial forks from the test worker's warm launcher (shared_launcher), as NNI
    runs nnisuite's trials (`python3 -m nnisuite.launcher MODULE`: 0.3-1 s of CPU instead of 3-5 s
    for a fresh process importing PyTorch); `launcher=False`: a plain process, as --no-launcher
    runs it; a path: that launcher."""

    def run(module: str, parameters: dict, args=(), timeout=300, launcher: str | bool = True):
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
        if launcher is True:
            launcher = request.getfixturevalue("shared_launcher") or False
        command = [sys.executable, "-m", module, *args]
        if launcher:  # through the warm launcher, as `python3 -m nnisuite.launcher` runs it
            env["NNISUITE_LAUNCHER"] = launcher
            command = [sys.executable, "-m", CLIENT_MODULE, module, *args]
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


SHARED_LAUNCHER = "NNISUITE_TEST_SHARED_LAUNCHER"
# the run's one launcher (pytest_configure): "PID:SOCKET", for every test worker
RUN_LAUNCHER = "NNISUITE_TEST_RUN_LAUNCHER"


def pytest_configure(config):
    """The run's process that starts the others (pytest-xdist's controller, or pytest itself
    without workers) starts one warm launcher (nnisuite's trials' imports) for the whole run,
    without waiting for it: the workers it is about to spawn inherit its socket path
    ($NNISUITE_TEST_RUN_LAUNCHER) and wait for it only when a test needs it (shared_launcher).
    One launcher instead of one per worker: 3.3 s of CPU each. It exits with this process.

    Every process of the run (the controller, each worker) has a "usual" port of its own in
    place of NNI's 8080 (NNISUITE_DEFAULT_PORT, where runners without --port start): a test
    never takes, or stops, a study a developer runs on 8080 beside it."""
    from nnisuite.study.manager import free_port

    os.environ["NNISUITE_DEFAULT_PORT"] = str(free_port())
    if hasattr(config, "workerinput") or os.environ.get(SHARED_LAUNCHER) == "0":
        return
    from nnisuite.launcher.warm import start_server

    proc, sock = config._run_launcher = start_server()
    os.environ[RUN_LAUNCHER] = f"{proc.pid}:{sock}"


def pytest_unconfigure(config):
    from nnisuite.launcher.warm import stop_server

    if getattr(config, "_run_launcher", None) is not None:
        stop_server(*config._run_launcher)
        os.environ.pop(RUN_LAUNCHER, None)


def run_launcher() -> str | None:
    """The run's launcher (pytest_configure) once it accepts trials; None when there is none
    or it did not start (the worker then starts its own)."""
    import psutil

    from nnisuite.launcher.warm import READY_TIMEOUT_S, live, ready_file

    pid, _, sock = os.environ.get(RUN_LAUNCHER, "").partition(":")
    if not sock:
        return None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready_file(Path(sock)).exists() and time.monotonic() < deadline:
        try:
            if psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE:
                return None  # it exited before it was ready
        except psutil.NoSuchProcess:
            return None
        time.sleep(0.05)
    return sock if live(sock) else None


@pytest.fixture(scope="session")
def shared_launcher():
    """One warm launcher (nnisuite's trials' imports) for the test process, set in the
    environment from the first integration or slow test on: the run's (pytest_configure),
    else one of the worker's own. Every study those tests start for nnisuite's trials (a
    repeated study, a table build, a benchmark, a best-model retrain) uses it, as a repeated
    study's runs use the repeat's (nnisuite.launcher.warm), instead of importing PyTorch again in a
    launcher of its own (2.6-3.0 s of CPU each). A study whose trials need other imports (NAS,
    a user's script, the fault trial) still starts its own, and so does every study run through
    tests/helpers/runner.py (the process tree a user's Ctrl-C, kill and resume meet: the runner
    and its own launcher). NNISUITE_TEST_SHARED_LAUNCHER=0: every study its own launcher (the
    fixture is None)."""
    from nnisuite.launcher.warm import PRELOADED, SOCKET, preload_key, warm_launcher

    enabled = os.environ.get(SHARED_LAUNCHER) != "0"
    found = run_launcher() if enabled else None
    if found:  # warm_launcher uses a live one with the same imports instead of starting one
        os.environ[SOCKET], os.environ[PRELOADED] = found, preload_key(None)
    with warm_launcher(enabled, io.StringIO()) as path:
        yield path


@pytest.fixture(autouse=True)
def _studies_share_a_launcher(request):
    if any(request.node.get_closest_marker(m) for m in ("integration", "slow")):
        request.getfixturevalue("shared_launcher")


@pytest.fixture(scope="module")
def launcher_socket():
    """A real warm launcher for the module's tests; stopped afterwards."""
    from nnisuite.launcher.warm import warm_launcher

    with warm_launcher() as path:
        assert path, "the launcher did not start"
        yield path


# Files whose tests run longest (several real NNI studies each), started first.
LONGEST = (
    "test_hosts.py",  # a study that loses a host: 2-3 minutes of waiting on NNI's recovery
    "test_repeat.py",
    "test_foreign.py",
    "test_faults.py",
    "test_hpo_integration.py",
    "test_best.py",
)

# OpenMP threads that wait for work sleep instead of spinning: with parallel test workers on
# few cores, spinning threads burn the CPU the other workers need (processes the tests start
# inherit it). What the tests check does not depend on it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(config, items):
    """Start the long tests first: with parallel workers (`make test` runs pytest -n with one
    test handed out at a time), a long test that starts last is the run's tail. Integration
    tests (real NNI managers), those of the LONGEST files first; then slow ones; then the rest;
    file order within each group."""

    def rank(item) -> tuple[int, int]:
        if item.get_closest_marker("integration"):
            name = item.path.name
            return 0, LONGEST.index(name) if name in LONGEST else len(LONGEST)
        return (1 if item.get_closest_marker("slow") else 2), 0

    items.sort(key=rank)  # stable: file order within a group


def pytest_collection_finish(session):
    """What collection imported (torch, NNI, pandas, every test module: about a million objects
    in a worker) goes to the garbage collector's permanent generation: the tests' full
    collections no longer walk it (the in-process fuzz and unit tests: 2.5-3 s less CPU in 77 s).
    It is still freed as usual when nothing refers to it."""
    gc.collect()
    gc.freeze()


CPU_LOG = os.environ.get("NNISUITE_TEST_CPU")


def cpu_seconds() -> tuple[float, float]:
    """(this process's CPU seconds, those of its children that ended and were waited for)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With NNISUITE_TEST_CPU=FILE, append one JSON line per test to FILE: its worker, start time
    (epoch seconds), wall seconds and the CPU seconds of the worker and of the processes the
    test started (the NNI managers, runners and trials that ended inside it): where `make
    test`'s CPU and time go."""
    if not CPU_LOG:
        yield
        return
    wall, (own, kids) = time.monotonic(), cpu_seconds()
    yield
    own_after, kids_after = cpu_seconds()
    line = {
        "test": item.nodeid,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "started": round(time.time() - (time.monotonic() - wall), 2),
        "wall_s": round(time.monotonic() - wall, 2),
        "cpu_s": round(own_after - own, 2),
        "children_cpu_s": round(kids_after - kids, 2),
    }
    with open(CPU_LOG, "a") as f:  # one short write per line: workers append side by side
        f.write(json.dumps(line) + "\n")
