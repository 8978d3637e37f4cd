"""The Python interpreter NNI's manager is told to use: this one, through a small shell script
that answers the manager's version query itself.

    with quick_version_query():      # around exp.start(port) and the whole experiment
        exp.start(port)

NNI 3.0's manager runs `python -m nni.tools.nni_manager_scripts.collect_version_info` at every
start (nni_node/common/trial_keeper/collect_platform_info.js), a process that imports all of
nni to print four facts: about 2.3 s of CPU per experiment here, paid again by every run of a
repeated study. The script prints the same JSON (computed by this process, which has nni
imported already), answers the remote service's `-c "import nni ; print(nni.__version__)"`
(run once per SSH worker) the same way, starts the tuner's dispatcher (`python -m nni ...`)
through nni_patches/dispatcher.py (scipy.stats deferred, a stop without NNI's 3 s wait) and
hands every other command to this interpreter unchanged. NNI is fixed from the outside: its
launcher's NniManagerArgs gets the script as `python_interpreter` while the block runs. Switch
it off with NNISUITE_NNI_PYTHON=plain.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys

from nnisuite.runtime import scratch

MODULE = "nni.tools.nni_manager_scripts.collect_version_info"
VERSION_SCRIPT = "import nni ; print(nni.__version__)"
DISPATCHER = "from nnisuite.nni_patches import dispatcher; dispatcher.main()"


def version_info() -> str:
    """What NNI's collect_version_info prints, for this interpreter."""
    import nni

    return json.dumps(
        {
            "nniVersion": nni.__version__,
            "nniPath": nni.__path__[0],
            "pythonVersion": "{}.{}.{}-{}-{}".format(*sys.version_info),
            "pythonPath": sys.executable,
        }
    )


def script(python: str, answer: str) -> str:
    return "\n".join(
        [
            "#!/bin/sh",
            "# nnisuite (nni_patches/interpreter.py): NNI's manager runs its Python through this.",
            f'if [ "$1" = -m ] && [ "$2" = {MODULE} ]; then',
            f"  printf '%s\\n' {shlex.quote(answer)}",
            "  exit 0",
            "fi",
            "# the remote service's version check, once per worker (training_service/remote_v3)",
            f'if [ "$1" = -c ] && [ "$2" = {shlex.quote(VERSION_SCRIPT)} ]; then',
            f"  printf '%s\\n' {shlex.quote(json.loads(answer)['nniVersion'])}",
            "  exit 0",
            "fi",
            "# the dispatcher, fixed from outside (nni_patches/dispatcher.py)",
            'if [ "$1" = -m ] && [ "$2" = nni ]; then',
            "  shift 2",
            f'  exec {shlex.quote(python)} -P -c {shlex.quote(DISPATCHER)} "$@"',
            "fi",
            f'exec {shlex.quote(python)} "$@"',
            "",
        ]
    )


@contextlib.contextmanager
def quick_version_query():
    """While the block runs, NNI managers started from this process use the script."""
    if os.environ.get("NNISUITE_NNI_PYTHON") == "plain":
        yield None
        return
    from nni.experiment import launcher as nni_launcher

    folder = scratch("nnisuite-python-")
    path = folder / "python"
    path.write_text(script(sys.executable, version_info()))
    path.chmod(0o700)
    original = nni_launcher.NniManagerArgs.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.python_interpreter = str(path)

    nni_launcher.NniManagerArgs.__init__ = init
    try:
        yield path
    finally:
        nni_launcher.NniManagerArgs.__init__ = original
        shutil.rmtree(folder, ignore_errors=True)
