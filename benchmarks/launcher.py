"""What the warm launcher saves per trial on a user's own script (`python3 train.py`), measured
as NNI sees it: the same study run twice through nnisuite.study.run, `--launcher` and
`--no-launcher`, each trial's duration read from NNI's database (start to end event).

    python -m nnisuite.benchmarks.launcher --out runs/launcher            # 8 trials each way
    python -m nnisuite.benchmarks.launcher --out DIR --trials 3 --quick   # harness check (tests)

The script is a typical small trial: it imports torch and nni, reads two parameters, trains a
one-hidden-layer network on random data for a few steps and reports five intermediates and a
final. Writes DIR/launcher.json and DIR/launcher.md: per-trial duration (mean, median, spread)
each way, the saving per trial, and the machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from nnisuite.benchmarks.machine import cpu_name
from nnisuite.benchmarks.report import out_folder, write_report
from nnisuite.flags import Parser
from nnisuite.launcher import module_command
from nnisuite.outputs import folder_flag
from nnisuite.trials.params import positive_int

SCRIPT = '''"""A user's own trial (nnisuite.benchmarks.launcher): imports torch, trains a little,
reports."""
import nni
import torch

params = nni.get_next_parameter()
torch.manual_seed(0)
x, y = torch.randn(256, 16), torch.randint(0, 2, (256,))
model = torch.nn.Sequential(torch.nn.Linear(16, params["hidden"]), torch.nn.ReLU(),
                            torch.nn.Linear(params["hidden"], 2))
opt = torch.optim.SGD(model.parameters(), lr=params["lr"])
for step in range(5):
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    acc = (model(x).argmax(1) == y).float().mean().item()
    nni.report_intermediate_result(acc)
nni.report_final_result(acc)
'''

CONFIG = """searchSpace:
  hidden: {_type: choice, _value: [8, 16, 32]}
  lr: {_type: loguniform, _value: [0.001, 0.3]}
trialCommand: python3 train.py
trialCodeDirectory: .
trialConcurrency: 1
maxTrialNumber: TRIALS
tuner: {name: Random, classArgs: {seed: 0}}
trainingService: {platform: local}
"""


def durations(exp_dir: Path) -> list[float]:
    from nnisuite.analysis.store import load_experiment

    (exp_id,) = [
        p.name
        for p in exp_dir.iterdir()
        if not p.is_symlink() and (p / "db" / "nni.sqlite").exists()  # not NNI's _latest link
    ]
    exp = load_experiment(exp_id, exp_dir, live=False)
    return [t.duration_s for t in exp.trials if t.duration_s is not None]


def run_way(project: Path, work: Path, flag: str) -> list[float]:
    exp_dir = work / f"nni{flag}"
    proc = subprocess.run(
        [
            *module_command("nnisuite.study.run"),
            "config.yml",
            flag,
            "--experiment-dir",
            str(exp_dir),
            "--out",
            str(work / f"out{flag}"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        tail = proc.stderr[-2000:]
        raise SystemExit(f"nnisuite.study.run {flag} failed ({proc.returncode}):\n{tail}")
    return durations(exp_dir)


def summary(values: list[float]) -> dict:
    return {
        "trials": len(values),
        "mean_s": statistics.fmean(values),
        "median_s": statistics.median(values),
        "min_s": min(values),
        "max_s": max(values),
    }


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.benchmarks.launcher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=folder_flag, required=True, help="folder for launcher.json and launcher.md"
    )
    p.add_argument("--trials", type=positive_int, default=8, help="trials each way (default 8)")
    p.add_argument("--quick", action="store_true", help="1 training step per epoch (tests)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out_folder(parser, args.out)
    with tempfile.TemporaryDirectory(prefix="nnisuite-launcher-bench-") as tmp:
        work = Path(tmp)
        project = work / "project"
        project.mkdir()
        (project / "train.py").write_text(SCRIPT.replace("STEPS", "1" if args.quick else "20"))
        (project / "config.yml").write_text(CONFIG.replace("TRIALS", str(args.trials)))
        result = {
            "machine": cpu_name(),
            "python": sys.executable,
            "warm": summary(run_way(project, work, "--launcher")),
            "fresh": summary(run_way(project, work, "--no-launcher")),
        }
    saving = result["fresh"]["mean_s"] - result["warm"]["mean_s"]
    result["saving_per_trial_s"] = saving
    rows = [
        "| how trials start | trials | mean s | median s | min s | max s |",
        "|---|---|---|---|---|---|",
    ]
    for way, label in (("fresh", "python3 train.py (--no-launcher)"), ("warm", "--launcher")):
        r = result[way]
        rows.append(
            f"| {label} | {r['trials']} | {r['mean_s']:.2f} | {r['median_s']:.2f} | "
            f"{r['min_s']:.2f} | {r['max_s']:.2f} |"
        )
    command = (
        f"`python -m nnisuite.benchmarks.launcher --out {args.out} --trials {args.trials}"
        f"{' --quick' if args.quick else ''}`. Trial duration: NNI's start to end event."
    )
    last = f"Saving per trial: {saving:.2f} s (mean fresh - mean warm)."
    write_report(out, "launcher", result, "Warm launcher on a user's script", command, rows, last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
