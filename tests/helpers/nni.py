"""Real NNI managers for integration tests: a free port, an experiment folder under tmp_path,
and a stop that always runs, checked as `nnictl experiment list` checks; and the reader of the
metrics file NNI's trial SDK writes."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

from nnisuite.analysis.store import MANIFEST, running_manager
from nnisuite.config.experiment import apply_overrides, load_yaml, to_nni_config
from nnisuite.study.manager import free_port, watch
from tests.helpers.paths import REPO

NNICTL = [sys.executable, "-m", "nni.tools.nnictl.nnictl"]


def nnictl(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*NNICTL, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def running_experiment_ids() -> str:
    """One line per experiment still running by `nnictl experiment list`'s own rule: NNI's
    manifest (~/nni-experiments/.experiment) does not say STOPPED and its manager process is
    alive. Read here, not through nnictl: a listing costs 3.3 s of CPU (it imports NNI), and
    its text can show an experiment already stopped (NNI's manifest lock breaks after 2 s, so
    under load a manager of another test can write back a stale copy of the entry: CI saw one).
    The manifest is rewritten in place: a torn read is read again."""
    for _ in range(50):
        try:
            manifest = json.loads(MANIFEST.read_text())
            break
        except ValueError:
            time.sleep(0.1)
        except FileNotFoundError:
            return ""
    else:
        # NNI's managers rewrite the manifest in place under a lock that breaks after 2 s: under
        # load two writers can leave it torn for longer. Its answer is NNI's rule anyway: the
        # managers alive, read from the processes themselves
        return "\n".join(
            f"Id: {exp_id}  (manifest unreadable)  pid: {pid}"
            for exp_id, pid in sorted(live_managers().items())
        )
    return "\n".join(
        f"Id: {exp_id}  Name: {entry.get('experimentName')}  Status: {entry.get('status')}  "
        f"Port: {entry.get('port')}  pid: {entry.get('pid')}"
        for exp_id, entry in sorted(manifest.items())
        if isinstance(entry, dict) and running_manager(exp_id, entry) is not None
    )


def live_managers() -> dict[str, int]:
    """experiment id -> pid of every NNI manager process alive (nni_node/main.js)."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if any(part.endswith("nni_node/main.js") for part in cmd) and "--experiment-id" in cmd:
            i = cmd.index("--experiment-id")
            if i + 1 < len(cmd):
                found[cmd[i + 1]] = proc.info["pid"]
    return found


def experiment_config(yaml_path: str | Path, tmp_path: Path, **overrides):
    raw = apply_overrides(load_yaml(yaml_path), experiment_dir=str(tmp_path / "nni"), **overrides)
    return to_nni_config(raw, yaml_path)


@contextlib.contextmanager
def running_experiment(
    config, *, wait: bool = True, timeout_s: float = 300, on_poll=None, launcher: bool = True
):
    """Start `config` (an nni ExperimentConfig) on a free port, as the runners start one (a warm
    launcher its `python3 -m nnisuite.launcher` trials fork from, unless launcher=False; NNI's
    version query answered by nnisuite.nni_patches.interpreter; NNI's launcher talks to the manager
    once it listens); yield (experiment, port, status) once it has
    finished (or at once when wait=False); always stop it."""
    from nni.experiment import Experiment

    from nnisuite.launcher.warm import warm_launcher
    from nnisuite.nni_patches.interpreter import quick_version_query

    exp = Experiment(config)
    port = free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(warm_launcher(launcher, stream=io.StringIO()))
        stack.enter_context(quick_version_query())
        with _started(exp, port, config, wait, timeout_s, on_poll) as started:
            yield started
    # after the stop, outside `finally`: a failure here never hides the test's own error
    assert exp.id not in running_experiment_ids(), f"experiment {exp.id} still running"


@contextlib.contextmanager
def _started(exp, port, config, wait, timeout_s, on_poll):
    from nnisuite.study.manager import SessionLogs, owned_start

    logs = SessionLogs(Path(config.experiment_working_directory) / exp.id / "log")
    try:
        with owned_start(exp, port, logs):  # NNI's own check gives a slow manager 3 s
            exp.start(port)
        status = None
        if wait:
            status = watch(
                port,
                config.max_trial_number,
                poll_s=0.5,
                stream=io.StringIO(),
                timeout_s=timeout_s,
                on_poll=on_poll,
            ).status
        yield exp, port, status
    finally:
        exp.stop()


def read_nni_metrics(sys_dir: Path) -> list[dict]:
    """Parse the metrics file NNI's local trial channel writes (records `ME%06d<json>`)."""
    raw = (sys_dir / ".nni" / "metrics").read_bytes()
    records, pos = [], 0
    while pos < len(raw):
        assert raw[pos : pos + 2] == b"ME", f"bad metric record at byte {pos}"
        size = int(raw[pos + 2 : pos + 8])
        records.append(json.loads(raw[pos + 8 : pos + 8 + size]))
        pos += 8 + size
    return records


@contextlib.contextmanager
def viewing(root: Path, exp_id: str, *, owned: bool = True):
    """A real NNI manager in view mode (what `nnictl view` starts) over the experiment `exp_id`
    under `root` (a database written by tests.helpers.database, its config naming `root` as
    experimentWorkingDirectory): it runs nothing and serves the database over REST in about
    a second. owned=True starts it as the runners do (study.manager.owned_start: loopback);
    owned=False as NNI itself does, with this process's environment (NODE_OPTIONS...).
    Yields (experiment, port); always stopped."""
    from nni.experiment import Experiment
    from nni.experiment import launcher as nni_launcher

    from nnisuite.study.manager import SessionLogs, owned_start

    exp = Experiment(nni_launcher.get_stopped_experiment_config(exp_id, str(root)), id=exp_id)
    exp._action = "view"  # what Experiment.view() sets (NNI 3.0)
    port = free_port()
    try:
        logs = SessionLogs(root / exp_id / "log")
        with owned_start(exp, port, logs) if owned else contextlib.nullcontext():
            exp.start(port)
        yield exp, port
    finally:
        exp.stop()
    assert exp_id not in running_experiment_ids(), f"experiment {exp_id} still running"
