"""The trial command NNI runs: a standard-library client that starts a trial module, through
the warm launcher when one is running, else with the project's Python.

    python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 20         # what experiment YAMLs run
    python3 -m nnisuite.launcher --python /opt/env/bin/python nnisuite.trials.mlp  # worker's Python
    .venv/bin/python -m nnisuite.launcher --script train.py --lr 0.1        # a user's own script

A script (`--script`, what `nnisuite.study.run --launcher` makes of `python3 train.py ...`) runs
from the current folder (NNI's trialCodeDirectory) as `python SCRIPT ARGS` would: forked from
the launcher when one is live, else exec'd with this interpreter.

With `$NNISUITE_LAUNCHER` naming a live launcher socket (nnisuite.launcher.server; the runners start
one), the trial runs as a forked child of that warm process: this client hands over its
arguments, working directory, environment and stdin / stdout / stderr, forwards SIGINT /
SIGTERM to the child, and exits as the child did. A child stopped by a signal this client
forwarded (NNI's stop) makes it die of the same signal, so NNI records the stop as a stop
(USER_CANCELED); a child killed by any other signal (the OOM killer's SIGKILL, a segfault, a
signal sent to the child alone) makes it exit 128 + the signal with one line, so NNI records
FAILED. When the launcher itself dies (its runner was killed: the
runner's guard is stopping the experiment) the client waits LOST_GRACE_S for that stop and dies
of it, so NNI records the trial interrupted and `--resume` runs it again; with no stop by then
it exits 1 (failed). Otherwise it execs the trial module with, in order:
`--python`, `$NNISUITE_PYTHON`, the repo's `.venv/bin/python`, or this interpreter. NNI's local
service runs trials with nnictl's environment, which need not have `.venv` activated; on a
remote worker `.venv` is not uploaded (`.nniignore`) and NNI 3.0 does not apply `pythonPath`
to the trial command, so `--python` or `$NNISUITE_PYTHON` names it there.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import nnisuite
from nnisuite.launcher import CLIENT_MODULE, needs_cwd
from nnisuite.launcher.protocol import recv_message, send_message

# how long a trial whose launcher died waits for the experiment's stop before it fails: the
# guard of a killed runner stops the manager within about a second
LOST_GRACE_S = 5.0


def launcher_lost(grace_s: float | None = None) -> int:
    """The warm launcher died with this trial's process in it. A runner SIGKILLed takes its
    launcher along and its guard then stops the experiment: had the client exited 1 at once,
    NNI could record the trial FAILED before that stop (seen under load), and a resume does
    not run a failed trial again. So wait for the stop and die of its signal, as a stopped
    trial does; exit 1 (failed) when no stop comes."""
    grace_s = LOST_GRACE_S if grace_s is None else grace_s
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    print(f"launcher: the warm launcher died; failing in {grace_s:g} s unless stopped",
          file=sys.stderr, flush=True)  # fmt: skip
    time.sleep(grace_s)
    return 1


USAGE = (
    f"usage: python3 -m {CLIENT_MODULE} [--python PATH] MODULE [ARGS...]\n"
    f"       python -m {CLIENT_MODULE} --script SCRIPT.py [ARGS...]"
)


def project_python(explicit: str | None = None) -> str:
    for candidate in (explicit, os.environ.get("NNISUITE_PYTHON")):
        if candidate:
            return candidate
    if nnisuite.SOURCE is not None:  # a source checkout's own .venv
        venv = nnisuite.SOURCE / ".venv" / "bin" / "python"
        if venv.exists():
            return str(venv)
    return sys.executable


def split_args(argv: list[str]) -> tuple[str | None, str, list[str]]:
    python = None
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip() + "\n\n" + USAGE)
        sys.exit(0)
    if argv[:1] == ["--python"] and len(argv) >= 2:
        python, argv = argv[1], argv[2:]
    if argv[:1] == ["-m"]:  # `python3 -m nnisuite.launcher -m MODULE ...` reads like python -m
        argv = argv[1:]
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        sys.exit(2)  # a usage error, as argparse exits
    return python, argv[0], argv[1:]


def connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def run_via_launcher(
    sock: socket.socket, module: str, args: list[str], script: bool = False
) -> int:
    request = {"argv": [module, *args], "cwd": os.getcwd(), "env": dict(os.environ)}
    if script:  # a user's script: from the folder NNI started us in, by its path
        request |= {"script": os.path.abspath(module), "cwd": os.getcwd()}
    child: list[int] = []  # its pid, once the launcher has said it
    pending: list[int] = []  # signals that came before that
    asked: list[int] = []  # the stops NNI (or the user) sent this client

    def send(pid: int, signum: int) -> None:
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    def forward(signum, _frame):
        asked.append(signum)
        if child:
            send(child[0], signum)
        else:
            pending.append(signum)

    # in place before the child exists: a stop that comes while it starts still reaches it
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    send_message(sock, request, fds=(0, 1, 2))
    child.append(recv_message(sock)[0]["pid"])
    for signum in pending:
        send(child[0], signum)
    try:
        result = recv_message(sock)[0]
    except ConnectionError:  # the launcher died: its children were killed with it
        return launcher_lost()
    signum = result.get("signal")
    if signum and asked:
        # a stop that was asked for: die of the same signal, as NNI expects of a stopped trial
        # (it records USER_CANCELED for a trial command killed by a signal)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    if signum:
        # any other death (the OOM killer's SIGKILL, a segfault, a signal sent to the trial
        # alone) is a failure, as it is when the trial is no child of a launcher's
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        print(f"launcher: the trial's process died of {name}, a signal nobody asked the trial "
              "to stop with: it failed", file=sys.stderr, flush=True)  # fmt: skip
        return 128 + signum
    return int(result["exit"])


def run_script(argv: list[str]) -> None:
    """`--script SCRIPT ARGS`: forked from the launcher when live, else this interpreter."""
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    launcher = os.environ.get("NNISUITE_LAUNCHER")
    sock = connect(launcher) if launcher else None
    if sock is not None:
        sys.exit(run_via_launcher(sock, argv[0], argv[1:], script=True))
    os.execv(sys.executable, [sys.executable, *argv])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--script"]:
        run_script(argv[1:])
    python, module, args = split_args(argv)
    launcher = os.environ.get("NNISUITE_LAUNCHER")
    if launcher and python is None:
        sock = connect(launcher)
        if sock is not None:
            sys.exit(run_via_launcher(sock, module, args))
    exe = project_python(python)
    env = dict(os.environ)
    own_tree = nnisuite.SOURCE is not None and Path.cwd() == nnisuite.SOURCE
    if not needs_cwd(module) and not own_tree:
        # the current folder (a user's project) kept off sys.path, as `python -P` does; in
        # nnisuite's own source tree (a remote worker's upload) it is what provides nnisuite
        env["PYTHONSAFEPATH"] = "1"
    os.execve(exe, [exe, "-m", module, *args], env)


if __name__ == "__main__":
    main()
