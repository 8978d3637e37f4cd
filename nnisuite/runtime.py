"""What nnisuite keeps outside a user's --out and experiment folder (port locks, launcher sockets,
the interpreter shim, database snapshots), in a folder of the user's own, so that several users
of one machine never meet each other's files:

    runtime_dir()                  # $XDG_RUNTIME_DIR/nnisuite, else <tmp>/nnisuite-<uid>, 0700
    scratch("nnisuite-launcher-")  # a fresh folder inside it (tempfile.mkdtemp)

A folder of that name that is not this user's own, or that others may write, is never used:
nnisuite falls back to a fresh private folder of its own under the temporary folder.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


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


def scratch(prefix: str) -> Path:
    """A new empty folder of this user's for one process's runtime files."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=runtime_dir()))
