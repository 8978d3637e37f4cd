"""The results tools on experiments unlike nnisuite's own (NNI's schema, no manager), one case
per rule of nnisuite.analysis.tables / nnisuite.analysis.optuna: nested spaces, quniform, mixed-type
choices, reported keys named like columns, a failed trial with a final, unicode, column order."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nnisuite.analysis.compare import compare
from nnisuite.analysis.export import export
from nnisuite.analysis.optuna import to_study
from nnisuite.analysis.store import load_experiment
from tests.helpers.database import Database

NESTED = {
    "model": {
        "_type": "choice",
        "_value": [
            {"_name": "linear", "lr": {"_type": "loguniform", "_value": [1e-4, 0.1]}},
            {"_name": "mlp", "width": {"_type": "choice", "_value": [16, 32]}},
        ],
    },
    "epochs": {"_type": "quniform", "_value": [1, 10, 2]},
}


def write(tmp_path, name, space, trials, mode="maximize"):
    """trials: (params, status, final) in order."""
    config = {
        "experimentName": name,
        "searchSpace": space,
        "trialCommand": "python3 train.py",
        "maxTrialNumber": len(trials),
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": mode}},
    }
    db = Database(tmp_path, name, config)
    for i, (params, status, final) in enumerate(trials):
        db.start(i * 100, f"t{i}", i, i, params)
        db.metric(i * 100 + 10, f"t{i}", i, "PERIODICAL", 0.1, step=0)
        if final is not None:
            db.metric(i * 100 + 20, f"t{i}", i, "FINAL", final)
        db.event(i * 100 + 30, f"t{i}", status, seq=i)
    return load_experiment(str(db.write()), live=False)


def nested(tmp_path, name="nested"):
    return write(
        tmp_path,
        name,
        NESTED,
        [
            ({"model": {"_name": "linear", "lr": 0.01}, "epochs": 1}, "SUCCEEDED", 0.8),
            ({"model": {"_name": "mlp", "width": 32}, "epochs": 4}, "SUCCEEDED", 0.9),
            ({"model": {"_name": "mlp", "width": 16}, "epochs": 10}, "SUCCEEDED", 0.7),
        ],
    )


def test_a_nested_space_exports_with_plots_and_becomes_an_optuna_study(tmp_path):
    exp = nested(tmp_path)
    result = export(exp, tmp_path / "out", plots=True, optuna=True)
    assert (tmp_path / "out" / "param_model.width.png").exists()
    assert (tmp_path / "out" / "summary.md").exists()
    assert list(result.trials.columns[3:7]) == ["model._name", "model.lr", "model.width", "epochs"]
    study, notes = to_study(exp)
    assert [t.params for t in study.trials] == [
        {"model._name": "linear", "model.lr": 0.01, "epochs": 1},
        {"model._name": "mlp", "model.width": 32, "epochs": 4},
        {"model._name": "mlp", "model.width": 16, "epochs": 10},
    ]
    assert notes == []  # quniform [1, 10, 2]: NNI's 4 and 10 are inside Optuna's distribution


def test_compare_draws_the_edf_with_a_nested_experiment(tmp_path):
    compare([nested(tmp_path, "a").source, nested(tmp_path, "b").source], tmp_path / "out")
    assert (tmp_path / "out" / "optuna_edf.png").exists()


def test_reported_keys_named_like_columns_are_kept_apart(tmp_path):
    final = {"default": 0.9, "status": "converged", "lr": 0.5, "duration_s": 99.5}
    exp = write(
        tmp_path,
        "keys",
        {"lr": {"_type": "uniform", "_value": [0, 1]}},
        [({"lr": 0.25}, "SUCCEEDED", final)],
    )
    trials = export(exp, tmp_path / "out", plots=True, optuna=True).trials
    row = pd.read_csv(tmp_path / "out" / "trials.csv").iloc[0]
    assert row["status"] == "SUCCEEDED" and row["metric.status"] == "converged"
    assert row["lr"] == 0.25 and row["metric.lr"] == 0.5
    assert row["duration_s"] == pytest.approx(0.03) and row["metric.duration_s"] == 99.5
    assert list(trials.columns).count("status") == 1
    compare([exp.source], tmp_path / "cmp")


def test_a_choice_of_mixed_types_keeps_every_value_apart(tmp_path):
    values = [True, 1, "1", 2.5, False, "two"]
    space = {"c": {"_type": "choice", "_value": values}}
    exp = write(
        tmp_path, "mixed", space, [({"c": v}, "SUCCEEDED", i / 10) for i, v in enumerate(values)]
    )
    export(exp, tmp_path / "out", plots=False, optuna=False)
    column = pd.read_csv(tmp_path / "out" / "trials.csv", dtype=str)["c"]
    assert [json.loads(v) for v in column] == values
    assert [type(json.loads(v)) for v in column] == [type(v) for v in values]
    study, notes = to_study(exp)
    held = [json.loads(t.params["c"]) for t in study.trials]
    assert held == values and [type(v) for v in held] == [type(v) for v in values]


def test_a_failed_trial_with_a_final_counts_everywhere(tmp_path):
    """The rule: a reported final counts whatever the status (NNI's tuner got it too)."""
    exp = write(
        tmp_path,
        "failed",
        {"x": {"_type": "uniform", "_value": [0, 1]}},
        [({"x": 0.1}, "SUCCEEDED", 0.5), ({"x": 0.2}, "FAILED", 0.9), ({"x": 0.3}, "FAILED", None)],
    )
    summary = export(exp, tmp_path / "out", plots=False, optuna=False).summary
    assert "## Best trial: t1 " in summary
    study, _ = to_study(exp)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert study.best_trial.user_attrs["nni_status"] == "FAILED"


def test_unicode_is_written_as_itself_and_numbers_keep_their_digits(tmp_path):
    space = {"größe": {"_type": "choice", "_value": ["klein", "groß"]}}
    exp = write(tmp_path, "ü", space, [({"größe": "groß"}, "SUCCEEDED", 1.213)], mode="minimize")
    summary = export(exp, tmp_path / "out", plots=False, optuna=False).summary
    assert '"größe": "groß"' in summary and '["klein", "groß"]' in summary
    assert "\\u00" not in summary
    assert "default metric 1.213)" in summary


def test_names_that_collide_after_prefixing_each_keep_a_column_of_their_own(tmp_path):
    """A space with `status` and `param.status`, finals with `status` and `metric.status`:
    four values, four columns, none lost; the summary's best trial is what the trial got."""
    space = {
        "status": {"_type": "choice", "_value": [1]},
        "param.status": {"_type": "choice", "_value": [2]},
    }
    final = {"default": 0.5, "status": 7, "metric.status": 8}
    exp = write(
        tmp_path, "collide", space, [({"status": 1, "param.status": 2}, "SUCCEEDED", final)]
    )
    summary = export(exp, tmp_path / "out", plots=False, optuna=False).summary
    header = (tmp_path / "out" / "trials.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header))
    row = pd.read_csv(tmp_path / "out" / "trials.csv").iloc[0]
    values = {c: row[c] for c in header if c.endswith("status") and c != "status"}
    assert sorted(values.values()) == [1, 2, 7, 8], values
    assert row["status"] == "SUCCEEDED"
    best = json.loads(summary.split("```json")[1].split("```")[0])
    assert best == {"status": 1, "param.status": 2}


def test_integers_stay_integers_beside_blanks_and_floats(tmp_path):
    space = {
        "n": {"_type": "choice", "_value": [3, 1000, 0.5, -3]},
        "k": {"_type": "choice", "_value": [0, 2]},
    }
    trials = [
        ({"n": 3, "k": 0}, "SUCCEEDED", {"default": 0, "count": 3}),
        ({"n": 1000}, "SUCCEEDED", {"default": 0.5}),
        ({"n": 0.5, "k": 2}, "SUCCEEDED", {"default": 2}),
        ({"n": -3, "k": 0}, "SUCCEEDED", {"default": 0.25}),
    ]
    summary = export(write(tmp_path, "ints", space, trials), tmp_path / "out", False).summary
    rows = (tmp_path / "out" / "trials.csv").read_text().splitlines()
    header = rows[0].split(",")
    cells = {c: [r.split(",")[header.index(c)] for r in rows[1:]] for c in ("n", "k", "count")}
    assert cells == {
        "n": ["3", "1000", "0.5", "-3"],
        "k": ["0", "", "2", "0"],
        "count": ["3", "", "", ""],
    }
    assert "0.0000" not in summary and "| t0 | SUCCEEDED | 3 | 0 | 0 |" in summary


def test_a_huge_final_ranks_and_every_figure_stays_finite_or_is_refused(tmp_path):
    """1e300 is a number NNI stored: it is best; R^2's squares no longer overflow to NaN
    importances; fANOVA, whose variances do, says so; `nnisuite optuna` prints it short."""
    import subprocess
    import sys

    from tests.helpers.paths import REPO

    space = {
        "x": {"_type": "uniform", "_value": [0, 1]},
        "y": {"_type": "uniform", "_value": [0, 1]},
    }
    values = [0.1, 0.4, 1e300, 0.2, 0.3, 0.5]
    exp = write(
        tmp_path,
        "huge",
        space,
        [({"x": i / 7, "y": (i * 3 % 7) / 7}, "SUCCEEDED", v) for i, v in enumerate(values)],
    )
    summary = export(exp, tmp_path / "out", plots=False, optuna=True).summary
    assert "## Best trial: t2 (default metric 1e+300)" in summary
    importance = pd.read_csv(tmp_path / "out" / "importance.csv")
    assert importance["importance"].notna().all() and importance["std"].notna().all()
    assert "fanova not computed: its figures are not finite (values up to 1e+300)" in summary
    assert "| nan" not in summary
    done = subprocess.run(
        [sys.executable, "-m", "nnisuite.analysis.optuna", str(exp.source),
         "--storage", f"sqlite:///{tmp_path / 'o.db'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best value 1e+300 (trial 2)" in done.stdout and "0" * 20 not in done.stdout


def test_a_configuration_run_twice_is_flagged(tmp_path):
    """After `nnictl resume` NNI's replay can run a configuration again (6 trials, 4 distinct
    were seen): the summary names the repeats; a nested one is compared whole."""
    space = {"x": {"_type": "choice", "_value": [1, 2]}, **NESTED}
    a = {"x": 1, "model": {"_name": "mlp", "width": 16}, "epochs": 2}
    b = {"x": 1, "model": {"_name": "mlp", "width": 32}, "epochs": 2}
    trials = [(a, "SUCCEEDED", 0.5), (b, "SUCCEEDED", 0.6), (dict(a), "SUCCEEDED", 0.5)]
    summary = export(write(tmp_path, "rep", space, trials), tmp_path / "out", False).summary
    assert "- 1 trial(s) ran a configuration an earlier trial had run (t2 ran t0's)" in summary
    distinct = [(a, "SUCCEEDED", 0.5), (b, "SUCCEEDED", 0.6)]
    summary = export(write(tmp_path, "dis", space, distinct), tmp_path / "o2", False).summary
    assert "ran a configuration an earlier trial had run" not in summary
