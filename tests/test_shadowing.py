"""nnisuite in someone else's project: a folder holding files and packages named like every part
of nnisuite (launcher.py, models.py, trials/, experiments/, analysis.py, nas.py, benchmarks/,
nnisuite.py). Run from that folder and from elsewhere, `validate`, `run` (warm launcher on and
off), `--resume`, `repeat`, `export`, `compare` and `optuna` behave as they do without those
files; the user's trial imports its own models.py; nnisuite's processes import none of them.

Every such file records who imported it (its command line) in markers/, and all but models.py
raise: nnisuite importing one is a failed study or a traceback, and a marker line."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.nni import running_experiment_ids
from tests.helpers.runner import NNISUITE, runner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NNISUITE_CMD = [NNISUITE[0]]
SHADOWS = {  # the user's file -> what nnisuite calls by that name
    "launcher.py": "nnisuite.launcher",
    "models.py": "nnisuite.models",
    "trials/__init__.py": "nnisuite.trials",
    "experiments/__init__.py": "nnisuite.experiments",
    "analysis.py": "nnisuite.analysis",
    "nas.py": "nnisuite.nas",
    "benchmarks/__init__.py": "nnisuite.benchmarks",
    "nnisuite.py": "nnisuite",
    "config/__init__.py": "nnisuite.config",
    "study.py": "nnisuite.study",
}
RECORD = """
import os, sys
_marks = os.path.join(os.path.dirname(os.path.abspath(__file__)), {up!r}, "markers")
os.makedirs(_marks, exist_ok=True)
with open(os.path.join(_marks, {name!r} + "." + str(os.getpid())), "w") as _f:
    _f.write(" ".join(sys.argv))
"""
TRIAL = """
import os
import nni
import models  # the user's own models.py, beside this file

params = {"x": 0.5, "y": 0.5}
params.update(nni.get_next_parameter())
seed = int(os.environ.get("NNISUITE_SEED", "0"))
for step in range(3):
    nni.report_intermediate_result(models.score(params["x"], params["y"]) * (step + 1) / 3)
nni.report_final_result(models.score(params["x"], params["y"]) + seed / 1000)
"""


def user_project(root: Path) -> Path:
    folder = root / "project"
    folder.mkdir()
    for name in SHADOWS:
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        up = ".." if "/" in name else "."
        text = RECORD.format(up=up, name=name.replace("/", "_"))
        if name == "models.py":
            text += "\n\ndef score(x, y):\n    return -(x * x + y * y)\n"
        else:
            why = f"the user's {name} was imported by "
            text += f"\nraise ImportError({why!r} + ' '.join(sys.argv))\n"
        path.write_text(textwrap.dedent(text).lstrip())
    (folder / "train.py").write_text(TRIAL.lstrip())
    config = {
        "searchSpace": {
            "x": {"_type": "uniform", "_value": [-1, 1]},
            "y": {"_type": "uniform", "_value": [-1, 1]},
        },
        "trialCommand": "python3 train.py",
        "trialCodeDirectory": ".",
        "trialConcurrency": 2,
        "maxTrialNumber": 3,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 1}},
        "trainingService": {"platform": "local"},
    }
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    plan = {
        "base": "config.yml",
        "trials": 2,
        "seeds": 1,
        "variants": {"tpe": {"tuner": {"name": "TPE"}}, "random": {"tuner": {"name": "Random"}}},
    }
    (folder / "plan.yml").write_text(yaml.safe_dump(plan))
    return folder


def markers(folder: Path) -> dict[str, list[str]]:
    """file -> the command lines of the processes that imported it."""
    found: dict[str, list[str]] = {}
    for path in sorted((folder / "markers").glob("*")) if (folder / "markers").is_dir() else ():
        found.setdefault(path.name.rsplit(".", 1)[0], []).append(path.read_text())
    return found


def finished(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*NNISUITE_CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def study(cwd: Path, config: str, out: Path, exp_dir: Path, *flags: str) -> tuple[str, str]:
    """Run a study to its end with the console script, everything it started stopped whatever
    happens: (its experiment id, its output)."""
    with runner(
        config,
        "--out",
        str(out),
        "--experiment-dir",
        str(exp_dir),
        *flags,
        program=[*NNISUITE_CMD, "run"],
        cwd=cwd,
    ) as r:
        assert r.wait(timeout=300) == 0, r.output[-3000:]
    exp_id = next(
        line.split()[1].rstrip(":")
        for line in r.output.splitlines()
        if line.startswith("experiment ")
    )
    return exp_id, r.output


def test_a_project_with_nnisuites_names_runs_as_any_other(tmp_path):
    folder = user_project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exp_dir = tmp_path / "nni"

    finished(folder, "validate", "config.yml")
    finished(elsewhere, "validate", str(folder / "config.yml"))
    ids = []
    try:
        warm_id, warm_out = study(folder, "config.yml", tmp_path / "warm", exp_dir, "--launcher")
        assert "warm launcher ready" in warm_out
        ids.append(warm_id)
        plain_id, _ = study(elsewhere, str(folder / "config.yml"), tmp_path / "plain", exp_dir,
                            "--no-launcher")  # fmt: skip
        ids.append(plain_id)
        for out in ("warm", "plain"):
            trials = pd.read_csv(tmp_path / out / "trials.csv")
            assert len(trials) == 3 and set(trials.status) == {"SUCCEEDED"}, trials
            expected = -(trials["x"] ** 2 + trials["y"] ** 2)
            assert (trials["default"] - expected).abs().max() < 1e-9  # the user's models.score
        resumed = finished(folder, "run", "--resume", warm_id, "--experiment-dir", str(exp_dir),
                           "--out", str(tmp_path / "again"), "--no-plots")  # fmt: skip
        assert "exporting it again" in resumed.stdout
        assert len(pd.read_csv(tmp_path / "again" / "trials.csv")) == 3
        finished(folder, "repeat", "plan.yml", "--out", str(tmp_path / "rep"),
                 "--experiment-dir", str(exp_dir))  # fmt: skip
        runs = pd.read_csv(tmp_path / "rep" / "runs.csv")
        assert sorted(runs.variant) == ["random", "tpe"] and runs.final_best.notna().all()
        finished(folder, "export", warm_id, "--experiment-dir", str(exp_dir),
                 "--out", str(tmp_path / "exp"))  # fmt: skip
        finished(folder, "compare", warm_id, plain_id, "--experiment-dir", str(exp_dir),
                 "--out", str(tmp_path / "cmp"), "--no-plots")  # fmt: skip
        finished(folder, "optuna", warm_id, "--experiment-dir", str(exp_dir),
                 "--storage", f"sqlite:///{tmp_path / 'o.db'}")  # fmt: skip
    finally:
        assert not set(ids) & set(running_experiment_ids().split())
    seen = markers(folder)
    # nnisuite imported none of the user's files; the trials imported their models.py
    assert set(seen) == {"models.py"}, json.dumps(seen, indent=1)[:3000]
    assert all("train.py" in argv for argv in seen["models.py"]), seen["models.py"]
    assert len(seen["models.py"]) >= 3 * 2 + 2 * 2  # every trial of both studies and the repeat
