"""Where results are written: a folder checked before any work starts.

    problem = check_writable(Path("runs/x"), "--out")   # None, or one line saying what is wrong

A folder that exists must be a writable folder; one that does not must be creatable (its
nearest existing parent a writable folder). Nothing is created by the check.
"""

from __future__ import annotations

import os
from pathlib import Path


def check_writable(path: Path, flag: str) -> str | None:
    """None when `path` is (or can become) a writable folder; else one line naming `flag`."""
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            return f"{flag} {path}: exists and is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{flag} {path}: folder not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{flag} {path}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{flag} {path}: cannot create it ({parent} is not writable)"
    return None
