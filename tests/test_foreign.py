"""Your own trial through nnisuite, as a new user runs it: a plain `trial.py` (not nnisuite's
reporter, not `python -m nnisuite.launcher`) and a plain NNI YAML in a project folder outside the
repo, run with the `nnisuite` console script from there: validation, progress, a Ctrl-C mid-study
(exit 130, stopped, exported, nothing left running: the runner's Ctrl-C, whatever the trial),
`--resume`, an export that agrees with NNI's database, and a 2-variant x 2-seed repeated
study."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nnisuite.cli import BENCHMARKS, COMMANDS
from tests.helpers.nni import running_experiment_ids
from tests.helpers.runner import NNISUITE, runner, wait_dead

# The user's trial: the final encodes the parameters it trained on and the seed it was given,
# so every exported row can be checked against what really ran.
TRIAL = """
import os, sys, time
import nni

if os.environ.get("NNI_TRIAL_SEQ_ID") == "0":
    time.sleep(1.5)  # a slow start: the second trial asks NNI for parameters first
params = nni.get_next_parameter()
x, y = params["x"], params["y"]
seed = int(os.environ.get("NNISUITE_SEED", "0"))
for step in range(5):
    time.sleep(float(sys.argv[sys.argv.index("--sleep") + 1]))
    nni.report_intermediate_result(-(x * x + y * y) * (5 - step))
nni.report_final_result(-(x * x + y * y) + seed / 1000)
"""


def project(tmp_path: Path, sleep: float, trials: int = 6) -> Path:
    folder = tmp_path / "my project"
    folder.mkdir()
    (folder / "trial.py").write_text(TRIAL.lstrip())
    config = {
        "searchSpace": {
            "x": {"_type": "uniform", "_value": [-1, 1]},
            "y": {"_type": "uniform", "_value": [-1, 1]},
        },
        "trialCommand": f"python3 trial.py --sleep {sleep}",
        "trialCodeDirectory": ".",
        "trialConcurrency": 2,
        "maxTrialNumber": trials,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 3}},
        "trainingService": {"platform": "local"},
    }
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    return folder


def database_finals(exp_dir: Path, exp_id: str) -> dict[str, float]:
    """trial id -> its final result, read from NNI's own database."""
    db = sqlite3.connect(exp_dir / exp_id / "db" / "nni.sqlite")
    try:
        rows = db.execute("SELECT trialJobId, data FROM MetricData WHERE type = 'FINAL'").fetchall()
    finally:
        db.close()
    return {trial: json.loads(json.loads(data)) for trial, data in rows}


def parameter_ids(exp_dir: Path, exp_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """trial id -> the parameter id NNI records (and shows) for it; trial id -> the parameter id
    of the parameters it trained on (its final result's)."""
    db = sqlite3.connect(exp_dir / exp_id / "db" / "nni.sqlite")
    try:
        events = db.execute("SELECT trialJobId, data FROM TrialJobEvent WHERE event = 'RUNNING'")
        recorded = {trial: json.loads(data)["parameter_id"] for trial, data in events}
        finals = db.execute("SELECT trialJobId, parameterId FROM MetricData WHERE type = 'FINAL'")
        trained = {trial: int(pid) for trial, pid in finals}
    finally:
        db.close()
    return recorded, trained


def check_rows(trials: pd.DataFrame, seed: int = 0) -> None:
    """Every exported row's final is what its exported x, y (and seed) give."""
    for row in trials.itertuples():
        assert row.default == pytest.approx(-(row.x**2 + row.y**2) + seed / 1000, abs=1e-12), row


@pytest.mark.integration
def test_your_own_trial_runs_is_interrupted_resumed_and_exported(tmp_path):
    folder = project(tmp_path, sleep=0.4)
    exp_dir = tmp_path / "nni"
    common = ["--experiment-dir", str(exp_dir), "--out", str(tmp_path / "out")]
    with runner("config.yml", *common, program=NNISUITE, cwd=folder) as r:
        done = re.compile(r"trials ([2-5])/6 done")
        r.wait_until(lambda: done.search(r.output), what="two trials done")
        r.proc.send_signal(signal.SIGINT)
        assert r.wait() == 130, r.output
        first = r.output
    assert "is your own trial" in first  # validation ran and said what it could not check
    assert "fork from a warm launcher" in first
    assert "interrupted: stopping the experiment" in first
    assert (tmp_path / "out" / "summary.md").is_file()  # exported although interrupted
    exp_id = re.search(r"experiment (\w+): config", first).group(1)
    assert exp_id not in running_experiment_ids()
    assert wait_dead(r.seen) == []
    with runner("--resume", exp_id, *common, program=NNISUITE, cwd=folder) as r:
        assert r.wait() == 0, r.output
    assert "trials 6/6 done, 6 succeeded" in r.output
    assert exp_id not in running_experiment_ids()
    assert wait_dead(r.seen) == []
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 6 and set(trials.status) == {"SUCCEEDED"}
    assert sorted(trials.sequence) == list(range(6))
    assert trials[["x", "y"]].drop_duplicates().shape[0] == 6  # six distinct configurations
    check_rows(trials)
    finals = database_finals(exp_dir, exp_id)
    assert dict(zip(trials.trial_id, trials.default)) == pytest.approx(finals)
    # the first trial asked late, yet NNI records each trial with the parameters it trained
    # (NNI 3.0 alone hands them to whichever trial asks first: nni_patches/node_preload.js)
    recorded, trained = parameter_ids(exp_dir, exp_id)
    assert len(trained) == 6 and recorded == trained


@pytest.mark.integration
def test_a_repeated_study_over_your_own_trial_seeds_it_through_its_environment(tmp_path):
    folder = project(tmp_path, sleep=0, trials=3)
    plan = {
        "base": "config.yml",
        "variants": {"tpe": {"tuner": {"name": "TPE"}}, "random": {"tuner": {"name": "Random"}}},
        "seeds": 2,
        "trials": 3,
        "concurrency": 2,
    }
    (folder / "plan.yml").write_text(yaml.safe_dump(plan))
    out = tmp_path / "study"
    command = [NNISUITE[0], "repeat", "plan.yml", "--out", str(out)]
    command += ["--experiment-dir", str(tmp_path / "nni")]
    launchers = set()  # the warm launchers the repeat started (its direct children)
    with runner(*command[2:], program=command[:2], cwd=folder, port=None) as r:
        deadline = time.monotonic() + 400
        while r.proc.poll() is None and time.monotonic() < deadline:
            launchers.update(
                p.pid for p in r.find("nnisuite.launcher.server") if p.ppid() == r.proc.pid
            )
            time.sleep(0.2)
        assert r.wait(timeout=10) == 0, r.output
    # one launcher, importing what trial.py imports, for all four runs (not one per run)
    assert len(launchers) == 1, launchers
    assert "trials of trial.py fork from a warm launcher" in r.output
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(zip(runs.variant, runs.seed)) == sorted(
        (v, s) for v in ("tpe", "random") for s in (0, 1)
    )
    for variant in ("tpe", "random"):
        for seed in (0, 1):
            run = out / "runs" / f"{variant}-s{seed}"
            settings = json.loads((run / "run.json").read_text())["settings"]
            assert settings["tuner"]["classArgs"]["seed"] == seed  # the tuner's seed classArg
            assert f"NNISUITE_SEED={seed} " in settings["trialCommand"]
            trials = pd.read_csv(run / "trials.csv")
            assert len(trials) == 3
            check_rows(trials, seed)  # the trial read its seed from its environment
    assert (out / "comparison.csv").is_file() and (out / "pairwise.csv").is_file()
    assert wait_dead(r.seen) == []
    assert "warm launcher ready" in r.output
    # the same command again keeps the four runs, and starts no launcher for them
    with runner(*command[2:], program=command[:2], cwd=folder, port=None) as again:
        assert again.wait(timeout=120) == 0, again.output
    assert again.output.count("kept from before") == 4, again.output
    assert "warm launcher ready" not in again.output


def test_nnisuite_and_every_subcommand_answer_help_from_any_folder(tmp_path, monkeypatch):
    from nnisuite.cli import main

    shown = subprocess.run(
        [NNISUITE[0], "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and all(name in shown.stdout for name in COMMANDS)
    assert len(shown.stdout.splitlines()) <= 24  # one screen
    monkeypatch.chdir(tmp_path)
    commands = [[n] for n in COMMANDS if n != "bench"] + [["bench", b] for b in BENCHMARKS]
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        assert exit_.value.code == 0, command
    assert main(["nonsense"]) == 2 and main(["bench", "nonsense"]) == 2
    assert list(tmp_path.iterdir()) == []  # --help wrote nothing here


def test_the_console_script_keeps_the_exit_codes_of_the_python_m_forms(tmp_path):
    """A bad experiment file: exit 2 both ways, the same error; from a folder outside the repo."""
    (tmp_path / "bad.yml").write_text(
        textwrap.dedent(
            """
            searchSpace: {x: {_type: uniform, _value: [0, 1]}}
            trialCommand: python3 missing.py
            trialConcurrency: 0
            tuner: {name: TPE}
            trainingService: {platform: local}
            """
        )
    )
    results = [
        subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        for command in (
            [NNISUITE[0], "validate", "bad.yml"],
            [Path(NNISUITE[0]).with_name("python"), "-m", "nnisuite.config.validate", "bad.yml"],
        )
    ]
    assert [p.returncode for p in results] == [2, 2]
    assert results[0].stderr == results[1].stderr
    assert "trialConcurrency" in results[0].stderr and "missing.py" in results[0].stderr


def test_each_run_of_a_repeat_forks_from_the_repeats_launcher_only_when_the_trial_does(tmp_path):
    """What a run of a repeated study asks of nnisuite.launcher.warm: the trial's own preload list
    (so the repeat's launcher, started with that list, is the one it uses) and whether its trials
    fork at all (--no-launcher, or a command of another Python: no launcher started for the run)."""
    from nnisuite.config.plan import load_plan
    from nnisuite.study.repeat import hpo_study

    folder = project(tmp_path, sleep=0, trials=2)
    plan = {"base": "config.yml", "variants": {"tpe": {"tuner": {"name": "TPE"}}}, "seeds": 1}
    (folder / "plan.yml").write_text(yaml.safe_dump(plan))
    loaded = load_plan(folder / "plan.yml")
    for launch, forks in ((None, True), (True, True), (False, False)):
        study, seeded, warm = hpo_study(loaded, "tpe", 0, tmp_path / "run", tmp_path / "n", launch)
        assert (warm, study.preload, seeded) == (forks, (), True), launch
        command = study.exp.config.trial_command
        assert ("launcher --script trial.py" in command) is forks, command
    config = yaml.safe_load((folder / "config.yml").read_text())
    config["trialCommand"] = "/usr/bin/python3 trial.py --sleep 0"  # not the runner's Python
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    study, _, warm = hpo_study(load_plan(folder / "plan.yml"), "tpe", 0, tmp_path / "r", tmp_path)
    command = study.exp.config.trial_command
    assert warm is False and command.endswith(" /usr/bin/python3 trial.py --sleep 0"), command
