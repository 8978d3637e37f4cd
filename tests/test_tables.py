"""nnisuite.analysis.tables and nnisuite.analysis.compare on experiments in NNI's own schema
(written by nnisuite.benchmarks.nni_db, no manager): number formatting, the comparison row, the
compare CLI."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from nnisuite.analysis.compare import comparison_row
from nnisuite.analysis.store import load_experiment
from nnisuite.analysis.tables import fmt, metric_label, trials_table
from nnisuite.benchmarks.nni_db import write_experiment
from tests.helpers.paths import REPO


@pytest.mark.parametrize(
    "value, text",
    [
        (None, ""),
        (float("nan"), ""),
        (3.0, "3"),
        (0.123456, "0.1235"),
        (12.34, "12.34"),
        (1.22, "1.22"),
        (1.213, "1.213"),
        (99.5, "99.5"),
        (0.0001234, "0.0001234"),
        (123456.0, "123456"),
        (2.5e7, "25000000"),
        (250000.5, "2.5e+05"),
        ("relu", "relu"),
        (7, "7"),
    ],
)
def test_fmt(value, text):
    assert fmt(value) == text


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory):
    root = tmp_path_factory.mktemp("nni")
    write_experiment(root, "expa", trials=12, intermediates=3, seed=1)
    write_experiment(root, "expb", trials=8, intermediates=3, seed=2, tuner="Random")
    return root


def test_comparison_row_from_the_records(two_experiments):
    exp = load_experiment("expa", two_experiments)
    row = comparison_row(exp)
    trials = trials_table(exp)
    best = trials["default"].max()
    assert row["experiment"] == "expa" and row["algorithm"] == "TPE"
    assert row["trials"] == row["finished"] == 12 and row["early_stopped"] == 0
    assert row["best_default"] == pytest.approx(best)
    assert row["test_accuracy"] == pytest.approx(best - 0.01)
    running = trials.sort_values("sequence")["default"].cummax().to_numpy()
    first = int((running >= best - 0.005).argmax()) + 1
    assert row["trials_to_within_0.5pt"] == first
    assert metric_label(trials) == "validation accuracy"


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_compare_cli_writes_the_table_and_plot(two_experiments, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnisuite.analysis.compare",
            "expa",
            "expb",
            "--experiment-dir",
            str(two_experiments),
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "compare.md").read_text()
    assert "| expa |" in text and "| expb |" in text and "best validation accuracy" in text
    assert (tmp_path / "best_so_far.png").read_bytes()[:4] == b"\x89PNG"
    assert text.strip() in proc.stdout


def test_compare_cli_unknown_experiment_is_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnisuite.analysis.compare",
            "nope",
            "--experiment-dir",
            str(tmp_path),
        ]
        + ["--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_synthetic_experiment_reads_like_a_real_one(two_experiments):
    exp = load_experiment("expb", two_experiments)
    assert len(exp.trials) == 8 and all(t.status == "SUCCEEDED" for t in exp.trials)
    assert all(len(t.intermediates) == 3 for t in exp.trials)
    assert set(exp.trials[0].parameters) == {"features1", "features2", "lr", "batch_size"}
    assert isinstance(trials_table(exp), pd.DataFrame)


def test_permutation_importance_equals_scikit_learns():
    """The batched permutations are scikit-learn's own, scored in one prediction."""
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    from nnisuite.analysis.importance import permutation_scores

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = 2 * x[:, 0] + x[:, 1] + rng.normal(size=40) * 0.1
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(x, y)
    reference = permutation_importance(forest, x, y, n_repeats=7, random_state=3)
    baseline, scores = permutation_scores(forest, x, y, 7, 3)
    np.testing.assert_allclose(baseline - scores, reference.importances, atol=1e-12)


@pytest.mark.slow
def test_many_trials_a_bounded_sample_and_readable_plots(tmp_path):
    """1,200 trials: importance is fit on a seeded sample of 1,000 (and says so), the
    intermediate plot is the best trials over a band, and the exporter still finds lr."""
    from nnisuite.analysis.export import export_experiment
    from nnisuite.analysis.importance import MAX_TRIALS

    write_experiment(tmp_path / "nni", "big", trials=1200, intermediates=2)
    result = export_experiment("big", tmp_path / "out", tmp_path / "nni")
    assert f"seeded sample of {MAX_TRIALS} of 1200 finished trials" in result.summary
    importance = pd.read_csv(tmp_path / "out" / "importance.csv")
    assert importance.iloc[0]["parameter"] == "lr"  # the synthetic accuracy depends on lr most
    for name in ("intermediate.png", "default_per_trial.png", "param_lr.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(tmp_path / "out" / "intermediate.csv")) == 2400


@pytest.mark.slow
def test_serial_and_parallel_exports_write_the_same_tables(tmp_path, two_experiments):
    from nnisuite.analysis.export import export_experiment

    a = export_experiment("expa", tmp_path / "a", two_experiments, parallel=True)
    b = export_experiment("expa", tmp_path / "b", two_experiments, parallel=False)
    assert sorted(p.name for p in a.files) == sorted(p.name for p in b.files)
    for name in ("trials.csv", "intermediate.csv", "importance.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    none = export_experiment("expa", tmp_path / "c", two_experiments, plots=False)
    assert not [p for p in none.files if p.suffix == ".png"]
    # --no-importance: the same tables, no forest (its file and numbers), and the summary says so
    bare = export_experiment("expa", tmp_path / "d", two_experiments, plots=False, forest=False)
    assert "importance.csv" not in {p.name for p in bare.files}
    assert not (tmp_path / "d" / "importance.csv").exists()
    assert "Not computed (not asked for" in bare.summary
    assert "drop in R^2" in a.summary and "drop in R^2" not in bare.summary
    for name in ("trials.csv", "intermediate.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "d" / name).read_text()
