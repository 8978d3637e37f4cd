"""Repeated studies: every working NNI 3.0 tuner and assessor through real NNI managers
(a smoke run each), the seed reaching the tuner, resuming a repeated study, the plan checks."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from nnisuite.config.plan import RepeatError, load_plan, run_config
from tests.helpers.paths import EXPERIMENTS, REPO

TUNERS = EXPERIMENTS / "tuners_digits.yaml"
ASSESSORS = EXPERIMENTS / "assessors_fashion.yaml"


def repeat(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "nnisuite.study.repeat", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", ["TPE", "Random"])
def test_the_same_seed_gives_the_same_first_suggestions(name):
    from nni.tools.package_utils.tuner_factory import create_builtin_class_instance

    space = load_plan(TUNERS)  # the 3.17 space of the plan's base experiment
    from nnisuite.config.experiment import load_yaml
    from nnisuite.config.search_space import load_space

    nni_space, _, _ = load_space(load_yaml(space["base"]), space["base"])

    def first(seed):
        args = {"optimize_mode": "maximize", "seed": seed}
        tuner = create_builtin_class_instance(name, args, "tuners")
        tuner.update_search_space(nni_space)
        return [tuner.generate_parameters(i) for i in range(3)]

    assert first(0) == first(0) and first(0) != first(1)


def test_tuners_without_a_seed_are_known_as_such():
    """hyperopt's tuners take no seed in NNI: their runs differ by their own draws."""
    from nnisuite.config.plan import takes_seed

    assert not takes_seed({"name": "Anneal"}) and not takes_seed({"name": "TPE_legacy"})
    assert takes_seed({"name": "TPE"}) and takes_seed({"name": "Random"})


def test_the_seed_reaches_every_seeded_tuner_and_every_trial():
    plan = load_plan(TUNERS)
    tpe = run_config(plan, "tpe", 7, None)
    assert tpe["tuner"]["classArgs"]["seed"] == 7 and "--seed 7" in tpe["trialCommand"]
    anneal = run_config(plan, "anneal", 7, None)  # no seed argument: none set
    assert "seed" not in anneal["tuner"]["classArgs"] and "--seed 7" in anneal["trialCommand"]
    none = run_config(load_plan(ASSESSORS), "none", 2, None)
    assert "assessor" not in none and none["tuner"]["classArgs"]["seed"] == 2


def test_variants_keep_the_bases_direction_and_mixed_directions_are_refused(tmp_path):
    base = str(EXPERIMENTS / "mlp_tpe_digits.yaml")  # TPE, optimize_mode: maximize
    path = tmp_path / "plan.yaml"
    path.write_text(
        f"base: {base}\nvariants: {{tpe: {{tuner: {{name: TPE}}}}, "
        "anneal: {tuner: {name: Anneal, classArgs: {algorithm_name: anneal}}}, "
        "median: {assessor: {name: Medianstop}}}\n"
    )
    plan = load_plan(path)
    for variant in ("tpe", "anneal"):  # both would minimize by their own default
        assert run_config(plan, variant, 0, None)["tuner"]["classArgs"]["optimize_mode"] == (
            "maximize"
        )
    assert run_config(plan, "median", 0, None)["assessor"]["classArgs"] == {
        "optimize_mode": "maximize"
    }
    path.write_text(
        f"base: {base}\nvariants: {{up: {{tuner: {{name: TPE}}}}, "
        "down: {tuner: {name: TPE, classArgs: {optimize_mode: minimize}}}}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "nnisuite.study.repeat", str(path), "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "different directions (up maximizes, down minimizes)" in (
        out.stderr
    ), out.stderr
    assert not (tmp_path / "o" / "runs").exists()  # refused before any run


def test_plan_mistakes(tmp_path):
    for text, fragment in (
        ("base: mlp_tpe_digits.yaml\n", "`variants` is required"),
        ("base: x.yaml\nvariants: {a: {tuner: {name: TPE}}}\n", "no such experiment file"),
        ("base: BASE\nvariants: {a: {tunr: {name: TPE}}}\n", "may set only"),
        ("base: BASE\nseeds: 0\nvariants: {a: {tuner: {name: TPE}}}\n", "positive integer"),
    ):
        path = tmp_path / "plan.yaml"
        path.write_text(text.replace("BASE", str(EXPERIMENTS / "mlp_tpe_digits.yaml")))
        with pytest.raises(RepeatError, match=fragment):
            load_plan(path)


# The working tuners through real NNI managers, in groups so that parallel workers run them side
# by side: TPE and Random (the first group also checks that a second run of the same --out with
# other settings remakes the run; one with the same settings keeps it: test_foreign), Hyperband
# and PBT (what the trials do with them: epochs from TRIAL_BUDGET, checkpoints carried between
# trials). The others differ from these only inside the dispatcher: they run in the simulator
# (test_the_other_tuners_run_in_nnis_own_dispatcher).
TUNER_GROUPS = ["tpe,random", "hyperband,pbt"]
SIMULATED = "anneal,tpe_legacy,evolution,gridsearch,gp,dngo,bohb"


def test_the_groups_cover_every_tuner_of_the_study():
    grouped = [v for group in (*TUNER_GROUPS, SIMULATED) for v in group.split(",")]
    assert sorted(grouped) == sorted(load_plan(TUNERS)["variants"])


@pytest.mark.slow
def test_the_other_tuners_run_in_nnis_own_dispatcher(tmp_path):
    """Each tuner of SIMULATED built from the plan as NNI's dispatcher process builds it
    (nni.__main__._create_algo: builtin names, classArgs, className and codeDirectory, its
    package imported) and driven through NNI's own MsgDispatcher by the simulator on the
    committed digits table: what the real groups add (the manager, its channel to the
    dispatcher, the trials) is the same for every tuner. Each is told its trials' results: its
    suggestions after the first depend on them only if it received them, so a tuner is also
    checked to give a whole run of valid suggestions, each scored with the table's value."""
    from nnisuite.benchmarks.tabular.__main__ import main
    from nnisuite.benchmarks.tabular.table import Table

    table_dir = REPO / "benchmarks" / "tables" / "digits"
    out = tmp_path / "sim"
    args = ["run", str(TUNERS), "--table", str(table_dir), "--seeds", "1", "--max-trials", "4"]
    args += ["--variants", SIMULATED, "--workers", "1", "--no-plots", "--out", str(out)]
    assert main(args) == 0
    runs = pd.read_csv(out / "runs.csv").set_index("variant")
    assert sorted(runs.index) == sorted(SIMULATED.split(","))
    assert (runs["trials"] == 4).all() and (runs["finished"] == 4).all(), runs
    table = Table.load(table_dir)
    trials = pd.read_csv(out / "trials.csv.gz")
    assert sorted(set(trials["variant"])) == sorted(SIMULATED.split(","))
    for _, row in trials.iterrows():
        suggested = {p: row[f"param.{p}"] for p in table.parameters}
        assert table.key(suggested) == tuple(row[f"cell.{p}"] for p in table.parameters)
        curve = table.curve(suggested, int(row["table_seed"]))
        assert row["default"] == pytest.approx(curve[row["epochs"] - 1]["val_accuracy"], abs=1e-6)
    for variant, group in trials.groupby("variant"):
        assert runs.loc[variant, "final_best"] == pytest.approx(group["default"].max())


@pytest.mark.integration
@pytest.mark.parametrize("group", TUNER_GROUPS)
def test_every_working_tuner_runs_and_a_rerun_skips_finished_runs(tmp_path, group):
    out, nni = tmp_path / "out", tmp_path / "nni"
    args = [
        str(TUNERS),
        "--out",
        str(out),
        "--experiment-dir",
        str(nni),
        "--seeds",
        "1",
        "--max-trials",
        "3",
        "--epochs",
        "1",
        "--variants",
        group,
    ]
    first = repeat(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    runs = pd.read_csv(out / "runs.csv")
    variants = group.split(",")
    assert sorted(runs["variant"]) == sorted(variants)
    assert (runs["trials"] == 3).all() and (runs["finished"] >= 1).all(), runs
    assert runs["final_best"].between(0, 1).all()
    comparison = pd.read_csv(out / "comparison.csv").set_index("variant")
    by_run = runs.set_index("variant")["final_best"]
    for variant in variants:  # one run each: the variant's mean is that run's final best
        assert comparison.loc[variant, "runs"] == 1
        assert comparison.loc[variant, "final_best_mean"] == pytest.approx(by_run[variant])
    assert sorted(comparison["mean_rank"]) == pytest.approx(
        sorted(runs["final_best"].rank(ascending=False).tolist())
    )
    assert (out / "best_so_far_mean.png").read_bytes()[:4] == b"\x89PNG"
    for variant in variants:  # a run's importance only when asked for (--importance below)
        summary = (out / "runs" / f"{variant}-s0" / "summary.md").read_text()
        assert "Not computed (not asked for" in summary
    if group != TUNER_GROUPS[0]:
        return
    # (the same command again keeps every finished run: test_foreign runs that rerun)
    record = json.loads((out / "runs" / "tpe-s0" / "run.json").read_text())
    assert record["seeded_tuner"] and record["status"] == "DONE"
    assert record["settings"]["maxTrialNumber"] == 3
    # the same --out with other settings: the old run is named and made again, never kept
    other = repeat(
        *args[:-6], "--max-trials", "2", "--epochs", "1", "--variants", "tpe", "--importance"
    )
    assert other.returncode == 0, other.stdout[-3000:] + other.stderr[-3000:]
    summary = (out / "runs" / "tpe-s0" / "summary.md").read_text()  # 2 trials: too few to fit
    assert "Parameter importance" in summary and "Not computed: 2 finished trial" in summary
    assert "made with other settings (maxTrialNumber 3 -> 2)" in other.stdout
    assert "kept from before" not in other.stdout
    assert list(pd.read_csv(out / "runs.csv")["trials"]) == [2]
    title = (out / "comparison.md").read_text().splitlines()[0]
    assert "2 trials x 1 epochs, 1 seed" in title and "20 trials" not in title, title


@pytest.mark.integration
def test_curvefitting_runs_from_the_assessor_plan(tmp_path):
    """Curvefitting, the assessor no other test runs through NNI, as the assessor study's plan
    sets it, on nnisuite's MLP trial. The plan's `none` variant is any study without an
    assessor; Medianstop stops trials in a repeated study in
    test_an_assessor_in_a_repeated_study_stops_a_hopeless_trial and in a plain one in
    test_hpo_integration (its settings here pass validation in test_validate_fuzz)."""
    proc = repeat(
        str(ASSESSORS),
        "--out",
        str(tmp_path / "out"),
        "--experiment-dir",
        str(tmp_path / "nni"),
        "--seeds",
        "1",
        "--max-trials",
        "3",
        "--epochs",
        "4",
        "--dataset",
        "digits",
        "--variants",
        "curvefitting",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert list(runs["variant"]) == ["curvefitting"]
    assert (runs["trials"] == 3).all(), runs


@pytest.mark.integration
def test_an_assessor_in_a_repeated_study_stops_a_hopeless_trial(tmp_path):
    """GridSearch in order x = 0.9, 0.8, then 0.1 and 0.05, one at a time (the fault trial
    reports x * step / steps each step): Medianstop stops the last two once the first two
    finished; without an assessor all four run to the end."""
    from tests.helpers.runner import fault_experiment

    space = {"x": {"_type": "choice", "_value": [0.9, 0.8, 0.1, 0.05]}}
    base = fault_experiment(tmp_path, space, "--mode slow --steps 12", max_trials=4, concurrency=1)
    plan = tmp_path / "plan.yaml"
    median = {"name": "Medianstop", "classArgs": {"optimize_mode": "maximize", "start_step": 2}}
    plan.write_text(
        f"base: {base}\nseeds: 1\nvariants:\n  none: {{assessor: null}}\n"
        f"  medianstop: {{assessor: {json.dumps(median)}}}\n"
    )
    proc = repeat(
        str(plan), "--out", str(tmp_path / "out"), "--experiment-dir", str(tmp_path / "n")
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    statuses = {
        v: pd.read_csv(tmp_path / "out" / "runs" / f"{v}-s0" / "trials.csv").set_index("x")[
            "status"
        ]
        for v in ("none", "medianstop")
    }
    assert (statuses["none"] == "SUCCEEDED").all()
    assert statuses["medianstop"][0.9] == statuses["medianstop"][0.8] == "SUCCEEDED"
    assert (statuses["medianstop"][[0.1, 0.05]] == "EARLY_STOPPED").all(), statuses
