"""experiments.nni_dispatcher's quick stop, on NNI 3.0's own MsgDispatcher in this process (its
unittest channel): setting `stopping` ends both command workers at once, not after NNI's 3 s
queue timeout; the command being handled is finished and the rest dropped, as NNI's own loop
does (`_worker_fast_exit_on_terminate`)."""

from __future__ import annotations

import time

from nni.runtime.msg_dispatcher import MsgDispatcher
from nni.runtime.tuner_command_channel import CommandType
from nni.tuner import Tuner

from experiments.nni_dispatcher import quick_stop


class Recording(Tuner):
    def __init__(self):
        self.spaces = []

    def update_search_space(self, search_space):
        time.sleep(0.2)  # still busy when the stop comes
        self.spaces.append(search_space)


def test_stopping_ends_the_workers_at_once_as_nni_would_end_them():
    quick_stop()
    tuner = Recording()
    dispatcher = MsgDispatcher("ws://_unittest_", tuner)
    dispatcher.default_worker.start()
    dispatcher.assessor_worker.start()
    time.sleep(0.3)  # both workers are waiting in NNI's queue.get(timeout=3)
    for i in range(2):
        dispatcher.enqueue_command(CommandType.UpdateSearchSpace, {"x": i})
    began = time.monotonic()
    dispatcher.stopping = True
    dispatcher.default_worker.join(timeout=10)
    dispatcher.assessor_worker.join(timeout=10)
    took = time.monotonic() - began
    assert not dispatcher.default_worker.is_alive() and not dispatcher.assessor_worker.is_alive()
    assert tuner.spaces == [{"x": 0}]  # the one in hand finished; NNI drops the rest
    assert took < 1.5, f"{took:.2f} s: NNI's own wait is up to 3 s"  # 0.2 s of handling
    assert not dispatcher.worker_exceptions
