"""nnisuite.study.optuna_tuner through real NNI managers: two samplers for a few trials (their
dispatcher's log says what each was told, checked against NNI's database; the shipped file
under plain `nnictl create`: test_hpo_integration), and a two-objective NSGA-II study stopped with
Ctrl-C and resumed (`--resume`: NNI hands the tuner the finished trials with import_data) whose
export has the Pareto front. The trial trains nothing (tests/fixtures/cost_trial.py): what is
under test is the tuner in NNI, not training."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nnisuite.analysis.store import load_experiment
from tests.helpers.nni import experiment_config, running_experiment, running_experiment_ids
from tests.helpers.paths import REPO
from tests.helpers.runner import runner, wait_dead

pytestmark = pytest.mark.integration

SHIPPED = REPO / "experiments" / "optuna_tpe_digits.yaml"
TRIAL = "python3 -m nnisuite.launcher tests.fixtures.cost_trial"  # the project's Python, found
TOLD = re.compile(r"parameter id (\d+) told: (\[.*\])")


def study_file(tmp_path: Path, class_args: dict, trials: int, concurrency: int, sleep=0.0):
    raw = yaml.safe_load(SHIPPED.read_text())
    raw.update(
        maxTrialNumber=trials,
        trialConcurrency=concurrency,
        experimentWorkingDirectory=str(tmp_path / "nni"),
        searchSpaceFile=str(REPO / "search_spaces" / "mlp_tpe.yaml"),
        trialCodeDirectory=str(REPO),
        trialCommand=f"{TRIAL} --sleep {sleep}",
    )
    raw["tuner"]["codeDirectory"] = str(REPO)
    raw["tuner"]["classArgs"] = class_args
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def told(tmp_path: Path, exp_id: str) -> list[list[float]]:
    """What the tuner was told, in order, from its dispatcher's log."""
    text = (tmp_path / "nni" / exp_id / "log" / "dispatcher.log").read_text()
    return [json.loads(values) for _, values in TOLD.findall(text)]


def check_told(exp, tmp_path: Path, keys: list[str]) -> None:
    """Every SUCCEEDED trial's final (NNI's record) was told to the tuner, nothing else."""
    finals = sorted([t.final[k] for k in keys] for t in exp.trials if t.status == "SUCCEEDED")
    assert finals and sorted(told(tmp_path, exp.id)) == finals  # JSON both ways: exact


@pytest.mark.parametrize(
    "class_args",
    [
        {"sampler": "cmaes", "seed": 1},
        {"sampler": "motpe", "seed": 1, "objectives": ["default", "parameters"]},
    ],
    ids=lambda a: a["sampler"],
)
def test_samplers_run_as_nni_tuners(tmp_path, class_args):
    """A real manager and dispatcher process: one objective (CMA-ES, whose warning must reach
    dispatcher.log) and two (MOTPE). Every sampler, these two too, runs inside NNI's own
    MsgDispatcher in tests/test_optuna_tuner.py; what a real manager adds (its channel to the
    dispatcher, the database, the trials) is the same for every sampler, so GP, QMC and Random
    are not run again here (a real study each: ~8 s of CPU)."""
    # CMA-ES warns (categorical sampled at random) once it has a result: a third trial
    n = 3 if class_args["sampler"] == "cmaes" else 2
    config = experiment_config(study_file(tmp_path, class_args, trials=n, concurrency=2), tmp_path)
    # no warm launcher: it would import torch for trials that do not
    with running_experiment(config, timeout_s=240, launcher=False) as (exp, port, status):
        assert status == "DONE"
        found = load_experiment(f"http://127.0.0.1:{port}")
    assert [t.status for t in found.trials] == ["SUCCEEDED"] * n
    check_told(found, tmp_path, class_args.get("objectives", ["default"]))
    if class_args["sampler"] == "cmaes":  # Optuna's warnings land in the dispatcher's log
        log = (tmp_path / "nni" / found.id / "log" / "dispatcher.log").read_text()
        assert "sampled independently" in log, log[-2000:]
    for t in found.trials:  # NNI's record of the parameters is the space's
        assert {"features1", "features2", "lr", "batch_size"} == set(t.parameters)
        assert 1e-4 <= t.parameters["lr"] <= 0.1


def test_two_objectives_stopped_and_resumed_keep_every_trial_and_draw_the_front(tmp_path):
    args = {"sampler": "nsgaii", "seed": 0, "objectives": ["default", "parameters"]}
    config = study_file(tmp_path, args, trials=5, concurrency=1, sleep=0.5)
    common = ["--experiment-dir", str(tmp_path / "nni"), "--out", str(tmp_path / "out")]
    with runner(str(config), *common) as r:
        r.wait_until(lambda: re.search(r"trials [2-4]/5 done", r.output), what="two trials")
        r.proc.send_signal(signal.SIGINT)
        assert r.wait() == 130, r.output[-3000:]
    exp_id = re.search(r"experiment (\w+): ", r.output).group(1)
    assert exp_id not in running_experiment_ids() and wait_dead(r.seen) == []
    before = len(told(tmp_path, exp_id))
    with runner("--resume", exp_id, *common, plots=True) as r:  # the export as users get it
        assert r.wait() == 0, r.output[-3000:]
    assert "trials 5/5 done, 5 succeeded" in r.output
    assert exp_id not in running_experiment_ids() and wait_dead(r.seen) == []
    log = (tmp_path / "nni" / exp_id / "log" / "dispatcher.log").read_text()
    # NNI's resume hands the tuner the finished trials at once, and a trial that was running
    # at the stop (run again) when its final arrives: every trial reached the tuner once
    imported = [int(n) for n in re.findall(r"import_data: (\d+) of \d+ earlier", log)]
    assert before >= 2 and imported and imported[0] == before, log[-2000:]
    assert sum(imported) + len(told(tmp_path, exp_id)) - before == 5, log[-2000:]
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 5 and set(trials["status"]) == {"SUCCEEDED"}
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert set(pareto["cost"]) == {"parameters"} and set(pareto["trial_id"]) <= set(trials.trial_id)
    assert (tmp_path / "out" / "pareto_parameters.png").stat().st_size > 0
    assert (tmp_path / "out" / "importance_optuna.csv").is_file()  # Optuna's part ran too
