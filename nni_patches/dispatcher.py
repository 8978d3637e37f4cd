"""NNI's tuner dispatcher as nnisuite's managers start it: `python -m nni ARGS` becomes

    python -c "from nnisuite.nni_patches import dispatcher; dispatcher.main()" ARGS

(nni_patches/interpreter.py's interpreter script), which runs NNI's own `nni.__main__` with two
things fixed from the outside:

- `import nni` without scipy.stats (nni_patches/lazy_import.py; NNISUITE_LAZY_SCIPY=0: as NNI does);
- a stop in milliseconds. NNI 3.0's dispatcher (nni/runtime/msg_dispatcher_base.py) ends its
  two command workers by letting each wait out `queue.get(timeout=3)` before it sees
  `stopping`, and NNI's manager waits for the dispatcher to exit (polling it each second) before
  it stops anything else: every experiment's stop took ~3 s more. Here setting `stopping` puts
  a marker on both queues, which their `get` turns into NNI's own `Empty`: an idle worker sees
  `stopping` at once; a busy one finishes its command and stops, as NNI's loop has it;
- once stopping, a command the dispatcher fails to send is dropped at the first failure. NNI's
  WebSocket channel retries a failed send 5 times over 10 s; the reply to a command handled as
  the stop came (a trial's result or end that came with a Ctrl-C) can only fail, the manager
  having closed its end, and the manager waits for this process: such a stop took 11 s instead
  of 1 (seen in `make test`);
- a trial's end told to the tuner after its final result. NNI 3.0 queues a trial's final
  result on the default worker and its end on the assessor worker (enqueue_command), and the
  end calls the tuner's `trial_end`: when the default worker is still busy (TPE choosing the
  next parameters, on a loaded machine), the end overtakes the final, TPE's `trial_end` drops
  the trial's parameters, its `receive_trial_result` then raises KeyError and the dispatcher
  dies: the study stalls (seen under `make test`, with and without an assessor). Here the end's
  assessor part stays on the assessor worker (in order with the trial's intermediate results)
  and its tuner part is queued on the default worker, behind the final already queued there;
- a trial's end that reaches the dispatcher before its final result (NNI's manager sends the
  end when the trial process exits, and a final sent just before the exit can still be on its
  way: seen in `make test` with trials that end within a second, the study dying of TPE's
  KeyError) is held for the tuner until that final has been handled. A trial that succeeded
  without a final is ended as NNI would once its end is HOLD_S seconds old, at the next end or
  final the dispatcher handles (no timer: if none follows, the tuner never hears that end).
  Only a SUCCEEDED end waits; a failed or stopped trial's end is told at once.

NNISUITE_NNI_PYTHON=plain (nni_patches/interpreter.py) turns the whole script off: NNI's
dispatcher as it ships.
"""

from __future__ import annotations

import queue
import runpy
import threading
import time

from nnisuite.nni_patches import lazy_import

WAKE = ("nnisuite: stopping", None)  # never a command NNI sends (those are CommandType)
STOPPING = threading.Event()  # set when this process's dispatcher begins to stop


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
            STOPPING.set()
            for name in ("default_command_queue", "assessor_command_queue"):
                found = self.__dict__.get(name)
                if isinstance(found, WakeableQueue):
                    found.put(WAKE)

    cls.stopping = property(get_stopping, set_stopping)
    cls.nnisuite_quick_stop = True


def no_retry_when_stopping() -> None:
    """Patch NNI's WebSocket channel client (once per process) so that, once the dispatcher is
    stopping, a send that fails is not retried: the module docstring says why."""
    from nni.runtime.command_channel.websocket import channel

    cls = channel.WsChannelClient
    original = cls.send
    if getattr(original, "nnisuite_no_retry", False):
        return

    def send(self, command) -> None:
        if not STOPPING.is_set():
            original(self, command)
            return
        try:
            self._ensure_conn().send(command)
        except Exception as exc:  # noqa: BLE001 - the manager asked for the stop and has gone
            self._terminate_conn("send fail")
            channel._logger.warning(
                "nnisuite: stopping, and the manager no longer listens: a command not sent "
                f"({str(command)[:80]}): {exc!r}"
            )

    send.nnisuite_no_retry = True
    cls.send = send


TUNER_PART = "nnisuite_tuner_part"  # a trial end queued again, for the tuner's part only


class _Without:
    """The dispatcher seen by NNI's handle_trial_end with one of its parts (tuner, assessor)
    taken away: every other attribute is the dispatcher's own."""

    def __init__(self, dispatcher, part: str):
        self._dispatcher, self._part = dispatcher, part

    def __getattr__(self, name):
        return None if name == self._part else getattr(self._dispatcher, name)


def tells_tuner(data) -> bool:
    """Whether this call of MsgDispatcher.handle_trial_end is the one that calls the tuner's
    `trial_end` (with ordered_trial_end in place, the second one, on the default worker)."""
    return not ORDERED["on"] or bool(isinstance(data, dict) and data.get(TUNER_PART))


ORDERED = {"on": False}
HOLD_S = 10.0  # a held SUCCEEDED end older than this is told at the next end or final handled


def ordered_trial_end() -> None:
    """Patch NNI's MsgDispatcher (once per process) so that the tuner hears a trial's end after
    its final result, whichever NNI's manager sent first: the module docstring says why. The
    tuner's part of an end runs on the default worker, which also handles the finals."""
    from nni.common.serializer import load
    from nni.runtime.msg_dispatcher import MsgDispatcher
    from nni.runtime.tuner_command_channel import CommandType

    original = MsgDispatcher.handle_trial_end
    if getattr(original, "nnisuite_ordered", False):
        return
    original_final = MsgDispatcher._handle_final_metric_data

    def state(self) -> tuple[dict, set]:
        """(the ends held: parameter id -> (when, the end), the parameter ids whose final the
        tuner has had), kept on the dispatcher (the default worker alone touches them)."""
        return (
            self.__dict__.setdefault("_nnisuite_held_ends", {}),
            self.__dict__.setdefault("_nnisuite_finals", set()),
        )

    def tell_tuner(self, data) -> None:
        original(_Without(self, "assessor"), data)

    def release(self, older_than_s: float) -> None:
        held, _ = state(self)
        now = time.monotonic()
        for parameter_id, (since, data) in list(held.items()):
            if now - since >= older_than_s:
                del held[parameter_id]
                tell_tuner(self, data)

    def handle_trial_end(self, data):
        if isinstance(data, dict) and data.get(TUNER_PART):  # on the default worker, in order
            data = {k: v for k, v in data.items() if k != TUNER_PART}
            held, finals = state(self)
            parameter_id = load(data["hyper_params"]).get("parameter_id")
            try:
                if (
                    data.get("event") == "SUCCEEDED"
                    and parameter_id is not None
                    and parameter_id not in finals
                    and not self.is_created_in_previous_exp(parameter_id)
                ):
                    held[parameter_id] = (time.monotonic(), data)  # its final is on its way
                    return None
                return tell_tuner(self, data)
            finally:  # after this end (a tuner may read this end's event: OptunaTuner)
                release(self, HOLD_S)
        worker = self.__dict__.get("assessor_worker")
        if threading.current_thread() is not worker or not isinstance(data, dict):
            return original(self, data)  # called in order already (in-process callers)
        original(_Without(self, "tuner"), data)
        if self.tuner is not None:
            self.default_command_queue.put((CommandType.TrialEnd, {**data, TUNER_PART: True}))

    def handle_final(self, data):
        try:
            return original_final(self, data)
        finally:
            held, finals = state(self)
            finals.add(data.get("parameter_id"))
            ended = held.pop(data.get("parameter_id"), None)
            if ended is not None:
                tell_tuner(self, ended[1])
            release(self, HOLD_S)

    handle_trial_end.nnisuite_ordered = True
    handle_trial_end.nni_original = original  # what it wraps (the tests put it back)
    handle_final.nni_original = original_final
    MsgDispatcher.handle_trial_end = handle_trial_end
    MsgDispatcher._handle_final_metric_data = handle_final
    ORDERED["on"] = True


def install() -> None:
    """Every fix above, in this process (each once)."""
    lazy_import.install()  # unless NNISUITE_LAZY_SCIPY=0
    quick_stop()
    no_retry_when_stopping()
    ordered_trial_end()


def main() -> None:
    """`python -m nni ARGS` (sys.argv carries ARGS) with the fixes in place."""
    install()
    runpy.run_module("nni", run_name="__main__", alter_sys=True)
