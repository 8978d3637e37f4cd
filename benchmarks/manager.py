"""How far one NNI manager goes: many trivial trials (benchmarks/trivial_trial.py: parameters in,
a final out, no training) through NNI 3.0's local training service at several concurrencies,
so that the manager is what is measured.

    python -m nnisuite.benchmarks.manager --out runs/manager              # 1,000 trials at 1, 8, 32
    python -m nnisuite.benchmarks.manager --out DIR --trials 200 --concurrency 8
    python -m nnisuite.benchmarks.manager --out DIR --quick                  # harness check (tests)
    python -m nnisuite.benchmarks.manager --out DIR --handover events poll   # both, side by side

Each concurrency is one experiment (Random tuner, one uniform parameter), started as every
nnisuite manager is (loopback, the warm launcher trials fork from, NNI's version query
answered). Measured, per concurrency: wall time from the first trial's start to the last
trial's end and trials per minute; the hand-over gap (a trial's start minus the latest end
before it: the time a freed slot stays empty; median and 90th percentile); NNI's recorded trial
duration (median); the manager process's CPU seconds and peak memory (psutil, every 0.5 s);
the database's size; and, with every trial finished and the manager still up, how long the
REST endpoints the web UI reads for its trial list take to answer (`trial-jobs`,
`metric-data`; median of 5 calls). `--handover` runs each concurrency with the manager woken
by its events (nnisuite's default, nni_patches/handover.py) and/or with NNI's 0.5 s polling,
one after the other. Writes DIR/manager.json and DIR/manager.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from nnisuite.benchmarks.machine import cpu_name
from nnisuite.benchmarks.report import out_folder
from nnisuite.flags import Parser
from nnisuite.outputs import folder_flag
from nnisuite.trials.params import positive_int

ENDPOINTS = ("trial-jobs", "metric-data")


def experiment_config(trials: int, concurrency: int, workdir: Path):
    from nnisuite import DATA
    from nnisuite.config.experiment import to_nni_config
    from nnisuite.launcher import trial_command

    raw = {
        "experimentName": f"manager-c{concurrency}",
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": trial_command("nnisuite.benchmarks.trivial_trial"),
        "trialCodeDirectory": str(DATA),
        "trialConcurrency": concurrency,
        "maxTrialNumber": trials,
        "tuner": {"name": "Random", "classArgs": {"seed": 0}},
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(workdir),
    }
    return to_nni_config(raw, workdir / "manager.yaml")


class Sampler:
    """The manager process's CPU seconds and peak memory, sampled in a thread."""

    def __init__(self, proc, every_s: float = 0.5):
        import psutil

        self.proc = psutil.Process(proc.pid)
        self.cpu_s, self.peak_mb, self.every_s = 0.0, 0.0, every_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import psutil

        while not self.done.is_set():
            try:
                times = self.proc.cpu_times()
                self.cpu_s = times.user + times.system
                self.peak_mb = max(self.peak_mb, self.proc.memory_info().rss / 2**20)
            except psutil.Error:
                return
            self.done.wait(self.every_s)

    def stop(self):
        self.done.set()
        self.thread.join()


def answer_ms(url: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def gaps(trials) -> list[float]:
    """For each trial after the first `concurrency`: its start minus the latest end before it."""
    ends = sorted(t.end_time for t in trials if t.end_time is not None)
    out = []
    for t in sorted(trials, key=lambda t: t.start_time or 0):
        before = [e for e in ends if t.start_time is not None and e <= t.start_time]
        if before:
            out.append(t.start_time - before[-1])
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def handover_way(way: str):
    """Managers started in the block hand over `way` ("events" or "poll")."""
    from nnisuite.nni_patches.handover import SWITCH

    before = os.environ.get(SWITCH)
    if way == "poll":
        os.environ[SWITCH] = "poll"
    else:
        os.environ.pop(SWITCH, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SWITCH, None)
        else:
            os.environ[SWITCH] = before


def measure(trials: int, concurrency: int, workdir: Path, way: str = "events") -> dict:
    from nni.experiment import Experiment

    from nnisuite.analysis.store import load_experiment
    from nnisuite.launcher.warm import warm_launcher
    from nnisuite.nni_patches.interpreter import quick_version_query
    from nnisuite.study.manager import free_port, owned_start, watch

    config = experiment_config(trials, concurrency, workdir)
    with (
        handover_way(way),
        warm_launcher(stream=io.StringIO(), preload=()),
        quick_version_query(),
    ):
        exp = Experiment(config)
        port = free_port()
        try:
            with owned_start(exp, port, None):
                exp.start(port)
            sampler = Sampler(exp._proc)
            status = watch(
                port, trials, poll_s=1.0, stream=io.StringIO(), timeout_s=4 * 3600
            ).status
            api = f"http://127.0.0.1:{port}/api/v1/nni"
            rest = {name: answer_ms(f"{api}/{name}") for name in ENDPOINTS}
            result = load_experiment(f"http://127.0.0.1:{port}")
            sampler.stop()
        finally:
            exp.stop()
    ran = [t for t in result.trials if t.start_time is not None and t.end_time is not None]
    first = min(t.start_time for t in ran)
    last = max(t.end_time for t in ran)
    handover = gaps(ran)
    db = workdir / exp.id / "db" / "nni.sqlite"
    return {
        "concurrency": concurrency,
        "handover": way,
        "trials": len(ran),
        "succeeded": sum(t.status == "SUCCEEDED" for t in ran),
        "status": status,
        "wall_s": round(last - first, 2),  # a quick run lasts under a second
        "trials_per_min": round(len(ran) / (last - first) * 60, 1),
        "gap_median_s": round(statistics.median(handover), 2) if handover else None,
        "gap_p90_s": round(percentile(handover, 0.9), 2) if handover else None,
        "duration_median_s": round(statistics.median(t.duration_s for t in ran), 2),
        "manager_cpu_s": round(sampler.cpu_s, 1),
        "manager_peak_mb": round(sampler.peak_mb),
        "database_mb": round(db.stat().st_size / 2**20, 2),
        **{f"rest_{name}_ms": round(ms, 1) for name, ms in rest.items()},
    }


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [
        f"# One NNI manager at {rows[0]['trials'] if rows else 0} trivial trials",
        "",
        f"{result['machine']}; NNI {result['nni']}, local training service, trials forked "
        "from the warm launcher; `python -m nnisuite.benchmarks.manager` "
        + " ".join(result["argv"]),
        "",
        "| concurrency | hand-over | trials | wall s | trials/min | hand-over gap median / p90 s | "
        "trial duration median s | manager CPU s | manager peak MB | database MB | "
        "REST trial-jobs ms | REST metric-data ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['concurrency']} | {r.get('handover', 'events')} | "
            f"{r['succeeded']}/{r['trials']} | {r['wall_s']} | "
            f"{r['trials_per_min']} | {r['gap_median_s']} / {r['gap_p90_s']} | "
            f"{r['duration_median_s']} | {r['manager_cpu_s']} | {r['manager_peak_mb']} | "
            f"{r['database_mb']} | {r['rest_trial-jobs_ms']} | {r['rest_metric-data_ms']} |"
        )
    return "\n".join(lines) + "\n"


def run(
    out: Path, trials: int, concurrencies: list[int], argv: list[str], ways=("events",)
) -> dict:
    import nni

    rows = []
    for concurrency in concurrencies:
        for way in ways:
            with tempfile.TemporaryDirectory(prefix="nnisuite-manager-") as workdir:
                row = measure(trials, concurrency, Path(workdir), way)
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {"machine": cpu_name(), "nni": nni.__version__, "argv": argv, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "manager.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "manager.md").write_text(markdown(result))
    return result


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.manager",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for manager.json and manager.md"
    )
    p.add_argument("--trials", type=positive_int, default=1000, help="trials per run (1000)")
    p.add_argument(
        "--concurrency",
        type=positive_int,
        nargs="+",
        default=[1, 8, 32],
        help="trialConcurrency of each run (1 8 32)",
    )
    p.add_argument(
        "--handover",
        nargs="+",
        choices=["events", "poll"],
        default=["events"],
        help="how the manager hands a freed slot over: events (nnisuite's default), poll "
        "(NNI's 0.5 s polling, NNISUITE_HANDOVER=poll); both: side by side (events)",
    )
    p.add_argument(
        "--quick", action="store_true", help="12 trials at concurrency 4 (harness check)"
    )
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    out_folder(parser, args.out)
    trials, concurrencies = (12, [4]) if args.quick else (args.trials, args.concurrency)
    result = run(Path(args.out), trials, concurrencies, argv, args.handover)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
