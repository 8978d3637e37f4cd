"""What nnisuite keeps outside a user's --out and experiment folder (port locks, launcher sockets,
the interpreter shim, database snapshots), in a folder of the user's own, so that several users
of one machine never meet each other's files:

    runtime_dir()                  # $XDG_RUNTIME_DIR/nnisuite, else <tmp>/nnisuite-<uid>, 0700
    scratch("nnisuite-launcher-")  # a fresh folder inside it (tempfile.mkdtemp)

A folder of that name that is not this user's own, or that others may write, is never used:
nnisuite falls back to a fresh private folder of its own under the temporary folder.

Each scratch folder records the process that made it (`owner`: pid and start time); making
one removes the others whose process is gone (a runner SIGKILLed never ran its cleanup), so
kills leave nothing behind for long.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

OWNER = "owner"  # in each scratch folder: "<pid> <start time>" of the process that made it
PREFIXES = ("nnisuite-launcher-", "nnisuite-python-")


def private(path: Path) -> bool:
    """Whether `path` is a real folder (no symlink) of this user's that no one else may write."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def runtime_dir() -> Path:
    """This user's folder for nnisuite's runtime files, made 0700 on first use."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    candidates = [Path(xdg) / "nnisuite"] if xdg and private(Path(xdg)) else []
    candidates.append(Path(tempfile.gettempdir()) / f"nnisuite-{os.getuid()}")
    for folder in candidates:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            continue
        if private(folder):
            return folder
    # every usual place is someone else's: a folder of this process's own
    return Path(tempfile.mkdtemp(prefix=f"nnisuite-{os.getuid()}-"))


def started(pid: int) -> str | None:
    """The start time of process `pid` (Linux's /proc), None when there is no such process:
    with the pid it names one process, never a later one that reused the pid."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return stat_line.rsplit(")", 1)[-1].split()[19]


def gone(folder: Path) -> bool:
    """Whether the process that made scratch folder `folder` no longer runs."""
    try:
        pid, start = (folder / OWNER).read_text().split()
        return started(int(pid)) != start
    except (OSError, ValueError):
        return False  # no record (an older nnisuite's, or being made): left alone


def sweep(root: Path) -> None:
    """Remove the scratch folders under `root` whose process is gone."""
    if not Path("/proc/self/stat").exists():
        return
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.name.startswith(PREFIXES) and gone(folder):
            shutil.rmtree(folder, ignore_errors=True)


def scratch(prefix: str) -> Path:
    """A new empty folder of this user's for one process's runtime files (it holds only the
    `owner` record); the folders of processes gone are removed first."""
    root = runtime_dir()
    try:
        sweep(root)
    except OSError:
        pass
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    start = started(os.getpid())
    if start is not None:
        (folder / OWNER).write_text(f"{os.getpid()} {start}\n")
    return folder


def release(folder: Path) -> None:
    """Remove scratch folder `folder` once its files are gone: its owner record, then the folder
    if nothing else is left in it."""
    try:
        (folder / OWNER).unlink()
    except OSError:
        pass
    try:
        folder.rmdir()
    except OSError:
        pass
