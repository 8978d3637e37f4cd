"""A pytest plugin every test run loads (tests/conftest.py's pytest_plugins): after each test
that used `tmp_path`, passed or failed, every process whose command line names that folder (an
NNI manager with its experiment folder there, a runner, a guard, a dispatcher) is killed with
its children, so a failing integration test leaves no manager, dispatcher, launcher or trial
behind. Warm launchers and their forked trials die with the runner that started them."""

from __future__ import annotations

import contextlib
import os

import psutil
import pytest


def started_in(folder: str) -> list[psutil.Process]:
    """Processes (not this one nor its ancestors) whose command line names `folder`."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] in mine:
            continue
        if any(folder in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def kill_trees(procs: list[psutil.Process]) -> None:
    everything = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            everything += [*proc.children(recursive=True), proc]
    for proc in everything:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(everything, timeout=10)


@pytest.fixture(autouse=True)
def stop_what_the_test_started(request):
    yield
    folder = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    if folder is not None:
        kill_trees(started_in(str(folder)))
