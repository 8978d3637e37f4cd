"""Stops an NNI manager when the runner that started it dies without stopping it.

    python -m nnisuite.study.guard RUNNER_PID MANAGER_PID PORT    # nnisuite.study.manager starts it

NNI runs its manager detached (its own process group) and stops it from an `atexit` hook, which
a runner killed with SIGKILL never runs: the manager would go on running a study that nobody
watches, with trials that no longer fork from the (dead) warm launcher. The guard is the
runner's child: when it is re-parented (the runner died), it asks the manager to stop, as
`nnictl stop` does, and kills its process group if it has not exited 30 s later. The stopped
experiment resumes with `python -m nnisuite.study.run --resume ID`. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import urllib.request

STOP_WAIT_S = 30.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_manager(manager_pid: int, port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/nni/experiment", method="DELETE"
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=10).close()
    deadline = time.monotonic() + STOP_WAIT_S
    while alive(manager_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(manager_pid, signal.SIGKILL)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nnisuite.study.guard", description=__doc__)
    p.add_argument("runner", type=int, help="pid of the runner (this process's parent)")
    p.add_argument("manager", type=int, help="pid of the NNI manager (its process group)")
    p.add_argument("port", type=int, help="the manager's REST port")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the runner's normal goodbye
    while os.getppid() == args.runner:
        if not alive(args.manager):
            return 0
        time.sleep(0.2)
    if alive(args.manager):
        print(f"guard: runner {args.runner} died; stopping NNI manager {args.manager}")
        stop_manager(args.manager, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
