"""The warm trial launcher: a long-lived process that has imported what trials need and starts
each trial as a forked child, so a trial pays only its own work.

    python -P -m nnisuite.launcher.server --socket /tmp/s.sock  # launcher.warm starts and stops it
    NNISUITE_LAUNCHER=/tmp/s.sock python3 -m nnisuite.launcher nnisuite.trials.mlp ...  # a client

One connection per trial (nnisuite.launcher.protocol): the client sends its argv (a module, or a
user's script by path), working directory, environment and stdin / stdout / stderr; the launcher
forks, answers {"pid": N}, and when the child ends {"exit": code, "signal": sig}. The child becomes
its own process group, takes the client's descriptors, working directory and whole environment
(NNI's per-trial variables), runs the module as __main__; `nni` is first imported there, after
the environment is in place. A connection that closes before its child ends (the client was
killed, even with SIGKILL) kills the child's process group. The launcher is single-threaded
(fork is safe), does no tensor work before forking (no half-initialised OpenMP pool), and a
crashing child never takes it down. It exits, killing its children, when the process that
started it dies (even of SIGKILL): no
trial outlives the runner that owns it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import runpy
import selectors
import signal
import socket
import sys
import time
import traceback
import warnings
from pathlib import Path

from nnisuite.launcher import needs_cwd
from nnisuite.launcher.protocol import recv_message, send_message
from nnisuite.nni_patches import lazy_import
from nnisuite.runtime import release

FOLDER_PREFIX = (
    "nnisuite-launcher-"  # nnisuite.launcher.warm's folder for the socket and ready file
)
# Right before each fork, every object the launcher holds goes to the garbage collector's
# permanent generation (gc.freeze, an O(1) move). A trial's collections then skip what it
# inherited (the preload: torch, numpy, nni's dependencies) instead of walking all of it at
# every full collection and writing into those objects' headers, which made copy-on-write copy
# their memory pages into the trial (Python's gc docs advise it for fork without exec).
# Measured: 0.11-0.22 s of CPU less per forked nnisuite.trials.mlp trial (nnisuite.benchmarks.fork).
# Frozen objects are still freed when nothing refers to them; only cycles among them are never
# collected, and those live as long as the launcher anyway. Off with
# NNISUITE_LAUNCHER_GC_FREEZE=0.
GC_FREEZE = "NNISUITE_LAUNCHER_GC_FREEZE"

# What `nni` imports, minus `nni` itself (it reads its trial variables at import): always
# (numpy, scipy.stats and pandas are a second of every `import nni`; the last two only where
# nnisuite.nni_patches.lazy_import is off).
NNI_DEPENDENCIES = (
    "numpy",
    "scipy.stats",
    "pandas",
    "cloudpickle",
    "json_tricks",
    "typeguard",
    "yaml",
    "psutil",
    "requests",
    "websockets",
    "colorama",
    "schema",
    "prettytable",
    "filelock",
    "typing_extensions",
)
# What nnisuite's trials import: the default; `--preload` names another list (a user's
# script's own heavy imports, nnisuite.config.trial says which).
PRELOAD = (
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.optim",
    "nnisuite.trials.data",
    "nnisuite.trials.engine",
    "nnisuite.trials.metrics",
    "nnisuite.trials.params",
    "nnisuite.trials.report",
    "nnisuite.trials.runner",
    "nnisuite.trials.mlp",
    "nnisuite.trials.rnn",
    "nnisuite.models.mlp",
    "nnisuite.models.rnn",
)


def preload(modules=PRELOAD, datasets=("digits", "fashion-mnist")) -> None:
    import importlib

    # what lazy_import defers (scipy.stats, pandas) `import nni` no longer needs: a trial that
    # imports it itself has it in `modules` (nnisuite.config.trial's heavy imports)
    deferred = (
        {name for name, _ in lazy_import.DEFERRED.values()} if lazy_import.installed() else ()
    )
    for name in (*(d for d in NNI_DEPENDENCIES if d not in deferred), *modules):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    if "nnisuite.trials.data" not in sys.modules:
        return  # not nnisuite's trials: no datasets to keep
    from nnisuite.trials import data

    for name in datasets:  # parsed arrays kept in memory; children share them copy-on-write
        with contextlib.suppress(data.DatasetError, OSError):
            data.warm_array_cache(name)


def stop_with_parent(parent: int) -> None:
    """Linux: SIGTERM this launcher when the process that started it dies (prctl
    PR_SET_PDEATHSIG), from its first line on; and if it already died, stop now."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:
        sys.exit(0)


def die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when the launcher dies, even of SIGKILL (prctl
    PR_SET_PDEATHSIG); a trial never outlives the launcher that forked it."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the launcher died before the prctl took effect
        os._exit(1)


def threads_from_environment() -> None:
    """A fresh Python's torch takes its thread count from OMP_NUM_THREADS at import; torch was
    imported before the fork, so the child applies the trial's own value itself."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(value))


def run_child(request: dict, fds: list[int], parent: int) -> None:
    """In the forked child: become the trial, then exit without returning."""
    code = 1
    try:
        die_with_parent(parent)
        os.setsid()
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        threads_from_environment()
        module, *args = request["argv"]
        sys.argv = [module, *args]
        try:
            if request.get("script"):  # a user's script, as `python SCRIPT ARGS` runs it
                sys.argv[0] = request["script"]
                sys.path.insert(0, os.path.dirname(request["script"]))
                runpy.run_path(request["script"], run_name="__main__")
            else:
                if needs_cwd(module) and request["cwd"] not in sys.path:
                    sys.path.insert(0, request["cwd"])
                # the module was imported before the fork (that is the point): runpy's warning
                # that it is in sys.modules already says nothing to the trial's stderr
                warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the child reports any crash and exits
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class Launcher:
    def __init__(self, path: str | Path, parent: int | None = None):
        self.path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.server.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.server, selectors.EVENT_READ)
        self.children: dict[int, socket.socket] = {}  # pid -> the client's connection
        self.running = True
        # the runner; when it dies we are re-parented
        self.parent = os.getppid() if parent is None else parent
        self.freeze = os.environ.get(GC_FREEZE) != "0"  # GC_FREEZE: gc.freeze at each fork

    def accept(self) -> None:
        conn, _ = self.server.accept()
        try:
            request, fds = recv_message(conn, with_fds=True)
        except (ConnectionError, ValueError, OSError):
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        me = os.getpid()
        if self.freeze:
            gc.freeze()
        pid = os.fork()
        if pid == 0:
            self.server.close()
            conn.close()
            run_child(request, fds, me)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        try:
            send_message(conn, {"pid": pid})
        except OSError:
            self.kill(pid)
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def client_gone(self, conn: socket.socket, pid: int) -> None:
        """Readable while the child runs means EOF: the client died; its child dies too."""
        try:
            data = conn.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if not data:
            self.kill(pid)
            self.selector.unregister(conn)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            result = {"exit": os.waitstatus_to_exitcode(status)}
            if os.WIFSIGNALED(status):
                result = {"exit": 128 + os.WTERMSIG(status), "signal": os.WTERMSIG(status)}
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.selector.unregister(conn)
            with contextlib.suppress(OSError):
                send_message(conn, result)
            conn.close()

    def serve(self) -> None:
        while self.running:
            for key, _ in self.selector.select(timeout=0.05):
                if key.fileobj is self.server:
                    self.accept()
                else:
                    self.client_gone(key.fileobj, key.data)
            self.reap()
            if os.getppid() != self.parent:
                print("launcher: the process that started it died; stopping", file=sys.stderr)
                self.running = False

    def shutdown(self) -> None:
        for pid in list(self.children):
            self.kill(pid)
        self.server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nnisuite.launcher.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    p.add_argument("--ready-file", help="written (with this pid) once the launcher accepts trials")
    p.add_argument(
        "--preload",
        help="comma-separated modules to import before forking, besides nni's own dependencies "
        "(default: what nnisuite's trials import; '' for none)",
    )
    p.add_argument(
        "--parent",
        type=int,
        help="pid of the process that started it (default: its parent now); it stops when that "
        "one dies, also when it died before this launcher got going",
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # the runner, known before the imports (from its own pid when it passed it: it may already
    # be gone by now): a runner gone at any point (a Ctrl-C, a kill) ends this launcher too
    parent = args.parent or os.getppid()
    stop_with_parent(parent)
    t0 = time.perf_counter()
    if args.preload is None:
        preload()
    else:
        preload(tuple(m for m in args.preload.split(",") if m))
    launcher = Launcher(args.socket, parent)

    def stop(*_):
        launcher.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready_file:
        Path(args.ready_file).write_text(str(os.getpid()))
    print(
        f"launcher ready on {args.socket} after {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    try:
        launcher.serve()
    finally:
        launcher.shutdown()
        leave_nothing(Path(args.socket), args.ready_file)
    return 0


def leave_nothing(sock: Path, ready_file: str | None) -> None:
    """The ready file goes with the socket, and the folder nnisuite.launcher.warm made for both when
    it is left empty: its maker (the runner) may have died without cleaning up (SIGKILL)."""
    if ready_file:
        with contextlib.suppress(FileNotFoundError):
            Path(ready_file).unlink()
    if sock.parent.name.startswith(FOLDER_PREFIX):
        release(sock.parent)


if __name__ == "__main__":
    sys.exit(main())
