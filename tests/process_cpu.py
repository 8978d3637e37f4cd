"""Where the CPU of a command goes, by the kind of process: every process on the machine sampled
from /proc every 0.1 s while the command runs (NNI managers and other detached processes
included, which a parent's rusage misses), then summed by kind (the test workers, the NNI
managers, the runners, the warm launchers and the trials forked from them, ...).

    python -m tests.process_cpu -- make test              # the table at the end
    python -m tests.process_cpu --jsonl cpu.jsonl -- .venv/bin/python -m pytest -n 4

A process is named by its command line when first seen (a trial forked from a warm launcher
keeps the launcher's, so it is told apart by its parent). What ran for less than one interval
between two samples is missed: the table says how much of the machine's busy time (/proc/stat)
it attributes. Linux only; standard library only."""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")

KINDS = (  # (kind, test on the command line, test on the parent's): first match wins
    ("NNI managers (Node)", r"main\.js", None),
    (
        "pytest workers (collection, in-process tests)",
        r"exec\(eval\(sys\.stdin|pytest-xdist running",
        None,
    ),  # fmt: skip
    ("tuners' dispatchers", r"dispatcher", None),
    ("trials forked from warm launchers", r"launcher\.server", r"launcher\.server"),
    ("warm launchers (their imports)", r"launcher\.server", None),
    (
        "trial commands (a launcher's client, or the trial where none runs)",
        r"nnisuite\.launcher( |$)",
        None,
    ),  # fmt: skip
    (
        "trials run as processes of their own",
        r"nnisuite\.trials\.|tests[./]fixtures|\btrain\.py|\bt\.py",
        None,
    ),  # fmt: skip
    ("nnisuite run (runners)", r"study\.run|bin/nnisuite run", None),
    ("nnisuite repeat", r"study\.repeat|bin/nnisuite repeat", None),
    ("other nnisuite commands", r"-m nnisuite|bin/nnisuite ", None),
    ("NNI's own commands (nnictl, version query)", r"nnictl|collect_version_info|-m nni\b", None),
    ("Python one-liners (python -c)", r"python\S* (-\w+ )*-c ", None),
    ("pytest's controller, make", r"-m pytest|^make", None),
    ("browser, sshd, pip, git", r"chromium|sshd|\bssh |\bpip\b|\bgit\b", None),
)


def kind(cmd: str, parent: str) -> str:
    for name, own, parents in KINDS:
        if re.search(own, cmd) and (parents is None or re.search(parents, parent)):
            return name
    return "kernel threads, shells, processes seen only as they exited"


def busy_s() -> float:
    with open("/proc/stat") as f:
        user, nice, system = f.readline().split()[1:4]
    return (int(user) + int(nice) + int(system)) / TICK


def cmdline(pid) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def sample(seen: dict, first: bool, me: int) -> None:
    """seen[(pid, start)] = [command, parent's command, CPU at first sight, CPU now]."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        key = (int(name), int(fields[19]))
        if key in seen:
            seen[key][3] = max(seen[key][3], cpu)
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        seen[key] = [cmdline(name) or f"[{comm}]", cmdline(fields[1]), cpu if first else 0.0, cpu]


def table(seen: dict, busy: float) -> str:
    total, count = collections.Counter(), collections.Counter()
    for cmd, parent, before, after in seen.values():
        total[kind(cmd, parent)] += after - before
        count[kind(cmd, parent)] += 1
    lines = ["| processes | count | CPU s | share of busy |", "|---|---|---|---|"]
    for name, cpu in total.most_common():
        lines.append(f"| {name} | {count[name]} | {cpu:.1f} | {100 * cpu / busy:.1f} % |")
    attributed = sum(total.values())
    lines.append(f"| (not attributed: ran between two samples) | | {busy - attributed:.1f} | "
                 f"{100 * (busy - attributed) / busy:.1f} % |")  # fmt: skip
    lines.append(f"| **the machine busy (/proc/stat)** | | **{busy:.1f}** | 100 % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--interval", type=float, default=0.1, help="seconds between samples (0.1)")
    p.add_argument("--jsonl", help="also write one JSON line per process seen to this file")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("a command to run is required (after --)")
    seen: dict = {}
    me = os.getpid()
    start, began = busy_s(), time.monotonic()
    sample(seen, True, me)
    proc = subprocess.Popen(command)
    while proc.poll() is None:
        time.sleep(args.interval)
        sample(seen, False, me)
    busy, wall = busy_s() - start, time.monotonic() - began
    if args.jsonl:
        with open(args.jsonl, "w") as out:
            for cmd, parent, before, after in seen.values():
                row = {"cmd": cmd, "parent": parent, "cpu_s": round(after - before, 2)}
                out.write(json.dumps(row) + "\n")
    print(f"\n{' '.join(command)}: exit {proc.returncode}, {wall:.1f} s of wall, "
          f"{busy:.1f} s of CPU busy on {os.cpu_count()} cores\n")  # fmt: skip
    print(table(seen, busy))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
