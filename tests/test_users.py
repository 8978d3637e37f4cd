"""One machine, several users: what nnisuite keeps outside a user's folders is that user's own
(nnisuite.runtime), a port that a stopped manager left in TIME_WAIT is free, and two uids run
studies one after the other on one port and at the same time."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from nnisuite import runtime
from nnisuite.study.manager import free_port, port_is_free, port_problem
from tests.helpers.nni import running_experiment_ids
from tests.helpers.paths import DIGITS_YAML

NOBODY = 65534


def test_the_runtime_folder_is_private_and_per_user(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = runtime.runtime_dir()
    assert folder == tmp_path / f"nnisuite-{os.getuid()}"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert runtime.scratch("x-").parent == folder
    folder.chmod(0o777)  # a folder others may write is never used: a fresh private one instead
    other = runtime.runtime_dir()
    assert other != folder and runtime.private(other) and other.parent == tmp_path


def test_a_folder_of_that_name_owned_by_another_user_is_not_used(tmp_path, monkeypatch):
    if os.getuid() != 0:
        pytest.skip("making a folder of another user's needs root")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"nnisuite-{os.getuid()}"
    planted.mkdir(mode=0o700)
    os.chown(planted, NOBODY, NOBODY)  # someone else made it first, e.g. to read our sockets
    folder = runtime.runtime_dir()
    assert folder != planted and runtime.private(folder)


def test_xdg_runtime_dir_is_used_when_it_is_ours(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime.runtime_dir() == xdg / "nnisuite"


def test_a_port_left_in_time_wait_is_free_and_a_listening_one_is_not():
    port = free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end waits in TIME_WAIT on `port`
        client.close()
        assert not port_is_free(port)  # still listening
        assert "is taken" in port_problem(port)
    import psutil

    waiting = [
        c
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_TIME_WAIT
    ]
    assert waiting  # the case the check must not refuse
    assert port_is_free(port) and port_problem(port) is None


@contextlib.contextmanager
def shared_folder():
    """A folder under /tmp that another uid can reach (pytest's own tmp_path is root's 0700)."""
    root = Path(tempfile.mkdtemp(prefix="nnisuite-users-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def shared_venv(root: Path) -> Path:
    """A venv every uid can run: this venv's Python may live in root's home (pyenv), so a
    Python other users can execute, with this venv's packages (nnisuite's editable install
    included) reached through a .pth file. Its python, or a skip when there is none."""
    site = Path(sysconfig.get_paths()["purelib"])
    hooks = [
        line
        for pth in site.glob("__editable__*nnisuite*.pth")
        for line in pth.read_text().splitlines()
    ]
    for base in ("/usr/bin/python3.11", "/usr/local/bin/python3.11"):
        probe = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        if not os.path.exists(base) or subprocess.run([*probe, base, "-c", "pass"]).returncode:
            continue
        venv = root / "venv"
        subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
        (purelib,) = venv.glob("lib/python3.11/site-packages")
        (purelib / "borrowed.pth").write_text("\n".join([str(site), *hooks]) + "\n")
        return venv / "bin" / "python"
    pytest.skip("no Python 3.11 that another uid may run")


def study_command(python: Path, work: Path, port: int, uid: int) -> tuple[list[str], dict]:
    """`nnisuite run` of the digits study as `uid`, its files under `work`."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    args = [str(python), "-m", "nnisuite", "run", str(DIGITS_YAML), "--max-trials", "2",
            "--epochs", "1", "--no-plots", "--no-optuna", "--no-importance", "--port", str(port),
            "--experiment-dir", str(work / "nni"), "--out", str(work / "out")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNISUITE_")}
    env |= {"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("XDG_RUNTIME_DIR", None)
    if uid != os.getuid():
        for path in (work, home):
            os.chown(path, uid, uid)
        args = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *args]
    return args, env


def started(args: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def finished(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, out[-3000:]
        outs.append(out)
    return outs


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_two_users_run_studies_one_after_the_other_on_one_port_and_at_once():
    with shared_folder() as root:
        procs, ids = [], []
        python = shared_venv(root)
        try:
            port = free_port()
            for who, uid in (("root-1", 0), ("nobody-1", NOBODY)):  # one after the other
                args, env = study_command(python, root / who, port, uid)
                procs.append(started(args, env, root / who))
                (out,) = finished(procs[-1:])
                ids += [line.split()[1].rstrip(":") for line in out.splitlines()
                        if line.startswith("experiment ")]  # fmt: skip
            ports = [free_port(), free_port()]
            pair = []
            for (who, uid), p in zip((("root-2", 0), ("nobody-2", NOBODY)), ports):  # at once
                args, env = study_command(python, root / who, p, uid)
                pair.append(started(args, env, root / who))
            procs += pair
            for out in finished(pair):
                ids += [line.split()[1].rstrip(":") for line in out.splitlines()
                        if line.startswith("experiment ")]  # fmt: skip
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for who in ("root-1", "nobody-1", "root-2", "nobody-2"):
            trials = pd.read_csv(root / who / "out" / "trials.csv")
            assert len(trials) == 2 and set(trials.status) == {"SUCCEEDED"}, who
        assert (Path(tempfile.gettempdir()) / f"nnisuite-{NOBODY}").stat().st_uid == NOBODY
        assert not set(ids) & set(running_experiment_ids().split())
        import psutil

        deadline = time.monotonic() + 10
        while [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == NOBODY]:
            assert time.monotonic() < deadline, "a process of the second user outlived its study"
            time.sleep(0.2)
