"""Small tmpfs mounts a test makes and always unmounts: a disk that fills, a read-only folder.

    with tmpfs(tmp_path / "nni", size="16m") as folder:   # a 16 MB disk of its own
        ...
    with tmpfs(tmp_path / "ro", read_only=True) as folder:   # writes fail with EROFS, even as root

`cannot_mount()` says in one line why this machine cannot (not root, no mount), for a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

MOUNT, UMOUNT = shutil.which("mount"), shutil.which("umount")


def cannot_mount() -> str | None:
    """None when this process can mount a tmpfs (tried once, on a throw-away folder)."""
    if MOUNT is None or UMOUNT is None:
        return "no mount / umount command"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    with tempfile.TemporaryDirectory(prefix="nnisuite-mount-probe-") as folder:
        tried = subprocess.run(
            [MOUNT, "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if tried.returncode != 0:
            return f"mount -t tmpfs failed: {tried.stderr.strip()}"
        subprocess.run([UMOUNT, folder], capture_output=True, timeout=30)
    return None


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "16m", read_only: bool = False):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(
        [MOUNT, "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield folder
    finally:
        subprocess.run([UMOUNT, "-l", str(folder)], capture_output=True, timeout=30)


def fill(folder: Path) -> None:
    """Write into `folder` until its disk is full (the file stays)."""
    chunk = b"\0" * 65536
    with contextlib.suppress(OSError), open(Path(folder) / "filler", "wb") as f:
        while True:
            f.write(chunk)
            f.flush()
