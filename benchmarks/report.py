"""How a benchmark takes its --out folder (out_folder: checked before any work) and how a small
one hands over its result: NAME.json (the figures) and NAME.md (a title with the machine, the
command that made it, a table, a closing line) in that folder, the markdown printed too."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nnisuite.outputs import check_writable, write_text


def out_folder(parser: argparse.ArgumentParser, out: str) -> Path:
    """--out as a folder to write into; the parser's one-line error (exit 2) when it cannot
    be written."""
    problem = check_writable(Path(out), "--out")
    if problem:
        parser.error(problem)
    return Path(out)


def write_report(
    out: Path, name: str, result: dict, title: str, command: str, rows: list[str], last: str
) -> None:
    """`result` must hold "machine" (nnisuite.benchmarks.machine.cpu_name); `rows`: a markdown
    table."""
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / f"{name}.json", json.dumps(result, indent=1) + "\n")
    text = "\n".join(
        [f"# {title} ({result['machine']})", "", f"Command: {command}", "", *rows, "", last]
    )
    write_text(out / f"{name}.md", text + "\n")
    print(text)
