"""The end of a study tells the truth: how every trial ended; a study in which no trial reported
a final result is not "DONE, exit 0" (exit 5, the first failed trial's stderr quoted, or the
trials that never reported a final named); a tuner out of configurations ends the study at once
as finished; a repeated study never calls variants "the same" from runs without a result."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nnisuite.analysis.compare import Run, aggregate
from nnisuite.study.manager import EXIT_NO_RESULT, counts, counts_line, free_port
from tests.helpers.nni import running_experiment_ids
from tests.helpers.runner import NNISUITE

TRIALS = {
    "crash.py": "import nni\nnni.get_next_parameter()\nraise ValueError('boom: the trial broke')\n",
    "silent.py": "import nni\nnni.get_next_parameter()\nnni.report_intermediate_result(0.5)\n",
    "fine.py": (
        "import nni\np = nni.get_next_parameter()\nnni.report_final_result(float(p.get('x', 1)))\n"
    ),
}


def project(tmp_path: Path, trial: str, space: dict, tuner: dict, trials: int) -> Path:
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / trial).write_text(TRIALS[trial])
    config = {
        "searchSpace": space,
        "trialCommand": f"python3 {trial}",
        "trialCodeDirectory": ".",
        "trialConcurrency": 2,
        "maxTrialNumber": trials,
        "tuner": tuner,
        "trainingService": {"platform": "local"},
    }
    path = folder / f"{Path(trial).stem}.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def nnisuite(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """The command, run to its end; a study gets a free port (never NNI's usual 8080)."""
    port = ["--port", str(free_port())] if args[0] == "run" else []
    return subprocess.run(
        [NNISUITE[0], *args, *port], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def run_project(tmp_path: Path, config: Path, *more: str, **how) -> subprocess.CompletedProcess:
    """`nnisuite run` of a project's study into tmp_path's nni/ and out/, without plots."""
    flags = ["--experiment-dir", str(tmp_path / "nni"), "--out", str(tmp_path / "out")]
    return nnisuite("run", str(config), *flags, "--no-plots", *more, cwd=tmp_path, **how)


SPACE = {"x": {"_type": "choice", "_value": [1, 2, 3]}}
RANDOM = {"name": "Random", "classArgs": {"seed": 0}}
TPE = {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 0}}


@pytest.mark.integration
def test_a_study_whose_trials_all_fail_says_why_and_exits_5(tmp_path):
    config = project(tmp_path, "crash.py", SPACE, RANDOM, 2)
    proc = run_project(tmp_path, config)
    assert proc.returncode == EXIT_NO_RESULT, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "trials: 0 with a final result; 0 succeeded, 2 failed" in proc.stdout
    assert "no trial reported a final result" in proc.stderr
    assert "ValueError: boom: the trial broke" in proc.stderr  # the trial's own last lines
    quoted = next(line for line in proc.stderr.splitlines() if "the first failed trial" in line)
    assert Path(quoted.split("(", 2)[2].rsplit(")", 1)[0]).is_file()  # where they are
    assert len(pd.read_csv(tmp_path / "out" / "trials.csv")) == 2  # exported all the same
    assert not running_experiment_ids().strip() or "project" not in running_experiment_ids()


@pytest.mark.integration
def test_trials_that_never_report_a_final_are_named(tmp_path):
    config = project(tmp_path, "silent.py", SPACE, RANDOM, 2)
    proc = run_project(tmp_path, config)
    assert proc.returncode == EXIT_NO_RESULT, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "2 succeeded without a final result" in proc.stdout
    assert "nni.report_final_result(value) once" in proc.stderr


@pytest.mark.integration
def test_a_tuner_out_of_configurations_ends_the_study_at_once(tmp_path):
    """GridSearch over 3 points with maxTrialNumber 8: NNI says TUNER_NO_MORE_TRIAL; the study
    is finished (before: the stall watchdog waited 5 minutes and blamed NNI, exit 3)."""
    config = project(tmp_path, "fine.py", SPACE, {"name": "GridSearch"}, 8)
    proc = run_project(tmp_path, config, "--stall-minutes", "2", timeout=110)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "ended: DONE (the tuner has no more configurations)" in proc.stdout
    said = next(line for line in proc.stdout.splitlines() if line.startswith("trials: "))
    assert said.startswith("trials: 3 with a final result; 3 succeeded, 0 failed"), said
    assert sorted(pd.read_csv(tmp_path / "out" / "trials.csv")["x"]) == [1, 2, 3]


@pytest.mark.integration
def test_a_repeated_study_without_results_compares_nothing_and_exits_5(tmp_path):
    config = project(tmp_path, "crash.py", SPACE, RANDOM, 1)
    plan = {
        "base": config.name,
        "trials": 1,
        "seeds": 1,
        "variants": {"a": {"tuner": RANDOM}, "b": {"tuner": TPE}},
    }
    (config.parent / "plan.yml").write_text(yaml.safe_dump(plan))
    proc = nnisuite("repeat", "plan.yml", "--out", str(tmp_path / "rep"),
                    "--experiment-dir", str(tmp_path / "nni"), cwd=config.parent)  # fmt: skip
    assert proc.returncode == EXIT_NO_RESULT, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("NO RESULT") == 2
    text = (tmp_path / "rep" / "comparison.md").read_text()
    assert "these variants are the same" not in text and "No comparison" in text
    assert "Left out, no trial reported a final result: a seed 0, b seed 0" in text


def run(variant: str, seed: int, finals: list[float]) -> Run:
    return Run(variant, seed, f"{variant}{seed}", finals, [None] * len(finals),
               list(range(len(finals))), 1.0, max(len(finals), 1))  # fmt: skip


def test_a_variant_without_results_is_left_out_not_called_the_same(tmp_path):
    runs = [run("a", s, [0.5, 0.6 + s / 100]) for s in range(3)]
    runs += [run("b", s, []) for s in range(3)]  # every trial of b failed
    text = aggregate(runs, 2, tmp_path / "x", plots=False)
    assert "these variants are the same" not in text
    assert "No comparison: 1 variant(s)" in text and "b seed 0, b seed 1, b seed 2" in text
    assert pd.read_csv(tmp_path / "x" / "pairwise.csv").empty
    # with results on both sides the comparison stands, and the empty run is named
    runs[3] = run("b", 0, [0.55])
    text = aggregate(runs, 2, tmp_path / "y", plots=False)
    assert "Left out, no trial reported a final result: b seed 1, b seed 2" in text
    assert "No comparison" not in text
    comparison = pd.read_csv(tmp_path / "y" / "comparison.csv").set_index("variant")
    assert comparison.loc["b", "runs"] == 1 and not math.isnan(comparison.loc["b", "mean_rank"])


def test_counts_read_every_way_a_trial_ends():
    from nnisuite.analysis.store import Trial

    trials = [
        Trial("a", status="SUCCEEDED", final={"default": 0.9}),
        Trial("b", status="SUCCEEDED"),
        Trial("c", status="FAILED", final={"default": 0.1}),  # failed after reporting
        Trial("d", status="FAILED"),
        Trial("e", status="USER_CANCELED"),
        Trial("f", status="EARLY_STOPPED"),
        Trial("g", status="RUNNING"),
    ]
    assert counts(trials) == {"results": 2, "succeeded": 2, "failed": 2, "stopped": 2,
                              "no_final": 1, "unfinished": 1}  # fmt: skip
    assert counts_line(trials).endswith("1 succeeded without a final result, 1 unfinished")


ODD = """
import math
import nni

kind = nni.get_next_parameter()["kind"]
finals = [0.5, math.inf, "n/a", {"default": "0.5", "status": "odd"}, "0.9", math.nan, 0.25]
for epoch in range(3):  # a NaN first: the best intermediate is still the best number
    value = math.nan if epoch == 0 else 0.1 * epoch
    nni.report_intermediate_result({"default": value, "step": 7, "status": "x"})
nni.report_final_result(finals[kind])
"""


@pytest.mark.integration
def test_every_value_nni_stored_is_read_as_stored_and_only_numbers_rank(tmp_path):
    """Finals of inf, NaN, strings ("0.9" too) and dicts with string values, intermediates
    that carry their own `step` and `status`, from a real NNI manager: the export, compare and
    the Optuna bridge read them without a traceback, rank only the finite numbers, keep every
    intermediate row (the trial's `step` beside NNI's), and never turn a string into a number."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "odd.py").write_text(ODD.lstrip())
    config = {
        "searchSpace": {"kind": {"_type": "choice", "_value": list(range(7))}},
        "trialCommand": "python3 odd.py",
        "trialCodeDirectory": ".",
        "trialConcurrency": 2,
        "maxTrialNumber": 7,
        "tuner": {"name": "GridSearch"},
        "trainingService": {"platform": "local"},
    }
    (folder / "odd.yml").write_text(yaml.safe_dump(config))
    exp_dir = tmp_path / "nni"
    proc = nnisuite("run", "odd.yml", "--experiment-dir", str(exp_dir), "--out",
                    str(tmp_path / "out"), cwd=folder)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    said = next(line for line in proc.stdout.splitlines() if line.startswith("trials: "))
    assert said.startswith("trials: 2 with a final result; 7 succeeded"), said  # 0.5 and 0.25
    assert "Traceback" not in proc.stderr
    trials = pd.read_csv(tmp_path / "out" / "trials.csv", dtype=str, keep_default_na=False)
    stored = dict(zip(trials["kind"], trials["default"]))
    assert stored["0"] == "0.5" and stored["1"] == "inf" and stored["2"] == "n/a"
    assert stored["3"] == "0.5" and stored["4"] == "0.9" and stored["6"] == "0.25"
    summary = (tmp_path / "out" / "summary.md").read_text()
    best = next(line for line in summary.splitlines() if line.startswith("## Best trial"))
    assert "0.5000" in best  # the number 0.5, not the string "0.9" nor inf
    assert set(trials["best_intermediate"]) == {"0.2"}
    steps = pd.read_csv(tmp_path / "out" / "intermediate.csv")
    assert len(steps) == 21 and set(steps["step"]) == {0, 1, 2}
    assert set(steps["metric.step"]) == {7}
    exp_id = re.search(r"^experiment (\w+):", proc.stdout, re.M).group(1)
    for args in (
        ["compare", exp_id, exp_id, "--out", str(tmp_path / "cmp"), "--no-plots"],
        ["optuna", exp_id, "--storage", f"sqlite:///{tmp_path / 'o.db'}"],
    ):
        done = nnisuite(*args, "--experiment-dir", str(exp_dir), cwd=tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr[-2000:])


def test_too_few_seeds_is_no_conclusion_not_the_same(tmp_path):
    """Three runs a variant can never differ at p < 0.05 (Mann-Whitney U's smallest p is 0.1):
    the comparison says it cannot conclude instead of calling far apart variants the same."""
    few = [run("a", s, [0.50 + s / 1000]) for s in range(3)]
    few += [run("b", s, [0.90 + s / 1000]) for s in range(3)]
    text = aggregate(few, 1, tmp_path / "few", plots=False)
    assert "No conclusion" in text and "these variants are the same" not in text
    many = [run("a", s, [0.50 + s / 1000]) for s in range(5)]
    many += [run("b", s, [0.90 + s / 1000]) for s in range(5)]
    text = aggregate(many, 1, tmp_path / "many", plots=False)
    assert "b beats a on final best" in text and "No conclusion" not in text
