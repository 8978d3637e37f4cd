"""Process plumbing that starts trials (not trial code): the trial-command client NNI runs, the
warm launcher server trials fork from, their wire protocol, and the context that runs one
launcher per study.

    client.py    `python3 -m launcher MODULE ARGS`: the trial command of every experiment file
    server.py    `python -m launcher.server --socket S`: the warm, pre-imported process
    protocol.py  length-prefixed JSON messages with file descriptors over a Unix socket
    warm.py      `with warm_launcher(): ...` around an experiment
    nni_import.py  `import nni` without scipy.stats until a distribution is used

Standard library only (the client starts on any python3, before the project's Python is known).
"""

from __future__ import annotations

from pathlib import Path

from launcher import nni_import

nni_import.install()  # `import nni` defers scipy.stats until used (nni_import.py)

# The project root: NNI's trial code directory; the client runs every trial from here.
REPO = Path(__file__).resolve().parent.parent
# `python3 -m launcher MODULE ...` is how every experiment file starts a trial module.
CLIENT_MODULE = "launcher"
TRIAL_COMMAND = f"python3 -m {CLIENT_MODULE}"


def trial_command(module: str, *args: str, python: str = "python3") -> str:
    """The trial command that runs `module` through the client, e.g.
    `python3 -m launcher trials.mlp --epochs 2`."""
    import shlex

    return shlex.join([python, "-m", CLIENT_MODULE, module, *args])
