"""One NNI session, from start to export: ports, progress lines, the watchdog, Ctrl-C, stop.

    study = Study(experiment, port=None, out=Path("runs/x"), max_trials=10,
                  resume_hint="to continue it: python -m nnisuite.study.run --resume ID ...")
    code = run_study(study, export=my_export)     # 0 done, 3 watchdog, 130 interrupted

Both runners (`nnisuite run`, `nnisuite nas`) and `nnisuite repeat` go through `run_study`, which
- makes SIGINT and SIGTERM raise KeyboardInterrupt (a runner started from a shell's background
  job inherits SIGINT *ignored*, and Python then keeps ignoring it: Ctrl-C was lost there);
- chooses the port and starts NNI's manager so that it is certainly this study's
  (`owned_start`): nnisuite runners choose ports one at a time (a lock file), the manager must
  be seen listening on the port itself before NNI's launcher talks to it (else NNI would post
  this study's config to whatever answers there), a port taken meanwhile is retried on another
  unless --port named it, and a Ctrl-C while NNI starts still stops the manager it started;
- starts the warm launcher and a guard that stops the manager if the runner is killed;
- watches the experiment and acts when it is stuck (`watch`): manager unreachable for 5 s or
  its process gone, experiment status ERROR (the tuner's dispatcher died), or no trial state
  change and no new metric for the stall limit;
- always stops the manager (killing it when it does not answer), exports what the database
  holds, and prints the resume command when the study did not finish and NNI can resume it.
A stop from outside (`nnictl stop ID`) is a stop, not a fault: exit 0 when every trial had
ended, else 130, as for Ctrl-C.

NNI's REST server and web UI would listen on every interface without authentication: the
manager listens on loopback only unless the study asks for more (`nni_patches/binding.py`), and
`run_study` says so once at start when it does.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nnisuite.analysis.atomic import EXIT_WRITE, WriteError
from nnisuite.analysis.store import ExportError, opened
from nnisuite.config.trial import runner_path
from nnisuite.launcher import module_command
from nnisuite.launcher.warm import warm_launcher
from nnisuite.nni_patches import handover
from nnisuite.nni_patches.binding import addresses, exposure, node_environment, portal_urls
from nnisuite.nni_patches.interpreter import quick_version_query
from nnisuite.outputs import disk_full
from nnisuite.runtime import runtime_dir
from nnisuite.signals import stops_held
from nnisuite.study.claim import Held, claim

TERMINAL = {"DONE", "STOPPED", "ERROR"}
# ADD_RESUMED: NNI 3.0's status, on --resume, of a trial it will run again until it starts
ACTIVE = {"WAITING", "RUNNING", "UNKNOWN", "ADD_RESUMED"}
FAULTS = {"UNREACHABLE", "ERROR", "STALLED", "STRATEGY_FAILED", "DISK_FULL"}
EXIT_DONE, EXIT_USAGE, EXIT_FAULT, EXIT_INTERRUPTED = 0, 2, 3, 130
EXIT_NO_RESULT = 5  # the study ended and no trial reported a final result: it found nothing
STOPPED = {"USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}
# what NNI's check-status says once the tuner has no more configurations (GridSearch over a
# small space; NNI 3.0 uses both names)
NO_MORE = {"NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL"}
DISK_ERRORS = ("SQLITE_FULL", "ENOSPC")  # what NNI's manager logs when its disk is full
DEFAULT_PORT = 8080
FINAL_SETTLE_S = 2.0  # how long a SUCCEEDED trial's final result may trail its end
OTHERS_SCAN_S = 3.0  # how often the watchdog looks for a second manager of its experiment
UNREACHABLE_S = 5.0  # REST silent this long (manager process alive) counts as a dead manager
MIN_STALL_S = 300.0  # default stall limit: 5 minutes, or 3x the longest finished trial
STOP_TIMEOUT_S = 60.0
NNI_ISSUES = {
    "UNREACHABLE": "the NNI manager died or stopped answering (cf. microsoft/nni#3250, #2243)",
    "ERROR": "experiment status ERROR: the tuner's dispatcher died (cf. microsoft/nni#5689, #5769)",
    "STALLED": "no trial changed state and no metric arrived (cf. microsoft/nni#5493, #5761, "
    "#5531, #5640)",
    "STRATEGY_FAILED": "the NAS strategy raised an error",
    "DISK_FULL": "the experiment directory's disk is full: NNI cannot record more",
}


# ---------------------------------------------------------------- ports


def port_is_free(port: int) -> bool:
    """Whether NNI's manager could listen on `port`: bound as Node binds (SO_REUSEADDR), so the
    TIME_WAIT connections of a manager that just stopped do not make it look taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_problem(port: int | None) -> str | None:
    """Why a requested --port cannot serve a manager (taken now), else None: checked before a
    runner prints or starts anything."""
    if port is None or port_is_free(port):
        return None
    taken = f"port {port} is taken (by another program or NNI manager)"
    return f"{taken}; a free one now: --port {free_port()}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_port(requested: int | None) -> int:
    """The port asked for, else NNI's usual 8080 ($NNISUITE_DEFAULT_PORT) when free, else any
    free port."""
    if requested is not None:
        return requested
    usual = int(os.environ.get("NNISUITE_DEFAULT_PORT") or DEFAULT_PORT)
    return usual if port_is_free(usual) else free_port()


LISTEN_TIMEOUT_S = 120.0


class PortTaken(RuntimeError):
    """The port a study was told to use is taken; the message names a free one."""


class ManagerStartError(RuntimeError):
    """NNI's manager did not come up listening on its port; the message says what it did."""


@contextlib.contextmanager
def port_lock():
    """nnisuite runners (this user's: the lock lives in nnisuite.runtime's folder) choose a
    port and start a manager on it one at a time."""
    with open(runtime_dir() / "ports.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def listening_pids(port: int) -> set[int]:
    import psutil

    pids = set()
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                pids.add(conn.pid)
    return pids


def wait_listening(proc, port: int, logs: SessionLogs, timeout_s: float = LISTEN_TIMEOUT_S) -> None:
    """Until `proc` itself listens on `port`; ManagerStartError when it exits first (e.g.
    EADDRINUSE: another process took the port after it was chosen) or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            text = logs.text(MANAGER_LOG)
            taken = "EADDRINUSE" in text or not port_is_free(port)
            why = "the port was taken (EADDRINUSE)" if taken else f"exit {code}"
            raise ManagerStartError(f"the NNI manager exited before it listened on {port}: {why}")
        if proc.pid in listening_pids(port):
            return
        time.sleep(0.1)
    raise ManagerStartError(f"the NNI manager did not listen on port {port} in {timeout_s:.0f} s")


@contextlib.contextmanager
def owned_start(exp, port: int, logs: SessionLogs | None, hosts: list[str] | None = None):
    """While `exp.start(port)` runs: the manager process listens on `hosts` (default: loopback,
    nni_patches/binding.py) with this Python first on its PATH (a trial's `python3` is not a
    version manager's shim: pyenv's costs ~80 ms of shell per trial here), is known to `exp`
    the moment NNI starts it (so a Ctrl-C stops it), and NNI's launcher talks to the port only
    once that process listens there. NNI's module
    functions are wrapped from outside, then restored."""
    from nni.experiment import launcher as nni_launcher

    start_server, check_server = nni_launcher._start_rest_server, nni_launcher._check_rest_server
    hosts = hosts or addresses(None, getattr(exp, "config", None))
    logs = logs or SessionLogs(None)  # no log folder: every log reads empty
    env = node_environment(hosts)
    env["PATH"] = runner_path(env.get("PATH", ""))  # trials' `python3` is this Python

    def started(*args, **kwargs):
        popen = nni_launcher.Popen

        def owned_popen(*popen_args, **popen_kwargs):
            # NNI forks with preexec_fn=os.setpgrp: a Ctrl-C during that fork is held until
            # exp knows its manager, then raised (nnisuite/signals.py), so the stop reaches it
            with stops_held():
                proc = popen(*popen_args, env=env, **popen_kwargs)
                exp._proc, exp.port = proc, port
            return proc

        nni_launcher.Popen = owned_popen
        try:
            return start_server(*args, **kwargs)
        finally:
            nni_launcher.Popen = popen

    def checked(check_port, *args, **kwargs):
        proc = getattr(exp, "_proc", None)
        if proc is not None:
            wait_listening(proc, check_port, logs)
        result = check_server(check_port, *args, **kwargs)
        exp._nnisuite_listening = True  # what wait_for_manager waits for
        return result

    nni_launcher._start_rest_server, nni_launcher._check_rest_server = started, checked
    try:
        with portal_urls(hosts, port):
            yield
    finally:
        nni_launcher._start_rest_server, nni_launcher._check_rest_server = (
            start_server,
            check_server,
        )


NOT_IDLE = re.compile(r"Port (\d+) is not idle")


def start_on_a_port(exp, study, start: Callable[[int], None], logs: SessionLogs) -> None:
    """`start(port)` on the study's port (or, none requested, 8080 if free, else a free one),
    retried on another free port when one not requested was taken; PortTaken for a requested
    port that is taken."""
    for attempt in range(3):
        with port_lock():
            if study.port is None or (attempt and not study.port_requested):
                study.port = default_port(None) if attempt == 0 else free_port()
            taken = port_problem(study.port)
            if taken:
                if study.port_requested:
                    raise PortTaken(taken)
                continue
            try:
                with owned_start(exp, study.port, logs, study.hosts):
                    start(study.port)
                return
            except (ManagerStartError, RuntimeError) as exc:
                taken = NOT_IDLE.search(str(exc)) or "EADDRINUSE" in str(exc)
                stop_experiment(exp)
                if not taken:
                    raise
                if study.port_requested:
                    raise PortTaken(
                        f"port {study.port} is taken; a free one now: --port {free_port()}"
                    ) from None
                print(
                    f"note: port {study.port} was taken while NNI started: trying another",
                    file=sys.stderr,
                    flush=True,
                )
    raise ManagerStartError("three ports in a row were taken while NNI started: try --port")


# ---------------------------------------------------------------- progress


def progress_line(trials, max_trials, mode: str = "maximize") -> tuple[str, float | None]:
    """One line of counts and the best final `default` so far (by the optimize mode);
    returns (line, best)."""
    counts: dict[str, int] = {}
    for t in trials:
        status = "WAITING" if t.status == "ADD_RESUMED" else t.status  # to be run again
        counts[status] = counts.get(status, 0) + 1
    finals = [
        (t.final["default"], t.trial_id)
        for t in trials
        if isinstance(t.final.get("default"), (int, float))
        and not isinstance(t.final.get("default"), bool)
    ]
    best = (min(finals) if mode == "minimize" else max(finals)) if finals else None
    # an interrupted trial runs again on --resume: not done (the count never goes backwards)
    done = sum(v for k, v in counts.items() if k not in ACTIVE and k != "INTERRUPTED")
    parts = [f"trials {done}/{max_trials or '?'} done", f"{counts.get('SUCCEEDED', 0)} succeeded"]
    for status in ("FAILED", "EARLY_STOPPED", "TIMED_OUT", "USER_CANCELED", "INTERRUPTED"):
        if counts.get(status):
            parts.append(f"{counts[status]} {status.lower().replace('_', '-')}")
    parts.append(f"{counts.get('RUNNING', 0)} running")
    if counts.get("WAITING"):
        parts.append(f"{counts['WAITING']} waiting")
    parts.append(f"best {best[0]:.4f} ({best[1]})" if best else "best -")
    return ", ".join(parts), best[0] if best else None


def experiment_status(port: int) -> str:
    from nnisuite.analysis.store import get_json

    return get_json(f"http://127.0.0.1:{port}/api/v1/nni/check-status").get("status", "?")


# ---------------------------------------------------------------- the watchdog


@dataclass
class Outcome:
    """How watching ended. `status`: DONE, STOPPED, TIMEOUT, INTERRUPTED, or a fault
    (UNREACHABLE, ERROR, STALLED, STRATEGY_FAILED)."""

    status: str
    detail: str = ""
    trials: list = field(default_factory=list)

    @property
    def fault(self) -> bool:
        return self.status in FAULTS

    @property
    def finished(self) -> bool:
        return self.status == "DONE"


class BackgroundStart:
    """Runs a blocking start (NNI's NAS strategy runs inside `NasExperiment.start`) in a
    daemon thread, so the main thread can watch and take Ctrl-C."""

    def __init__(self, start: Callable[[], None]):
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self.thread.start()

    def _run(self, start) -> None:
        try:
            start()
        except BaseException as exc:  # noqa: BLE001 - reported by the watchdog
            self.error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


def signature(trials) -> tuple:
    """What changes when anything happens: states, metric counts, finals."""
    return tuple((t.trial_id, t.status, len(t.intermediates), bool(t.final)) for t in trials)


def find_dispatcher(manager) -> int | None:
    """The pid of the tuner's dispatcher (`python -m nni --exp_params ...`), a child of the
    HPO manager; NAS strategies run in the runner itself and have none."""
    import psutil

    try:
        children = psutil.Process(manager.pid).children(recursive=True)
    except (psutil.Error, AttributeError):
        return None
    for child in children:
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if "--exp_params" in cmdline and "/bin/sh" not in cmdline[0]:
            return child.pid
    return None


WORKER_DIED = re.compile(r"ERROR \(nni\.runtime\.msg_dispatcher_base/[^)]*\)\)? ?(.*)")


class GrowingLog:
    """A log file read as it grows: each read() returns what was appended since the last (the
    first, what was appended since `offset`)."""

    def __init__(self, path: Path | None, offset: int = 0):
        self.path = path
        self.offset = offset

    def read(self) -> str:
        if self.path is None:
            return ""
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                text = f.read()
                self.offset = f.tell()
        except OSError:
            return ""
        return text


MANAGER_LOG, DISPATCHER_LOG = "nnimanager.log", "dispatcher.log"


class SessionLogs:
    """An experiment's log folder as this session writes it: what its manager and dispatcher
    logged since the session began (this object was made, before the manager starts). A resumed
    experiment's files also hold every earlier session's lines (the dispatcher that failed to
    reach the manager as the last session stopped, that manager's `Stopping experiment`, a disk
    error since mended): read as this session's, they would end it as a fault it never had."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.start = {name: self._size(name) for name in (MANAGER_LOG, DISPATCHER_LOG)}

    def _size(self, name: str) -> int:
        try:
            return (self.folder / name).stat().st_size if self.folder else 0
        except OSError:
            return 0

    def growing(self, name: str) -> GrowingLog:
        """The log `name` read as it grows, from where this session began."""
        return GrowingLog(self.folder / name if self.folder else None, self.start[name])

    def text(self, name: str) -> str:
        """What this session has logged in `name` so far ('' when nothing, or no file)."""
        return self.growing(name).read()


# What the manager's preload (nni_patches/node_preload.js) logs when a remote host is lost
HOST_LOST = re.compile(r"nnisuite: worker (\S+) lost; .*")


def hosts_lost(text: str) -> list[str]:
    """The preload's lines about lost remote hosts in a piece of nnimanager.log."""
    return [m.group(0) for m in HOST_LOST.finditer(text)]


class DispatcherLog:
    """Reads dispatcher.log as it grows. NNI's dispatcher processes commands in a worker
    thread that logs any exception as ERROR and ends (msg_dispatcher_base.command_queue_worker):
    its process may live on, doing nothing (GP with a newer scipy), or exit (TPE's KeyError)."""

    def __init__(self, logs: SessionLogs):
        self.log = logs.growing(DISPATCHER_LOG)

    def worker_error(self) -> str | None:
        text = self.log.read()
        match = WORKER_DIED.search(text)
        if match is None:
            return None
        block = []  # the traceback logged with it, up to the next log record
        for line in text[match.end() :].splitlines()[1:]:
            if line.startswith("["):
                break
            block.append(line)
        last = next((line for line in reversed(block) if line.strip()), "")
        return (last or match.group(1) or "see dispatcher.log").strip()


def other_managers(exp_id: str, own_pid: int | None) -> list[tuple[int, str]]:
    """(pid, port) of every NNI manager process of `exp_id` but `own_pid`: `nnictl resume ID`
    or `nnictl view ID` beside a runner start a second manager on the same database."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["pid"] == own_pid or not any(c.endswith("nni_node/main.js") for c in cmd):
            continue
        if "--experiment-id" in cmd and cmd[cmd.index("--experiment-id") + 1 :][:1] == [exp_id]:
            port = cmd[cmd.index("--port") + 1] if "--port" in cmd[:-1] else "?"
            found.append((proc.info["pid"], port))
    return found


def process_gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stall_limit(trials, stall_s: float | None) -> float:
    if stall_s is not None:
        return stall_s
    longest = max((t.duration_s or 0.0 for t in trials if t.status not in ACTIVE), default=0.0)
    return max(MIN_STALL_S, 3 * longest)


def watch(
    port: int,
    max_trials: int | None,
    *,
    poll_s: float = 1.0,
    stream=sys.stdout,
    timeout_s: float | None = None,
    on_poll: Callable | None = None,
    stall_s: float | None = None,
    manager=None,
    strategy: BackgroundStart | None = None,
    expected: int | None = None,
    logs: SessionLogs | None = None,
    exp_id: str | None = None,
    disk: Path | None = None,
) -> Outcome:
    """Print progress until the experiment ends or a fault is seen.

    `exp_id`: the experiment this runner started; anything else answering on the port is not
    watched (its manager is gone). A stop from outside (nnictl stop) ends as STOPPED.

    `manager`: the manager's process (Popen / psutil.Process): its exit is noticed at once.
    `strategy` / `expected`: a NAS run is done when its strategy has returned and `expected`
    trials ended (or, strategy done, nothing ran for 5 s). `on_poll(trials)` after each poll.
    `disk`: the experiment directory; its disk filling (or the manager logging SQLITE_FULL /
    ENOSPC) ends the study as DISK_FULL before NNI fails more writes."""
    from nnisuite.analysis.direction import direction
    from nnisuite.analysis.store import read_rest

    started = time.monotonic()
    last_line, last_sig, last_change = None, None, started
    unreachable_since: float | None = None
    dispatcher: int | None = None
    logs = logs or SessionLogs(None)  # no log folder: every log reads empty
    dispatcher_log = DispatcherLog(logs)
    manager_log = logs.growing(MANAGER_LOG)
    trials: list = []
    mode = None
    seen_others: set[int] = set()
    next_scan = started
    while True:
        now = time.monotonic()
        if exp_id is not None and now >= next_scan:  # every OTHERS_SCAN_S: a psutil scan
            next_scan = now + OTHERS_SCAN_S
            for pid, other_port in other_managers(exp_id, getattr(manager, "pid", None)):
                if pid not in seen_others:
                    seen_others.add(pid)
                    print(
                        f"[{now - started:6.1f}s] warning: a second NNI manager (pid {pid}, port "
                        f"{other_port}: nnictl resume / view?) runs experiment {exp_id} on this "
                        "study's database: both write into it, and this runner's export shows "
                        f"what it holds when this study ends; stop it with nnictl stop --port "
                        f"{other_port} (this runner leaves it running)",
                        file=stream,
                        flush=True,
                    )
        if timeout_s is not None and now - started > timeout_s:
            return Outcome("TIMEOUT", f"still running after {timeout_s:.0f} s", trials)
        full = disk_full(disk) if disk is not None else None
        if full:
            return Outcome("DISK_FULL", f"{disk}: {full}", trials)
        try:
            status = experiment_status(port)
            found = read_rest(f"http://127.0.0.1:{port}", restarts=False)
            if exp_id is not None and found.id not in (exp_id, "?"):
                raise ExportError(f"port {port} answers for experiment {found.id}, not {exp_id}")
            trials = found.trials
            mode = mode or direction(found.config)  # the config does not change: read once
            unreachable_since = None
        except ExportError as exc:
            unreachable_since = unreachable_since or now
            code = manager.poll() if hasattr(manager, "poll") else None
            gone = code is not None or now - unreachable_since >= UNREACHABLE_S
            if gone and (disk_error := logged_disk_error(logs)):
                return Outcome("DISK_FULL", f"the manager logged {disk_error}", trials)
            if gone and stopped_from_outside(logs):
                return Outcome("STOPPED", "stopped from outside the runner (nnictl stop)", trials)
            if code is not None:
                return Outcome("UNREACHABLE", f"the manager process exited ({code})", trials)
            if gone:
                return Outcome(
                    "UNREACHABLE", f"no answer for {now - unreachable_since:.0f} s: {exc}", trials
                )
            time.sleep(min(poll_s, 1.0))
            continue
        line, _ = progress_line(trials, max_trials, mode)
        if on_poll:
            on_poll(trials)
        for lost in hosts_lost(manager_log.read()):  # a remote host gone: said once, at once
            print(f"[{now - started:6.1f}s] {lost}", file=stream, flush=True)
        if line != last_line:
            print(f"[{now - started:6.1f}s] {line}", file=stream, flush=True)
            last_line = line
        sig = signature(trials)
        if sig != last_sig:
            last_sig, last_change = sig, now
        active = any(t.status in ACTIVE for t in trials)
        if status == "ERROR":
            if disk_error := logged_disk_error(logs):
                return Outcome("DISK_FULL", f"the manager logged {disk_error}", trials)
            if "Tuner did not connect" in log_text(logs):
                return Outcome(
                    "ERROR",
                    "the dispatcher never connected (slower to start than "
                    "NNISUITE_DISPATCHER_TIMEOUT_S allows)",
                    trials,
                )
            return Outcome("ERROR", "NNI reports experiment status ERROR", trials)
        # a trial's end can reach the manager before its final result (it reported, then exited
        # at once): at the end, wait up to FINAL_SETTLE_S for such finals before calling it done
        unsettled = now - last_change < FINAL_SETTLE_S and any(
            t.status == "SUCCEEDED" and not t.final for t in trials
        )
        if status in ("DONE", "STOPPED", "STOPPING") and not (status == "DONE" and unsettled):
            detail = "" if status == "DONE" else "stopped from outside the runner (nnictl stop)"
            return Outcome("DONE" if status == "DONE" else "STOPPED", detail, trials)
        if manager is not None and dispatcher is None:
            dispatcher = find_dispatcher(manager)
        error = dispatcher_log.worker_error()
        if error is not None:
            return Outcome("ERROR", f"the dispatcher's worker failed: {error}", trials)
        if dispatcher is not None and process_gone(dispatcher):
            # NNI 3.0 keeps saying RUNNING and starts nothing more: a silent hang
            return Outcome(
                "ERROR",
                f"the dispatcher (pid {dispatcher}) exited; NNI still says {status}",
                trials,
            )
        if strategy is not None:
            if strategy.done and strategy.error is not None:
                return Outcome("STRATEGY_FAILED", repr(strategy.error), trials)
            ended = sum(t.status not in ACTIVE for t in trials)
            settled = now - last_change > 5.0
            if strategy.done and not active and (ended >= (expected or 0) or settled):
                return Outcome("DONE", "the strategy has no more architectures", trials)
        elif status in NO_MORE and not active and now - last_change >= FINAL_SETTLE_S:
            # (NNI says so while it may still be submitting the tuner's last configuration)
            return Outcome("DONE", "the tuner has no more configurations", trials)
        limit = stall_limit(trials, stall_s)
        if now - last_change > limit:
            return Outcome("STALLED", f"nothing happened for {now - last_change:.0f} s", trials)
        time.sleep(poll_s)


def logged_disk_error(logs: SessionLogs) -> str | None:
    """SQLITE_FULL or ENOSPC when this session's manager logged it (its disk filled), else None."""
    text = log_text(logs)
    return next((e for e in DISK_ERRORS if e in text), None)


def log_text(logs: SessionLogs) -> str:
    """What this session's manager logged (nnimanager.log), or '' when nothing."""
    return logs.text(MANAGER_LOG)


def database_kept(exp_dir: Path, exp_id: str) -> str:
    """What NNI's database of the experiment holds, read-only: finals and sqlite's check."""
    db = exp_dir / exp_id / "db" / "nni.sqlite"
    try:
        with opened(db) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            finals = conn.execute(
                "SELECT COUNT(DISTINCT trialJobId) FROM MetricData WHERE type = 'FINAL'"
            ).fetchone()[0]
    except (sqlite3.Error, ExportError, OSError) as exc:
        return f"{db}: cannot be read ({exc})"
    return f"{finals} trial(s) with a final result in {db} (sqlite quick_check: {check})"


def stopped_from_outside(logs: SessionLogs) -> bool:
    """This session's manager logged that it was asked to stop (nnictl stop, or a signal to
    it): while the runner watches, nobody else does that."""
    return "Stopping experiment, cleaning up" in log_text(logs)


def resumable(exp_dir: Path, exp_id: str) -> bool:
    """Whether NNI recorded enough of the experiment to resume it (its profile). Read from a
    snapshot: a manager killed while it wrote leaves a hot journal that NNI's resume rolls back,
    but that a read-only connection refuses."""
    db = exp_dir / exp_id / "db" / "nni.sqlite"
    if not db.is_file():
        return False
    try:
        with opened(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM ExperimentProfile").fetchone()[0] > 0
    except (sqlite3.Error, ExportError, OSError):
        return False


def all_ended(trials, max_trials: int | None) -> bool:
    return (
        bool(trials)
        and all(t.status not in ACTIVE for t in trials)
        and (max_trials is None or len(trials) >= max_trials)
    )


# ---------------------------------------------------------------- fault reports


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"    ({path} not found)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty)"


def trial_folder(exp_dir: Path, exp_id: str, trial_id: str) -> Path:
    """Where NNI 3.0's local service keeps a trial's stdout / stderr."""
    return exp_dir / exp_id / "environments" / "local-env" / "trials" / trial_id


def recorded_trials(study) -> list:
    """The trials as NNI's database holds them once its manager stopped (the last REST poll
    can trail the end by a trial or a final); [] when it cannot be read."""
    from nnisuite.analysis.store import ExportError, load_experiment

    try:
        return load_experiment(study.exp.id, study.exp_dir, live=False).trials
    except (ExportError, OSError):
        return []


def counts(trials) -> dict[str, int]:
    """How the trials ended: `results` (a usable final result, whatever the status: what the
    export ranks; NaN, inf or a string is not one), `succeeded`, `failed`, `stopped` (by the
    user, NNI or an assessor), `no_final` (succeeded without reporting a final), `unfinished`."""
    from nnisuite.analysis.direction import usable

    ended = [t for t in trials if t.status not in ACTIVE]
    return {
        "results": sum(usable(t.final.get("default")) for t in trials),
        "succeeded": sum(t.status == "SUCCEEDED" for t in ended),
        "failed": sum(t.status == "FAILED" for t in ended),
        "stopped": sum(t.status in STOPPED for t in ended),
        "no_final": sum(t.status == "SUCCEEDED" and not t.final for t in ended),
        "unfinished": len(trials) - len(ended),
    }


def counts_line(trials) -> str:
    """One line saying how every trial ended (the end of every run, repeat run and NAS study)."""
    c = counts(trials)
    line = (
        f"trials: {c['results']} with a final result; {c['succeeded']} succeeded, "
        f"{c['failed']} failed, {c['stopped']} stopped, {c['no_final']} succeeded without a "
        "final result"
    )
    return line + (f", {c['unfinished']} unfinished" if c["unfinished"] else "")


def nothing_found(trials, exp_dir: Path, exp_id: str) -> str:
    """Why a study that ended has no result: the first failed trial's last stderr lines and
    where they are, or the trials that never reported a final."""
    c = counts(trials)
    lines = [
        f"error: no trial reported a final result: the study found nothing ({counts_line(trials)})"
    ]
    failed = sorted((t for t in trials if t.status == "FAILED"), key=lambda t: t.sequence or 0)
    if failed:
        stderr = trial_folder(exp_dir, exp_id, failed[0].trial_id) / "trial.stderr"
        text = tail(stderr, 6).rstrip() if stderr.is_file() else "(no stderr recorded)"
        lines.append(f"the first failed trial ({failed[0].trial_id}) ended with ({stderr}):")
        lines += [f"  {line}" for line in text.splitlines()]
    if c["no_final"]:
        lines.append(
            f"{c['no_final']} trial(s) succeeded without a final result: a trial reports "
            "nni.report_final_result(value) once, at its end"
        )
    if not failed and not c["no_final"] and not trials:
        lines.append("no trial ran at all (maxTrialNumber, maxExperimentDuration?)")
    return "\n".join(lines)


def describe_fault(outcome: Outcome, exp_dir: Path, exp_id: str) -> str:
    logs = exp_dir / exp_id / "log"
    lines = [f"watchdog: {NNI_ISSUES.get(outcome.status, outcome.status)}: {outcome.detail}"]
    if outcome.status == "DISK_FULL":
        return (
            f"watchdog: stopped: {outcome.detail}; kept: {database_kept(exp_dir, exp_id)}; "
            "free space there, then resume (below)"
        )
    if outcome.status in ("ERROR", "STRATEGY_FAILED"):
        lines += [f"  tail of {logs / 'dispatcher.log'}:", tail(logs / "dispatcher.log")]
    lines += [f"  tail of {logs / 'nnimanager.log'}:", tail(logs / "nnimanager.log")]
    if outcome.status == "STALLED":
        for t in outcome.trials:
            if t.status in ACTIVE:
                stderr = trial_folder(exp_dir, exp_id, t.trial_id) / "trial.stderr"
                lines += [f"  trial {t.trial_id} is {t.status}; its stderr ends:", tail(stderr, 5)]
    return "\n".join(lines)


# ---------------------------------------------------------------- the session


@dataclass
class Study:
    """What a runner hands to `run_study`."""

    exp: object  # nni.experiment.Experiment or nni.nas.experiment.NasExperiment
    port: int | None  # None: 8080 when free, else a free one, chosen as the manager starts
    out: Path
    max_trials: int | None
    resume_hint: str  # printed whenever the study ends unfinished: how to continue it
    background_start: bool = False  # NAS: exp.start blocks while the strategy runs
    expected_trials: int | None = None
    outcome: Outcome | None = None  # how watching ended, once run_study returns
    port_requested: bool | None = None  # the user named the port (default: a port was given)
    preload: tuple[str, ...] | None = None  # the warm launcher's imports (None: nnisuite's)
    claimed: bool = False  # the caller already holds the experiment (study/claim.py)
    host: str | None = None  # --host: also listen there (default: loopback only)
    title: str | None = None  # the first line run_study prints when it announces: which study

    def __post_init__(self):
        if self.port_requested is None:
            self.port_requested = self.port is not None

    @property
    def hosts(self) -> list[str]:
        """The addresses its manager listens on (nni_patches/binding.py)."""
        return addresses(self.host, self.exp.config)

    @property
    def exp_dir(self) -> Path:
        return Path(self.exp.config.canonical_copy().experiment_working_directory)


@contextlib.contextmanager
def interrupts_enabled():
    """SIGINT and SIGTERM raise KeyboardInterrupt, whatever the parent left them as."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def interrupts_deferred(stream=None):
    """While the manager stops, a second Ctrl-C must not leave it half-stopped."""
    stream = stream or sys.stderr
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def wait(*_):
        print("stopping the experiment, please wait...", file=stream, flush=True)

    for s in previous:
        signal.signal(s, wait)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def manager_alive(exp) -> bool:
    proc = getattr(exp, "_proc", None)
    return proc is not None and proc.poll() is None


def kill_process_group(pid: int | None) -> None:
    """The manager runs in its own process group (NNI starts it with setpgrp), with its
    dispatcher and plain trial processes: after a crash they are orphans in that group."""
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


class OneLine(logging.Filter):
    """NNI's `_logger.exception(e)` when a stop cannot reach the manager: one line, not a
    40-line traceback of requests' internals (what happened is said by the lines after it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.exc_info, record.exc_text = None, None
            first = (str(record.msg).strip().splitlines() or [""])[0]
            record.msg, record.args = f"the manager did not answer the stop: {first[:200]}", ()
        return True


def stop_experiment(exp) -> None:
    """exp.stop(), bounded: a manager that is dead is not asked, one that hangs is killed, one
    that does not listen yet (a stop while NNI starts it) is killed without asking."""
    proc = getattr(exp, "_proc", None)
    pid = getattr(proc, "pid", None)
    if proc is not None and proc.poll() is not None:
        exp._proc = None  # dead: NNI's stop would wait on its REST API
    elif proc is not None and not getattr(exp, "_nnisuite_listening", False):
        try:
            experiment_status(exp.port)  # it may listen already, unknown to owned_start
        except Exception:  # noqa: BLE001 - no answer at all: nothing NNI's stop could ask
            kill_process_group(pid)
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
            exp._proc = None
    timer = threading.Timer(STOP_TIMEOUT_S, kill_process_group, args=(pid,))
    timer.daemon = True
    timer.start()
    nni_log = logging.getLogger("nni.experiment.experiment")
    one_line = OneLine()
    nni_log.addFilter(one_line)
    try:
        exp.stop()
    except Exception as exc:  # noqa: BLE001 - the manager is killed below either way
        print(f"warning: stopping the experiment: {exc}", file=sys.stderr)
    finally:
        nni_log.removeFilter(one_line)
        timer.cancel()
        atexit.unregister(exp.stop)
    kill_process_group(pid)  # orphans of a crashed manager (its dispatcher, plain trials)
    mark_stopped(exp.id)


def mark_stopped(exp_id: str) -> None:
    """NNI's experiment manifest says RUNNING for a manager that died: say STOPPED (unless
    another manager of the experiment still runs: nnictl's entry is then its own)."""
    others = other_managers(exp_id, None)
    if others:
        # NNI's list of experiments is keyed by id: this stop marked the entry STOPPED, and
        # `nnictl stop ID` would then find nothing to stop; the entry is the other manager's
        pid, port = others[0]
        with contextlib.suppress(Exception):
            from nni.tools.nnictl.config_utils import Experiments

            experiments = Experiments()
            for key, value in (("status", "RUNNING"), ("pid", pid), ("port", int(port))):
                experiments.update_experiment(exp_id, key, value)
        return
    with contextlib.suppress(Exception):
        from nni.tools.nnictl.config_utils import Experiments

        experiments = Experiments()
        if experiments.get_all_experiments().get(exp_id, {}).get("status") != "STOPPED":
            experiments.update_experiment(exp_id, "status", "STOPPED")


@contextlib.contextmanager
def guard(exp):
    """A small process that stops the manager if this runner dies without stopping it (even
    of SIGKILL): no manager is left running a study nobody watches."""
    proc = getattr(exp, "_proc", None)
    if proc is None:
        yield
        return
    g = subprocess.Popen(
        module_command("nnisuite.study.guard", str(os.getpid()), str(proc.pid), str(exp.port)),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        g.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            g.wait(timeout=5)


def run_study(
    study: Study,
    *,
    export: Callable[[Study, Outcome], None],
    launcher: bool = True,
    stall_s: float | None = None,
    stream=sys.stdout,
    announce: bool = True,
) -> int:
    """Start (or resume) `study.exp`, watch it, stop it, export; returns the exit code.
    announce=False: no exposure note and no resume hint (a caller running many studies says
    those once, and prints progress to `stream`). The experiment is held for this process
    throughout (study/claim.py): exit 2 when another runner holds it. A stop that comes
    before watching began (its title printed, the experiment being claimed) ends as any other
    interrupted study: exit 130 and what is left to do."""
    try:
        if announce and study.title:
            print(study.title, flush=True)
        if study.claimed:
            return watched_study(study, export, launcher, stall_s, stream, announce)
        with claim(study.exp_dir, study.exp.id):
            study.claimed = True
            return watched_study(study, export, launcher, stall_s, stream, announce)
    except Held as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if study.outcome is not None:
            raise  # after the study's end was said: the caller's one line
        study.outcome = Outcome("INTERRUPTED")
        if announce:
            print(unfinished(study), flush=True)
        return EXIT_INTERRUPTED


def unfinished(study: Study) -> str:
    """What a study that did not finish has left to do: resume it, or (NNI had not recorded
    it) run it again."""
    if resumable(study.exp_dir, study.exp.id):
        return f"the study did not finish; {study.resume_hint}"
    return (
        "the study did not finish; NNI had not recorded it yet (stopped while it started): "
        "nothing to resume, run the same command again"
    )


def watched_study(study: Study, export, launcher, stall_s, stream, announce) -> int:
    """run_study, once the experiment is held."""
    exp = study.exp
    outcome = Outcome("INTERRUPTED")
    logs = SessionLogs(study.exp_dir / exp.id / "log")  # before this session's manager writes
    started = skipped_export = False
    with interrupts_enabled():
        try:
            with warm_launcher(launcher, preload=study.preload), quick_version_query():
                try:
                    if study.background_start:
                        strategy = None

                        def start(port):
                            nonlocal strategy
                            strategy = BackgroundStart(lambda: exp.start(port))
                            wait_for_manager(exp, strategy)

                    else:
                        strategy = None

                        def start(port):
                            exp.start(port)

                    start_on_a_port(exp, study, start, logs)
                    started = True
                    print(
                        f"web UI http://127.0.0.1:{study.port} while it runs; Ctrl-C stops it",
                        file=stream,
                        flush=True,
                    )
                    if announce:
                        print(handover.note(), file=stream, flush=True)
                    opened = exposure(study.hosts, study.port)
                    if announce and opened:
                        print(opened, file=sys.stderr, flush=True)
                    with guard(exp):
                        outcome = watch(
                            study.port,
                            study.max_trials,
                            stream=stream,
                            stall_s=stall_s,
                            manager=getattr(exp, "_proc", None),
                            strategy=strategy,
                            expected=study.expected_trials,
                            logs=logs,
                            exp_id=exp.id,
                            disk=study.exp_dir,
                        )
                    said = outcome.status in ("STOPPED", "DONE") and outcome.detail
                    detail = f" ({outcome.detail})" if said else ""
                    print(
                        f"experiment {exp.id} ended: {outcome.status}{detail}",
                        file=stream,
                        flush=True,
                    )

                except KeyboardInterrupt:
                    print("\ninterrupted: stopping the experiment...", file=sys.stderr, flush=True)
                except PortTaken as exc:
                    print(f"error: {exc}", file=sys.stderr, flush=True)
                    outcome = Outcome("USAGE", str(exc))
                except ManagerStartError as exc:
                    print(f"error: {exc}", file=sys.stderr, flush=True)
                    outcome = Outcome("UNREACHABLE", str(exc))
                finally:
                    with interrupts_deferred():
                        stop_experiment(exp)
        except KeyboardInterrupt:  # a Ctrl-C while the launcher shut down
            pass
        if outcome.status == "USAGE":
            study.outcome = outcome
            return EXIT_USAGE
        # how every trial ended, from the database of the stopped manager (outcome.trials stays
        # the last poll's: what was RUNNING when a fault was seen)
        recorded = (recorded_trials(study) or outcome.trials) if started else outcome.trials
        if started:
            print(counts_line(recorded), file=stream, flush=True)
        if outcome.status == "STOPPED" and all_ended(outcome.trials, study.max_trials):
            outcome.status = "DONE"  # stopped from outside once every trial had ended
        if outcome.fault and started:
            print(describe_fault(outcome, study.exp_dir, exp.id), file=sys.stderr, flush=True)
        written = True
        try:
            export(study, outcome)
        except KeyboardInterrupt:
            # the export is staged: --out holds the earlier export or nothing, never a part
            skipped_export = True
            print(
                f"interrupted: the export was not written ({study.out} is as it was); to write "
                f"it: nnisuite export {exp.id} --experiment-dir "
                f"{quoted(Path(study.exp_dir).resolve())} "
                f"--out {quoted(Path(study.out).resolve())}",
                file=sys.stderr,
                flush=True,
            )
        except WriteError as exc:
            written = False
            print(f"error: the export failed: {exc}", file=sys.stderr, flush=True)
    study.outcome = outcome
    if not outcome.finished and announce:
        print(unfinished(study), flush=True)
    if outcome.status == "DISK_FULL" or (outcome.finished and not written):
        return EXIT_WRITE
    if outcome.fault:
        return EXIT_FAULT
    if outcome.finished and not counts(recorded)["results"]:
        print(nothing_found(recorded, study.exp_dir, exp.id), file=sys.stderr, flush=True)
        return EXIT_NO_RESULT
    if skipped_export:
        return EXIT_INTERRUPTED  # the study finished; its export did not: not a plain success
    return EXIT_DONE if outcome.finished else EXIT_INTERRUPTED


def quoted(path) -> str:
    """A path as a shell word (folders with spaces)."""
    return shlex.quote(str(path))


def wait_for_manager(exp, strategy: BackgroundStart, timeout_s: float = 120.0) -> None:
    """Until the background start has a manager of its own answering (or failed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not strategy.done:
        if getattr(exp, "_nnisuite_listening", False):
            try:
                experiment_status(exp.port)
                return
            except Exception:  # noqa: BLE001 - not up yet
                pass
        time.sleep(0.2)
    if strategy.error is not None:
        raise strategy.error
