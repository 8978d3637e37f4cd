"""`nnisuite init [DIR]`: a starting point for your own study, a commented `train.py` (reads its
parameters, reports one intermediate result per epoch and one final, seeds from NNISUITE_SEED)
and the `config.yml` that runs it, both checked by `nnisuite validate` and run by `nnisuite run`
as written.

    nnisuite init my-study && cd my-study && nnisuite run config.yml

Existing files are never overwritten (exit 2 naming them) unless --force.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnisuite import HOME
from nnisuite.flags import Parser

TEMPLATES = HOME / "templates"
FILES = ("train.py", "config.yml")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="nnisuite init",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", nargs="?", default=".", help="folder to write into (default: here)")
    p.add_argument("--force", action="store_true", help="replace train.py / config.yml there")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.dir.strip():
        print("error: DIR is empty: give a folder (or leave it out for this one)", file=sys.stderr)
        return 2
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        print(f"error: {folder} exists and is not a folder", file=sys.stderr)
        return 2
    taken = [name for name in FILES if (folder / name).exists() or (folder / name).is_symlink()]
    if taken and not args.force:
        print(
            f"error: {folder} already holds {', '.join(taken)}: --force replaces", file=sys.stderr
        )
        return 2
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            target = folder / name
            if target.is_symlink():
                target.unlink()  # replace a link, never write through it
            target.write_text((TEMPLATES / name).read_text())
    except OSError as exc:
        print(f"error: cannot write into {folder}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    where = "" if folder == Path(".") else f"cd {folder} && "
    print(f"wrote {folder / 'train.py'} and {folder / 'config.yml'}")
    print(f"next: {where}nnisuite run config.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
