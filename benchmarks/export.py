"""The exporter at scale: `python -m nnisuite.analysis.export` on synthetic experiments of 20 to
20,000 trials (NNI's own schema, written by nnisuite.benchmarks.nni_db, no manager), wall time and
peak memory.

    python -m nnisuite.benchmarks.export --out runs/export-bench     # writes export.md, export.json
    python -m nnisuite.benchmarks.export --out DIR --sizes 20 100 --repeats 1

Each size is exported by a fresh `python -m nnisuite.analysis.export` process (imports included, as
a user runs it), timed `--repeats` times; the table shows the median wall time and the largest
peak resident memory of the process and its worker (getrusage of the children). Targets: 5,000
trials x 20 intermediates in <= 10 s and <= 300 MB; 20 trials in <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnisuite.benchmarks.machine import cpu_name
from nnisuite.benchmarks.nni_db import write_experiment
from nnisuite.benchmarks.report import out_folder
from nnisuite.flags import Parser
from nnisuite.launcher import module_command
from nnisuite.outputs import folder_flag
from nnisuite.trials.params import positive_int

SIZES = (20, 100, 1_000, 5_000, 20_000)
TARGETS = {20: (2.0, None), 5_000: (10.0, 300.0)}  # trials -> (seconds, MB)


def export_once(root: Path, exp_id: str, out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MB) of one `python -m nnisuite.analysis.export` run; call it in a fresh
    process (measure_isolated), whose only child is that export and its worker."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            *module_command("nnisuite.analysis.export"),
            exp_id,
            "--experiment-dir",
            str(root),
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(sizes, intermediates: int, repeats: int, extra: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnisuite-export-bench-") as tmp:
        root = Path(tmp)
        for n in sorted(sizes):
            exp_id = f"synthetic{n}"
            t0 = time.perf_counter()
            write_experiment(root, exp_id, trials=n, intermediates=intermediates)
            built = time.perf_counter() - t0
            walls, peaks = [], []
            for r in range(repeats):
                wall, peak = measure_isolated(root, exp_id, root / f"out{n}-{r}", extra)
                walls.append(wall)
                peaks.append(peak)
            row = {
                "trials": n,
                "intermediates": intermediates,
                "wall_s": statistics.median(walls),
                "wall_s_all": walls,
                "peak_mb": max(peaks),
                "db_mb": (root / exp_id / "db" / "nni.sqlite").stat().st_size / 2**20,
                "build_s": built,
            }
            print(
                f"{n:>6} trials: {row['wall_s']:.2f} s, {row['peak_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    return sorted(rows, key=lambda r: r["trials"])


def measure_isolated(root: Path, exp_id: str, out: Path, extra: list[str]) -> tuple[float, float]:
    """One export in a fresh helper process, so that its peak memory is its own."""
    code = (
        "import json, sys; from pathlib import Path; "
        "from nnisuite.benchmarks.export import export_once; "
        f"print(json.dumps(export_once(Path({str(root)!r}), {exp_id!r}, Path({str(out)!r}), "
        f"{extra!r})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, peak = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, peak


def markdown(rows: list[dict], note: str) -> str:
    lines = [
        note,
        "",
        "| trials | `python -m nnisuite.analysis.export` wall | peak memory | target |",
        "|---|---|---|---|",
    ]
    for r in rows:
        target = TARGETS.get(r["trials"])
        goal = ""
        if target:
            s, mb = target
            ok = r["wall_s"] <= s and (mb is None or r["peak_mb"] <= mb)
            goal = (
                f"<= {s:.0f} s"
                + (f", <= {mb:.0f} MB" if mb else "")
                + (" (met)" if ok else " (NOT met)")
            )
        lines.append(f"| {r['trials']:,} | {r['wall_s']:.2f} s | {r['peak_mb']:.0f} MB | {goal} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for export.md and export.json"
    )
    p.add_argument(
        "--sizes",
        type=positive_int,
        nargs="+",
        default=list(SIZES),
        help="trial counts (20 ... 20000)",
    )
    p.add_argument("--intermediates", type=positive_int, default=20, help="per trial (default 20)")
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="exports per size; the median counts"
    )
    p.add_argument("--serial", action="store_true", help="pass --serial to the exporter")
    p.add_argument(
        "--no-optuna", action="store_true", help="pass --no-optuna to the exporter (no Optuna part)"
    )
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out_folder(parser, args.out)
    extra = ["--serial"] * args.serial + ["--no-optuna"] * args.no_optuna
    rows = measure(args.sizes, args.intermediates, args.repeats, extra)
    note = (
        f"`python -m nnisuite.analysis.export {' '.join(extra)}`".replace(" `", "`")
        + f" on synthetic NNI experiments ({args.intermediates} intermediates per trial), "
        f"median of {args.repeats}; {cpu_name()}."
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "export.json").write_text(json.dumps({"rows": rows, "note": note}, indent=2) + "\n")
    text = markdown(rows, note)
    (out / "export.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
