"""Files written whole or not at all.

    with staged(Path("runs/x")) as stage:                # write into `stage`; on success every
        (stage / "trials.csv").write_text(...)           # file replaces its namesake in runs/x

The files are written into a hidden folder inside `out` (the same disk), then each is renamed
over its namesake, which is atomic: a full disk or an I/O error while writing leaves the previous
files of `out` exactly as they were (the hidden folder is removed) and raises WriteError, one
line naming the folder, the file when known, and the reason. Commands exit EXIT_WRITE then.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

EXIT_WRITE = 4  # a disk filled or a write failed: nothing finished lost, nothing half-written


class WriteError(RuntimeError):
    """Results could not be written (disk full, I/O error); the message says where and why."""


def reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on its disk"
    return exc.strerror or str(exc)


def manifest(out: Path, owner: str) -> Path:
    """The list of files the last `owner` write put in `out` (one name a line)."""
    return out / f".nnisuite-{owner}-files"


@contextlib.contextmanager
def staged(out: Path, owner: str | None = None):
    """Yields a hidden folder inside `out` to write into; on success its files replace their
    namesakes in `out`. An OSError while writing (or an exception of the caller's) leaves `out`
    as it was; OSErrors come out as WriteError. `owner` (e.g. "export"): the write is the whole
    of that kind in `out`: files the previous write of that owner listed and this one does not
    write are removed (an export never leaves an earlier experiment's importance.csv or plots
    beside its own); the user's other files stay."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".writing-", dir=out))
    except OSError as exc:
        raise WriteError(f"cannot write into {out}: {reason(exc)}") from None
    try:
        try:
            yield stage
        except OSError as exc:
            name = f" ({Path(exc.filename).name})" if exc.filename else ""
            raise WriteError(
                f"cannot write into {out}{name}: {reason(exc)}; the files there are as they were"
            ) from None
        written = sorted(path.name for path in stage.iterdir())
        if owner is not None:
            (stage / manifest(out, owner).name).write_text("".join(f"{n}\n" for n in written))
        previous = earlier_files(out, owner) if owner is not None else set()
        for path in sorted(stage.iterdir()):
            os.replace(path, out / path.name)
        for name in sorted(previous - set(written)):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (out / name).unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def earlier_files(out: Path, owner: str) -> set[str]:
    """The plain file names the last `owner` write listed in `out` (none where it left none)."""
    try:
        names = manifest(out, owner).read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return set()
    return {n for n in names if n and "/" not in n and n not in (".", "..")}
