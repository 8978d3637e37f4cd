"""One runner per experiment: never two NNI managers writing one database.

    with claim(exp_dir, exp_id):         # Held (one line naming the holder) when another has it
        run the study

A runner (nnisuite.study.run, its --resume, repeat, nas) holds an advisory lock on
`<experiment dir>/.nnisuite/<id>.lock` from before its manager starts until after it stopped;
the file says which process holds it and its command line. The kernel drops the lock when that
process dies however it dies (kill -9 included), so a stale file never blocks anyone. A second
`--resume ID` while the first runner still runs is refused before it touches anything (the
resume would otherwise stop the first runner's manager and start its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import sys
from pathlib import Path


class Held(RuntimeError):
    """Another live process runs the experiment; the message names it."""


def command_line() -> str:
    """This process's command line as typed (python -m nnisuite.study.run ...)."""
    import psutil

    try:
        return shlex.join(psutil.Process().cmdline())
    except psutil.Error:
        return shlex.join(sys.argv)


def lock_path(exp_dir: Path, exp_id: str) -> Path:
    return Path(exp_dir).expanduser() / ".nnisuite" / f"{exp_id}.lock"


def describe(text: str) -> str:
    pid, _, command = text.partition("\n")
    return f"process {pid.strip() or '?'} ({command.strip() or 'command unknown'})"


@contextlib.contextmanager
def claim(exp_dir: Path, exp_id: str):
    """Hold experiment `exp_id` of `exp_dir` for this process; Held when another holds it."""
    path = lock_path(exp_dir, exp_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise Held(
                f"experiment {exp_id} is being run by another runner, {describe(f.read())}: "
                "two managers would write one database; wait for it to end, or stop it "
                "(Ctrl-C there)"
            ) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n{command_line()}\n")
            f.flush()
            yield path
        finally:
            with contextlib.suppress(OSError):
                f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)


def holder(exp_dir: Path, exp_id: str) -> str | None:
    """Who holds the experiment now (the Held message), or None."""
    if not lock_path(exp_dir, exp_id).exists():
        return None
    try:
        with claim(exp_dir, exp_id):
            return None
    except Held as exc:
        return str(exc)
