"""Start and stop a warm trial launcher (nnisuite.launcher.server) around an experiment.

    with warm_launcher() as socket_path:   # sets $NNISUITE_LAUNCHER for the NNI manager
        experiment.start(port)             # trials started by `python3 -m nnisuite.launcher` fork

When it cannot start (no Unix sockets, a crash while importing), trials run as plain processes:
correct, only slower.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from nnisuite.launcher import module_command
from nnisuite.launcher.server import FOLDER_PREFIX
from nnisuite.nni_patches import lazy_import
from nnisuite.runtime import release, scratch

READY_TIMEOUT_S = 60.0
SOCKET = "NNISUITE_LAUNCHER"  # the launcher's socket, for `python3 -m nnisuite.launcher` clients
# what the launcher named by SOCKET imported before forking (preload_key): a block asking for
# another list starts its own launcher
PRELOADED = "NNISUITE_LAUNCHER_PRELOAD"


def preload_key(preload) -> str:
    """How PRELOADED names a preload list (None: nnisuite's trials' default)."""
    return "default" if preload is None else ",".join(preload)


def add_launcher_flag(parser, scripts: bool = False) -> None:
    """The runners' --no-launcher (args.no_launcher) and, where they run users' scripts,
    --launcher (args.launcher: True, False or None for the default)."""
    if not scripts:
        parser.add_argument(
            "--no-launcher",
            action="store_true",
            help="run every trial as a fresh process (no warm launcher)",
        )
        return
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--launcher",
        dest="launcher",
        action="store_true",
        default=None,
        help="fork trials of a `python SCRIPT.py` trialCommand from a warm launcher of this "
        "runner's Python (torch and numpy imported once). Default: on when the command's python "
        "is this runner's (the same venv), off otherwise; nnisuite's own trials always use it",
    )
    group.add_argument(
        "--no-launcher",
        dest="launcher",
        action="store_false",
        help="run every trial as a fresh process, the trialCommand as written",
    )


def live(path: str | None) -> bool:
    """Whether a launcher answers on `path`."""
    import socket

    if not path:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def warm_launcher(enabled: bool = True, stream=None, preload=None):
    """A launcher for the duration of the block; one already running that imported the same
    modules (an outer block's, e.g. a repeated study's: $NNISUITE_LAUNCHER, and
    $NNISUITE_LAUNCHER_PRELOAD where it says what it imported) is used instead of starting
    another. `stream`: where it says so (default: sys.stderr as it is when called). `preload`:
    the modules it imports before forking (None: what nnisuite's trials import)."""
    stream = stream or sys.stderr
    if not enabled:
        yield None
        return
    running = os.environ.get(SOCKET)
    if live(running) and os.environ.get(PRELOADED, preload_key(preload)) == preload_key(preload):
        yield running
        return
    previous = {name: os.environ.get(name) for name in (SOCKET, PRELOADED)}
    proc, sock = start_server(preload)
    try:  # from here on, also a Ctrl-C while the launcher imports stops it
        ready = wait_ready(proc, sock)
        if ready:
            os.environ[SOCKET], os.environ[PRELOADED] = str(sock), preload_key(preload)
            deferred = "; scipy.stats deferred in `import nni`" if lazy_import.installed() else ""
            tops = dict.fromkeys(name.split(".")[0] for name in preload or ())
            imported = f" (imported before the fork: {', '.join(tops)})" if tops else ""
            print(
                f"warm launcher ready (pid {proc.pid}): trials fork from it{imported}{deferred} "
                f"(off: --no-launcher, {lazy_import.SWITCH}=0)",
                file=stream,
            )
        else:
            print("warm launcher did not start: trials run as plain processes", file=stream)
        yield str(sock) if ready else None
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        stop_server(proc, sock)


def ready_file(sock: Path) -> Path:
    """Where a launcher started by start_server writes its pid once it accepts trials."""
    return sock.parent / "ready"


def start_server(preload=None, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    """A launcher server (nnisuite.launcher.server) started in a folder of its own, not waited for:
    the process and its socket (wait_ready; stop_server). `env`: its environment (default
    this process's)."""
    folder = scratch(FOLDER_PREFIX)
    sock = folder / "launcher.sock"
    command = module_command("nnisuite.launcher.server", "--socket", str(sock))
    command += ["--ready-file", str(ready_file(sock)), "--parent", str(os.getpid())]
    command += ["--preload", ",".join(preload)] if preload is not None else []
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, sock


def wait_ready(proc: subprocess.Popen, sock: Path, timeout_s: float = READY_TIMEOUT_S) -> bool:
    """Whether the launcher accepts trials within `timeout_s` (False: it exited or is late)."""
    deadline = time.monotonic() + timeout_s
    while not ready_file(sock).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return ready_file(sock).exists()


def stop_server(proc: subprocess.Popen, sock: Path) -> None:
    """Stop a launcher from start_server (its children die with it) and remove its folder."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for path in (sock, ready_file(sock)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    release(sock.parent)
