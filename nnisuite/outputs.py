"""Where results are written: a folder checked before any work starts, and files that replace
what is there instead of writing through it.

    problem = check_writable(Path("runs/x"), "--out")   # None, or one line saying what is wrong
    write_text(out / "metrics.json", text)              # also save_csv(df, path),
    save_figure(fig, out / "curve.png", dpi=100)        # and `with replaced(path) as tmp:`

A folder handed over by someone else may hold a symlink named like an output (`metrics.json` ->
~/.bashrc): writing through it would overwrite its target. Every output is written to a
temporary file beside it and renamed over the name, which replaces the link itself.

A folder that exists must be a writable folder on a disk with at least DISK_LOW bytes free; one
that does not must be creatable (its nearest existing parent a writable folder). Nothing is
created by the check. (Files written whole or not at all: analysis/atomic.py.)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
from pathlib import Path

DISK_LOW = 1 << 20  # bytes: below this, a disk counts as full (NNI's database needs room)


def free_bytes(path: Path) -> int | None:
    """Free bytes on the disk holding `path` (or its nearest existing parent); None if unknown."""
    path = Path(path).expanduser()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def disk_full(path: Path) -> str | None:
    """None while the disk of `path` has DISK_LOW free; else one line saying how little."""
    free = free_bytes(path)
    if free is None or free >= DISK_LOW:
        return None
    return f"its disk is full ({size(free)} free)"


def check_writable(path: Path, flag: str) -> str | None:
    """None when `path` is (or can become) a writable folder; else one line naming `flag`."""
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            return f"{flag} {path}: exists and is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{flag} {path}: folder not writable"
        full = disk_full(path)
        return f"{flag} {path}: {full}" if full else None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{flag} {path}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{flag} {path}: cannot create it ({parent} is not writable)"
    full = disk_full(parent)
    return f"{flag} {path}: {full}" if full else None


def folder_flag(text: str) -> str:
    """argparse's `type` of every --out: an empty path (`--out ""`) names no folder (it would
    be the current one), so it is refused, not read as "."."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name a folder")
    return text


@contextlib.contextmanager
def replaced(path: Path):
    """A temporary file beside `path` (same suffix: plotting libraries read the format from it)
    to write; once written it is renamed over `path`, replacing whatever is there, a symlink
    included, never writing through it; a failed write leaves what was there."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    with replaced(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_csv(frame, path: Path) -> None:
    """A pandas DataFrame as CSV, without its index."""
    with replaced(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_figure(fig, path: Path, **options) -> None:
    with replaced(path) as tmp:
        fig.savefig(tmp, **options)
