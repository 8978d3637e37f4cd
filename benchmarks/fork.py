"""What a trial forked from the warm launcher costs in CPU, with and without the launcher's
gc.freeze before each fork (launcher/server.py, GC_FREEZE): the same trials run through the
launcher client, the launcher started alternately with NNISUITE_LAUNCHER_GC_FREEZE=1 and =0,
each trial's CPU read from the launcher's reaped children (/proc/PID/stat: cutime + cstime).

    python -m nnisuite.benchmarks.fork --out runs/fork                # 3 rounds x 5 trials each way
    python -m nnisuite.benchmarks.fork --out DIR --rounds 1 --trials 1       # harness check

The trial is nnisuite's MLP on the embedded digits data (2 epochs, one thread). Writes
DIR/fork.json and DIR/fork.md: CPU seconds per trial each way (per round and over all), the
saving per trial, and the machine. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnisuite.benchmarks.machine import cpu_name
from nnisuite.benchmarks.report import out_folder, write_report
from nnisuite.flags import Parser
from nnisuite.launcher import CLIENT_MODULE, module_command
from nnisuite.launcher.server import GC_FREEZE
from nnisuite.launcher.warm import SOCKET, start_server, stop_server, wait_ready
from nnisuite.outputs import folder_flag
from nnisuite.trials.params import positive_int

TRIAL = ["nnisuite.trials.mlp", "--dataset", "digits", "--epochs", "2", "--threads", "1"]


def children_cpu_s(pid: int) -> float:
    """CPU seconds of the children `pid` has reaped (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def one_way(freeze: bool, trials: int, work: Path) -> list[float]:
    """CPU seconds of each of `trials` trials forked from a launcher started this way."""
    proc, sock = start_server(env=os.environ | {GC_FREEZE: "1" if freeze else "0"})
    try:
        if not wait_ready(proc, sock):
            raise SystemExit("the launcher did not start")
        costs = []
        for i in range(trials):
            before = children_cpu_s(proc.pid)
            subprocess.run(
                module_command(CLIENT_MODULE, *TRIAL, "--out", str(work / f"t{i}")),
                env=os.environ | {SOCKET: str(sock)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=600,
            )
            deadline = time.monotonic() + 10  # the launcher reaps within its 0.05 s poll
            while children_cpu_s(proc.pid) == before and time.monotonic() < deadline:
                time.sleep(0.02)
            costs.append(children_cpu_s(proc.pid) - before)
        return costs
    finally:
        stop_server(proc, sock)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.fork",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for fork.json and fork.md"
    )
    p.add_argument("--rounds", type=positive_int, default=3, help="rounds (default 3)")
    p.add_argument(
        "--trials", type=positive_int, default=5, help="trials each way per round (default 5)"
    )
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out_folder(parser, args.out)
    ways: dict[str, list[list[float]]] = {"frozen": [], "not frozen": []}
    with tempfile.TemporaryDirectory(prefix="nnisuite-fork-bench-") as tmp:
        for _ in range(args.rounds):  # alternating: the machine's drift hits both ways
            for way, freeze in (("not frozen", False), ("frozen", True)):
                ways[way].append(one_way(freeze, args.trials, Path(tmp)))
    mean = {way: statistics.fmean(c for r in rounds for c in r) for way, rounds in ways.items()}
    result = {
        "machine": cpu_name(),
        "trial": " ".join(TRIAL),
        "cpu_s_per_trial": {
            way: [statistics.fmean(r) for r in rounds] for way, rounds in ways.items()
        },
        "mean_cpu_s": mean,
        "saving_per_trial_s": mean["not frozen"] - mean["frozen"],
    }
    rows = ["| launcher | CPU s per trial, each round | mean |", "|---|---|---|"]
    for way, rounds in result["cpu_s_per_trial"].items():
        rows.append(f"| {way} | {', '.join(f'{r:.2f}' for r in rounds)} | {mean[way]:.2f} |")
    command = (
        f"`python -m nnisuite.benchmarks.fork --out {args.out} --rounds {args.rounds} "
        f"--trials {args.trials}`. Trial: `{result['trial']}`."
    )
    last = f"Saving: {result['saving_per_trial_s']:.2f} s of CPU per trial."
    title = "CPU of a forked trial, gc.freeze or not"
    write_report(out, "fork", result, title, command, rows, last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
