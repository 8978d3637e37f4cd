"""nnisuite.nni_patches.dispatcher's fixes, on NNI 3.0's own MsgDispatcher in this process (its
unittest channel), both workers running as in NNI's dispatcher process:
- quick stop: setting `stopping` ends both command workers at once, not after NNI's 3 s queue
  timeout; the command being handled is finished and the rest dropped, as NNI's own loop does
  (`_worker_fast_exit_on_terminate`); once stopping, a reply the manager can no longer take is
  dropped, not retried for 10 s;
- ordered trial end: a trial's end that arrives while the default worker is busy no longer
  overtakes its final result (NNI's TPE then dies of a KeyError), nor does one that NNI's
  manager sends before the final (held for the tuner until the final, at most HOLD_S)."""

from __future__ import annotations

import json
import time

import pytest
from nni.algorithms.hpo.tpe_tuner import TpeTuner
from nni.runtime.msg_dispatcher import MsgDispatcher
from nni.runtime.tuner_command_channel import CommandType
from nni.tuner import Tuner

from nnisuite.nni_patches import dispatcher as patch
from nnisuite.nni_patches.dispatcher import no_retry_when_stopping, ordered_trial_end, quick_stop


@pytest.fixture(autouse=True)
def _not_stopping():
    """STOPPING is the process's (a dispatcher process runs one dispatcher): each test here
    starts, and leaves the test process, with no dispatcher stopping."""
    patch.STOPPING.clear()
    yield
    patch.STOPPING.clear()


class Recording(Tuner):
    def __init__(self):
        self.spaces = []

    def update_search_space(self, search_space):
        time.sleep(0.2)  # still busy when the stop comes
        self.spaces.append(search_space)


def test_stopping_ends_the_workers_at_once_as_nni_would_end_them():
    quick_stop()
    tuner = Recording()
    dispatcher, _ = started(tuner)
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


def test_once_stopping_a_reply_the_gone_manager_cannot_take_is_dropped_not_retried(
    caplog, monkeypatch
):
    """NNI's WebSocket channel retries a failed send 5 times over 10 s (logging each); once the
    dispatcher stops (its manager asked, and closed its end), the first failure drops the
    command with one warning. Before the stop, NNI's retries stay (a manager may come back)."""
    from nni.runtime.command_channel.websocket.channel import WsChannelClient

    from nnisuite.study.manager import free_port

    monkeypatch.setattr(WsChannelClient, "send", WsChannelClient.send)  # put back afterwards
    no_retry_when_stopping()
    quick_stop()
    dispatcher, _ = started(Recording())
    dispatcher.stopping = True  # as NNI's run() sets it on the manager's Terminate
    dispatcher.default_worker.join(timeout=10)
    dispatcher.assessor_worker.join(timeout=10)
    assert patch.STOPPING.is_set()
    gone = WsChannelClient(f"ws://127.0.0.1:{free_port()}/tuner")  # nobody listens there
    caplog.set_level("DEBUG")
    gone.send({"type": "TR", "content": "the next trial's parameters"})
    retries = [r for r in caplog.records if "Retry in" in r.getMessage()]
    dropped = [r for r in caplog.records if "a command not sent" in r.getMessage()]
    assert not retries and len(dropped) == 1, [r.getMessage() for r in caplog.records]


def test_the_dispatchers_start_installs_every_fix(as_shipped, monkeypatch):
    """What `dispatcher.main` (the dispatcher process NNI's manager starts) puts in place (and
    this test process has as before, afterwards)."""
    from nni.runtime import msg_dispatcher_base
    from nni.runtime.command_channel.websocket.channel import WsChannelClient

    monkeypatch.setattr(WsChannelClient, "send", WsChannelClient.send)  # put back afterwards
    patch.install()
    assert WsChannelClient.send.nnisuite_no_retry
    assert msg_dispatcher_base.MsgDispatcherBase.nnisuite_quick_stop
    assert MsgDispatcher.handle_trial_end.nnisuite_ordered


class SlowTPE(TpeTuner):
    """NNI's TPE choosing its parameters slowly, as on a loaded machine."""

    def generate_parameters(self, *args, **kwargs):
        time.sleep(0.6)
        return super().generate_parameters(*args, **kwargs)


def started(tuner) -> tuple[MsgDispatcher, list]:
    """NNI's MsgDispatcher on its unittest channel, both workers running; what it sends to the
    manager, recorded."""
    dispatcher = MsgDispatcher("ws://_unittest_", tuner)
    sent: list = []
    dispatcher.send = lambda kind, data: sent.append((kind, data))
    dispatcher.default_worker.start()
    dispatcher.assessor_worker.start()
    return dispatcher, sent


def new_trials(dispatcher, sent: list, count: int, deadline: float) -> list[dict]:
    """The first `count` trials the dispatcher has created (waiting for them)."""
    while sum(kind == CommandType.NewTrialJob for kind, _ in sent) < count:
        assert time.monotonic() < deadline and not dispatcher.worker_exceptions, sent
        time.sleep(0.05)
    return [json.loads(d) for k, d in sent if k == CommandType.NewTrialJob]


def stop(dispatcher) -> None:
    dispatcher.stopping = True
    dispatcher.default_worker.join(timeout=10)
    dispatcher.assessor_worker.join(timeout=10)


@pytest.fixture
def as_shipped():
    """MsgDispatcher's handle_trial_end as NNI ships it, put back afterwards."""
    names = ("handle_trial_end", "_handle_final_metric_data")
    saved, on = {n: getattr(MsgDispatcher, n) for n in names}, dict(patch.ORDERED)
    for name in names:
        while hasattr(getattr(MsgDispatcher, name), "nni_original"):
            setattr(MsgDispatcher, name, getattr(MsgDispatcher, name).nni_original)
    patch.ORDERED["on"] = False
    yield
    for name, method in saved.items():
        setattr(MsgDispatcher, name, method)
    patch.ORDERED.update(on)


def end_overtakes_final(fixed: bool, end_first: bool = False) -> tuple[SlowTPE, list]:
    """A trial's final result, then its end (end_first: its end, then its final, as NNI's
    manager sends them when the trial exits right after reporting), all received while the
    default worker is busy choosing the next trial's parameters. (tuner, the workers'
    exceptions)."""
    quick_stop()
    if fixed:
        ordered_trial_end()
    tuner = SlowTPE(optimize_mode="maximize", seed=0)
    dispatcher, sent = started(tuner)
    try:
        dispatcher.enqueue_command(
            CommandType.Initialize, {"x": {"_type": "uniform", "_value": [0, 1]}}
        )
        dispatcher.enqueue_command(CommandType.RequestTrialJobs, 1)
        deadline = time.monotonic() + 20
        (trial,) = new_trials(dispatcher, sent, 1, deadline)
        dispatcher.enqueue_command(CommandType.RequestTrialJobs, 1)  # the default worker: busy
        time.sleep(0.1)
        final = {"parameter_id": trial["parameter_id"], "trial_job_id": "A", "type": "FINAL"}
        final = (CommandType.ReportMetricData, final | {"sequence": 0, "value": json.dumps(0.75)})
        end = {"parameter_id": trial["parameter_id"], "parameter_source": "algorithm"}
        end = (
            CommandType.TrialEnd,
            {"trial_job_id": "A", "event": "SUCCEEDED", "hyper_params": json.dumps(end)},
        )
        for command in (end, final) if end_first else (final, end):
            dispatcher.enqueue_command(*command)
            time.sleep(0.05)  # in this order to the dispatcher
        new_trials(dispatcher, sent, 2, deadline)
        time.sleep(0.3)  # the final and the end handled
    finally:
        stop(dispatcher)
    return tuner, dispatcher.worker_exceptions


def test_a_trials_end_never_overtakes_its_final(as_shipped):
    tuner, errors = end_overtakes_final(fixed=True)
    assert not errors
    assert [r.loss for r in tuner._history[("x",)]] == [-0.75]  # TPE has the result
    assert len(tuner._running_params) == 1  # and the end: only the second trial runs


def test_as_nni_ships_it_the_end_overtakes_the_final_and_tpe_dies(as_shipped):
    """What the fix is for: without it the same commands kill NNI's TPE worker."""
    _, errors = end_overtakes_final(fixed=False)
    assert [type(e) for e in errors] == [KeyError], errors


def test_an_end_sent_before_its_final_waits_for_it(as_shipped):
    """NNI's manager sent a trial's end before its final (the trial exited right after
    reporting): the tuner hears the end once the final is handled."""
    tuner, errors = end_overtakes_final(fixed=True, end_first=True)
    assert not errors
    assert [r.loss for r in tuner._history[("x",)]] == [-0.75]
    assert len(tuner._running_params) == 1


def test_as_nni_ships_it_an_end_sent_before_its_final_kills_tpe(as_shipped):
    _, errors = end_overtakes_final(fixed=False, end_first=True)
    assert [type(e) for e in errors] == [KeyError], errors


def test_a_success_without_a_final_is_ended_after_the_hold(as_shipped, monkeypatch):
    """A trial that succeeded without reporting a final: its end reaches the tuner once
    HOLD_S has passed, at the next end or final the dispatcher handles."""
    monkeypatch.setattr(patch, "HOLD_S", 0.3)
    quick_stop()
    ordered_trial_end()
    tuner = TpeTuner(optimize_mode="maximize", seed=0)
    dispatcher, sent = started(tuner)

    def end(trial_id: str, parameter_id: int, event: str = "SUCCEEDED"):
        params = json.dumps({"parameter_id": parameter_id, "parameter_source": "algorithm"})
        dispatcher.enqueue_command(
            CommandType.TrialEnd,
            {"trial_job_id": trial_id, "event": event, "hyper_params": params},
        )

    def settle():
        time.sleep(0.2)
        assert not dispatcher.worker_exceptions

    try:
        dispatcher.enqueue_command(
            CommandType.Initialize, {"x": {"_type": "uniform", "_value": [0, 1]}}
        )
        dispatcher.enqueue_command(CommandType.RequestTrialJobs, 2)
        trials = new_trials(dispatcher, sent, 2, time.monotonic() + 20)
        first, second = (trial["parameter_id"] for trial in trials)
        end("A", first)
        settle()
        assert first in tuner._running_params  # held: its final may be on its way
        time.sleep(0.3)
        end("B", second, "FAILED")  # told at once, and the held end is older than HOLD_S
        settle()
        assert tuner._running_params == {}
    finally:
        stop(dispatcher)
