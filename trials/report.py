"""Where a trial's results go: NNI when it runs as an NNI trial, files when it runs standalone.

Both reporters enforce the contract: every value finite, at most one final report. Under NNI:
`report_intermediate_result` each epoch and exactly one `report_final_result` (NNI 3.0's TPE
dispatcher dies on a second final result for one parameter id: microsoft/nni#5689).
Standalone: a progress line per epoch, then `metrics.json`, `accuracy.png` and `loss.png` in
the output folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

from nnisuite.outputs import write_text

PARAMETER_TURN_TIMEOUT_S = 20.0


@contextlib.contextmanager
def parameter_turn(timeout_s: float = PARAMETER_TURN_TIMEOUT_S):
    """Ask NNI for parameters in the order the trials were created.

    NNI 3.0's local service answers parameter requests first come, first served
    (nni_node/training_service/v3/compat.js), while it records each trial with the parameters
    it queued for it. Two trials that start together can swap: the web UI then shows the wrong
    parameters, and TPE's dispatcher dies (KeyError in receive_trial_result) when a trial's
    end and its swapped partner's final result cross (microsoft/nni#5689's symptom). So trial
    N (NNI_TRIAL_SEQ_ID) waits until trial N-1 has its parameters, marked by a file beside the
    trial folders; a predecessor that died before asking is waited for `timeout_s` at most.
    """
    seq = os.environ.get("NNI_TRIAL_SEQ_ID", "")
    sys_dir = os.environ.get("NNI_SYS_DIR")
    if os.environ.get("NNI_PLATFORM") != "local" or not seq.isdigit() or not sys_dir:
        yield
        return
    markers = Path(sys_dir).parent / ".nnisuite-parameter-order"
    markers.mkdir(parents=True, exist_ok=True)
    seq = int(seq)
    deadline = time.monotonic() + timeout_s
    while seq > 0 and not (markers / str(seq - 1)).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield
    finally:
        (markers / str(seq)).touch()


def running_under_nni() -> bool:
    """NNI sets NNI_PLATFORM for its trials; `unittest` is its own standalone mode."""
    return os.environ.get("NNI_PLATFORM") not in (None, "", "unittest")


def check_finite(metrics: dict, what: str) -> dict:
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{what} {key!r} is {value}: non-finite numbers never reach NNI")
    return metrics


class Reporter:
    def __init__(self):
        self.history: list[dict] = []
        self.final_result: dict | None = None

    def intermediate(self, metrics: dict) -> None:
        self.history.append(dict(check_finite(metrics, "intermediate metric")))
        self._emit_intermediate(metrics)

    def final(self, metrics: dict) -> None:
        if self.final_result is not None:
            raise RuntimeError("a trial reports its final result exactly once")
        self.final_result = dict(check_finite(metrics, "final metric"))
        self._emit_final(self.final_result)

    def _emit_intermediate(self, metrics: dict) -> None: ...

    def _emit_final(self, metrics: dict) -> None: ...


class NNIReporter(Reporter):
    """Reports to NNI; `nni` is imported here, after the trial's environment is in place."""

    def __init__(self):
        super().__init__()
        import nni

        self.nni = nni

    def next_parameters(self) -> dict:
        with parameter_turn():
            return dict(self.nni.get_next_parameter() or {})

    def _emit_intermediate(self, metrics):
        self.nni.report_intermediate_result({k: v for k, v in metrics.items() if k != "epoch"})

    def _emit_final(self, metrics):
        self.nni.report_final_result(metrics)


class StandaloneReporter(Reporter):
    """Prints a line per epoch; writes metrics.json, accuracy.png and loss.png into `out`."""

    def __init__(self, out: str | Path, params: dict, stream=None):
        super().__init__()
        self.out = Path(out)
        self.params = params
        self.stream = stream or sys.stdout  # read when used, not at import

    def _emit_intermediate(self, m):
        print(
            f"epoch {m['epoch']:3d}  train_loss {m['train_loss']:.4f}  val_loss {m['val_loss']:.4f}"
            f"  val_acc {m['default']:.4f}  val_f1 {m['val_f1']:.4f}  {m['epoch_seconds']:.2f}s",
            file=self.stream,
            flush=True,
        )

    def _emit_final(self, metrics):
        from nnisuite.trials.plots import plot_history  # matplotlib only when files are written

        self.out.mkdir(parents=True, exist_ok=True)
        doc = {"params": self.params, "history": self.history, "final": metrics}
        write_text(self.out / "metrics.json", json.dumps(doc, indent=2) + "\n")
        plot_history(self.history, self.out)
        note = "  (diverged: stopped early)" if metrics.get("diverged") else ""
        print(
            f"final  val_acc {metrics['default']:.4f}  test_acc {metrics['test_accuracy']:.4f}"
            f"  test_f1 {metrics['test_f1']:.4f}  {metrics['train_seconds']:.1f}s{note}\n"
            f"wrote {self.out}/metrics.json, accuracy.png, loss.png",
            file=self.stream,
            flush=True,
        )


def default_out_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")
