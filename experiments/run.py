"""Run a whole study with one command: validate, start on NNI, show progress, export, stop.

    python -m experiments.run experiments/mlp_tpe_digits.yaml          # what `make demo` runs
    python -m experiments.run experiments/mlp_tpe_fashion.yaml --max-trials 4 --epochs 5

Overrides of the YAML: --port, --experiment-dir, --max-trials, --concurrency, --dataset,
--epochs. The experiment is validated first (exit 2 on problems), runs on NNI's own manager
(web UI at http://127.0.0.1:PORT while it runs), and is exported with analysis.export into
--out (default runs/<name>-<id>). Ctrl-C stops the experiment cleanly and still exports.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import time
from pathlib import Path

from experiments.config import ConfigError, apply_overrides, load_yaml, to_nni_config
from experiments.validate import validate
from trials.warm import add_launcher_flag, warm_launcher

TERMINAL = {"DONE", "STOPPED", "ERROR"}
ACTIVE = {"WAITING", "RUNNING", "UNKNOWN"}


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def progress_line(trials, max_trials) -> tuple[str, float | None]:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    finals = [
        (t.final["default"], t.trial_id)
        for t in trials
        if isinstance(t.final.get("default"), (int, float))
    ]
    best = max(finals) if finals else None
    done = sum(v for k, v in counts.items() if k not in ACTIVE)
    parts = [f"trials {done}/{max_trials or '?'} done", f"{counts.get('SUCCEEDED', 0)} succeeded"]
    for status in ("FAILED", "EARLY_STOPPED", "USER_CANCELED"):
        if counts.get(status):
            parts.append(f"{counts[status]} {status.lower().replace('_', '-')}")
    parts.append(f"{counts.get('RUNNING', 0)} running")
    if counts.get("WAITING"):
        parts.append(f"{counts['WAITING']} waiting")
    parts.append(f"best {best[0]:.4f} ({best[1]})" if best else "best -")
    return ", ".join(parts), best[0] if best else None


def experiment_status(port: int) -> str:
    from analysis.store import get_json

    return get_json(f"http://127.0.0.1:{port}/api/v1/nni/check-status").get("status", "?")


def watch(
    port: int,
    max_trials: int | None,
    poll_s: float = 1.0,
    stream=sys.stdout,
    timeout_s: float | None = None,
    on_poll=None,
) -> str:
    """Print progress until the experiment ends; returns NNI's final status ("TIMEOUT" when
    `timeout_s` passes first). `on_poll(trials)` is called after each poll."""
    from analysis.store import ExportError, read_rest

    last, started = None, time.monotonic()
    while timeout_s is None or time.monotonic() - started < timeout_s:
        try:
            status = experiment_status(port)
            trials = read_rest(f"http://127.0.0.1:{port}").trials
        except ExportError:
            status, trials = "UNREACHABLE", []
        line, _ = progress_line(trials, max_trials)
        if on_poll:
            on_poll(trials)
        if line != last:
            print(f"[{time.monotonic() - started:6.1f}s] {line}", file=stream, flush=True)
            last = line
        no_more = status == "NO_MORE_TRIAL" and not any(t.status in ACTIVE for t in trials)
        if status in TERMINAL or no_more or status == "UNREACHABLE":
            return status
        time.sleep(poll_s)
    return "TIMEOUT"


@contextlib.contextmanager
def sigterm_as_interrupt():
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args) -> int:
    try:
        raw = load_yaml(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    raw = apply_overrides(
        raw,
        max_trials=args.max_trials,
        concurrency=args.concurrency,
        experiment_dir=args.experiment_dir,
        dataset=args.dataset,
        epochs=args.epochs,
    )
    problems = validate(args.config, raw)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    from nni.experiment import Experiment

    from analysis.export import export_experiment

    config = to_nni_config(raw, args.config)
    port = args.port if args.port is not None else (8080 if port_is_free(8080) else free_port())
    exp = Experiment(config)
    out = Path(args.out or f"runs/{config.experiment_name or 'experiment'}-{exp.id}")
    print(
        f"experiment {exp.id}: {config.experiment_name}; web UI http://127.0.0.1:{port} "
        "while it runs; Ctrl-C stops it",
        flush=True,
    )
    interrupted = False
    with sigterm_as_interrupt(), warm_launcher(not args.no_launcher):
        try:
            exp.start(port)
            status = watch(port, config.max_trial_number)
            print(f"experiment {exp.id} ended: {status}", flush=True)
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: stopping the experiment...", file=sys.stderr, flush=True)
        finally:
            exp.stop()
    exp_dir = Path(config.experiment_working_directory).expanduser()
    result = export_experiment(exp.id, out, exp_dir)
    print(result.summary)
    print(f"tables and plots: {out}/ (summary.md, trials.csv, intermediate.csv, *.png)")
    print(f"web UI again: nnictl view {exp.id} --experiment_dir {exp_dir} --port {port}")
    return 130 if interrupted else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="experiment YAML (experiments/*.yaml)")
    p.add_argument("--port", type=int, help="web UI / REST port (default 8080, else a free one)")
    p.add_argument("--experiment-dir", help="NNI experiment folder (default ~/nni-experiments)")
    p.add_argument("--max-trials", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--dataset")
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", help="export folder (default runs/<name>-<id>)")
    add_launcher_flag(p)
    return p


def main(argv=None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
