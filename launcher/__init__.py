"""Process plumbing that starts trials (not trial code): the trial-command client NNI runs, the
warm launcher server trials fork from, their wire protocol, and the context that runs one
launcher per study.

    client.py    `python3 -m nnisuite.launcher MODULE ARGS`: the trial command of every
                 experiment file
    server.py    `python -P -m nnisuite.launcher.server --socket S`: the warm, pre-imported process
    protocol.py  length-prefixed JSON messages with file descriptors over a Unix socket
    warm.py      `with warm_launcher(): ...` around an experiment

Standard library only (the client starts on any python3, before the project's Python is known).
"""

from __future__ import annotations

import sys

# `python3 -m nnisuite.launcher MODULE ...` is how every experiment file starts a trial module.
CLIENT_MODULE = "nnisuite.launcher"
TRIAL_COMMAND = f"python3 -m {CLIENT_MODULE}"


def trial_command(module: str, *args: str, python: str = "python3") -> str:
    """The trial command that runs `module` through the client, e.g.
    `python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 2`."""
    import shlex

    return shlex.join([python, "-m", CLIENT_MODULE, module, *args])


def module_command(module: str, *args: str, python: str | None = None) -> list[str]:
    """How nnisuite starts a process of its own: `python -P -m MODULE ARGS`. `-P` keeps the
    current folder (a user's project, which may hold launcher.py or nnisuite.py) off sys.path, so
    nnisuite's processes import nnisuite's modules only (Python >= 3.11)."""
    return [python or sys.executable, "-P", "-m", module, *args]


def needs_cwd(module: str) -> bool:
    """Whether a trial module is run as `python -m` runs it, its folder first on sys.path: a
    user's module (theirs.train) is; nnisuite's and NNI's own (nnisuite.trials.mlp, NNI's NAS
    trial) are not, so a user's nnisuite.py or models.py beside them is never imported."""
    return module.split(".")[0] not in ("nnisuite", "nni")
