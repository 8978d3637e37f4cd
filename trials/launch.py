"""The trial command NNI runs: a standard-library client that starts a trial module with the
project's Python, whatever `python3` NNI's shell finds.

    python3 -m trials.launch trials.mlp --epochs 20            # what experiment YAMLs run
    python3 -m trials.launch --python /opt/env/bin/python trials.mlp   # a worker's own Python

The Python is, in order: `--python`, `$NNISUITE_PYTHON`, the repo's `.venv/bin/python`, and
this interpreter. NNI's local service runs trials with nnictl's environment, which need not
have `.venv` activated; on a remote worker `.venv` is not uploaded (`.nniignore`) and NNI 3.0
does not apply `pythonPath` to the trial command, so `--python` or `$NNISUITE_PYTHON` name it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def project_python(explicit: str | None = None) -> str:
    for candidate in (explicit, os.environ.get("NNISUITE_PYTHON")):
        if candidate:
            return candidate
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def split_args(argv: list[str]) -> tuple[str | None, str, list[str]]:
    python = None
    if argv[:1] == ["--python"] and len(argv) >= 2:
        python, argv = argv[1], argv[2:]
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: python3 -m trials.launch [--python PATH] MODULE [ARGS...]")
    return python, argv[0], argv[1:]


def main(argv: list[str] | None = None) -> None:
    python, module, args = split_args(list(sys.argv[1:] if argv is None else argv))
    exe = project_python(python)
    os.chdir(REPO)  # the trial imports the project's packages from the code directory
    os.execv(exe, [exe, "-m", module, *args])


if __name__ == "__main__":
    main()
