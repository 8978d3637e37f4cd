"""NNI's tuner dispatcher as nnisuite's managers start it: `python -m nni ARGS` becomes

    python -c "from experiments import nni_dispatcher; nni_dispatcher.main()" ARGS

(experiments/nni_python.py's interpreter script), which runs NNI's own `nni.__main__` with two
things fixed from the outside:

- `import nni` without scipy.stats (launcher/nni_import.py; NNISUITE_LAZY_SCIPY=0: as NNI does);
- a stop in milliseconds. NNI 3.0's dispatcher (nni/runtime/msg_dispatcher_base.py) ends its
  two command workers by letting each wait out `queue.get(timeout=3)` before it sees
  `stopping`, and NNI's manager waits for the dispatcher to exit (polling it each second) before
  it stops anything else: every experiment's stop took ~3 s more. Here setting `stopping` puts
  a marker on both queues, which their `get` turns into NNI's own `Empty`: an idle worker sees
  `stopping` at once; a busy one finishes its command and stops, as NNI's loop has it.

NNISUITE_NNI_PYTHON=plain (experiments/nni_python.py) turns the whole script off: NNI's
dispatcher as it ships.
"""

from __future__ import annotations

import queue
import runpy

from launcher import nni_import

WAKE = ("nnisuite: stopping", None)  # never a command NNI sends (those are CommandType)


class WakeableQueue(queue.Queue):
    """A dispatcher command queue whose `get` answers the stop marker with queue.Empty."""

    def get(self, block=True, timeout=None):
        item = super().get(block, timeout)
        if item is WAKE:
            raise queue.Empty
        return item


def quick_stop() -> None:
    """Patch NNI's MsgDispatcherBase (once per process) so that its stop wakes its workers."""
    from nni.runtime import msg_dispatcher_base as base

    cls = base.MsgDispatcherBase
    if getattr(cls, "nnisuite_quick_stop", False):
        return
    base.Queue = WakeableQueue  # the module's `from queue import Queue`: its two queues

    def get_stopping(self) -> bool:
        return self.__dict__.get("_nnisuite_stopping", False)

    def set_stopping(self, value: bool) -> None:
        self.__dict__["_nnisuite_stopping"] = value
        if value:
            for name in ("default_command_queue", "assessor_command_queue"):
                found = self.__dict__.get(name)
                if isinstance(found, WakeableQueue):
                    found.put(WAKE)

    cls.stopping = property(get_stopping, set_stopping)
    cls.nnisuite_quick_stop = True


def main() -> None:
    """`python -m nni ARGS` (sys.argv carries ARGS) with both fixes in place."""
    nni_import.install()  # unless NNISUITE_LAZY_SCIPY=0
    quick_stop()
    runpy.run_module("nni", run_name="__main__", alter_sys=True)
