"""The launcher's pieces that run in this process: the wire protocol over a real socket pair
(descriptors passed with SCM_RIGHTS), the client's argument split and its choice of Python."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from nnisuite.launcher.client import connect, project_python, split_args
from nnisuite.launcher.protocol import recv_exact, recv_message, send_message
from tests.helpers.paths import REPO


def test_a_message_and_descriptors_cross_a_socket_pair(tmp_path):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        big = {"argv": ["nnisuite.trials.mlp", "--x"], "env": {"K": "v" * 70_000}, "cwd": "/"}
        with open(tmp_path / "f", "w") as f:
            send_message(a, big, fds=(f.fileno(),))
            message, fds = recv_message(b, with_fds=True)
        assert message == big and len(fds) == 1  # longer than one recv: read to the end
        with os.fdopen(fds[0], "w") as passed:  # the same open file, through the socket
            passed.write("through the descriptor")
        assert (tmp_path / "f").read_text() == "through the descriptor"
        send_message(a, {"exit": 3})
        assert recv_message(b) == ({"exit": 3}, [])


def test_a_message_that_arrives_in_pieces_is_read_whole():
    import threading
    import time

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:

        def dribble():
            for piece in (b"ab", b"cd", b"ef"):
                a.sendall(piece)
                time.sleep(0.05)

        sender = threading.Thread(target=dribble)
        sender.start()
        assert recv_exact(b, 6) == b"abcdef"
        sender.join()


def test_a_closed_peer_is_a_connection_error():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with b:
        a.sendall(b"\x00\x00")  # half a header, then gone
        a.close()
        with pytest.raises(ConnectionError):
            recv_message(b)
    c, d = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with c, d:
        c.sendall(b"abc")
        assert recv_exact(d, 3) == b"abc"


def test_the_client_splits_its_arguments_like_python_m(capsys):
    assert split_args(["nnisuite.trials.mlp", "--epochs", "3"]) == (
        None,
        "nnisuite.trials.mlp",
        ["--epochs", "3"],
    )
    assert split_args(["-m", "nnisuite.trials.mlp"]) == (None, "nnisuite.trials.mlp", [])
    assert split_args(["--python", "/p/python", "nnisuite.trials.rnn", "-x"]) == (
        "/p/python",
        "nnisuite.trials.rnn",
        ["-x"],
    )
    for bad in ([], ["--epochs", "3"], ["--python"]):
        with pytest.raises(SystemExit) as exit_:
            split_args(bad)
        assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        split_args(["--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


def test_the_client_picks_python_in_order(monkeypatch, tmp_path):
    monkeypatch.setenv("NNISUITE_PYTHON", "/from/env")
    assert project_python("/explicit") == "/explicit"
    assert project_python() == "/from/env"
    monkeypatch.delenv("NNISUITE_PYTHON")
    venv = REPO / ".venv" / "bin" / "python"
    assert project_python() == (str(venv) if venv.exists() else sys.executable)
    assert connect(str(tmp_path / "nothing.sock")) is None  # no launcher: the plain path


@pytest.mark.parametrize("stopped", [True, False], ids=["stopped", "not stopped"])
def test_a_client_whose_launcher_dies_waits_for_the_stop(tmp_path, stopped):
    """A launcher that dies mid-trial (its runner was killed): the client dies of the stop that
    follows (NNI records the trial stopped, and a resume runs it again), or exits 1 (failed)
    when no stop comes within its grace."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time

    from nnisuite.launcher.protocol import recv_message, send_message
    from tests.helpers.paths import REPO

    path = str(tmp_path / "s")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def launcher_that_dies():
        conn, _ = server.accept()
        for fd in recv_message(conn, with_fds=True)[1]:  # the trial's stdio: not kept open
            os.close(fd)
        send_message(conn, {"pid": 2**22 + 7})  # a child that no longer exists
        conn.close()  # the launcher is gone

    threading.Thread(target=launcher_that_dies, daemon=True).start()
    code = (
        "from nnisuite.launcher import client; client.LOST_GRACE_S = 1.5; "
        "client.main(['nnisuite.trials.mlp'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "NNISUITE_LAUNCHER": path},
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    if stopped:
        proc.stderr.readline()  # "the warm launcher died; failing in ... unless stopped"
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == (-signal.SIGTERM if stopped else 1)
    assert stopped or time.monotonic() - started >= 1.5
    server.close()
