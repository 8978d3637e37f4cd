"""How a small benchmark hands over its result: NAME.json (the figures) and NAME.md (a title
with the machine, the command that made it, a table, a closing line) in its --out folder, the
markdown printed too."""

from __future__ import annotations

import json
from pathlib import Path


def write_report(
    out: Path, name: str, result: dict, title: str, command: str, rows: list[str], last: str
) -> None:
    """`result` must hold "machine" (benchmarks.machine.cpu_name); `rows`: a markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    text = "\n".join(
        [f"# {title} ({result['machine']})", "", f"Command: {command}", "", *rows, "", last]
    )
    (out / f"{name}.md").write_text(text + "\n")
    print(text)
