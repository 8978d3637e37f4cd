"""nnisuite.analysis.statistics against values computed by hand on tiny tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnisuite.analysis import statistics as S


def test_best_so_far_auc_and_trials_to_within():
    curve = S.best_so_far([0.5, 0.7, 0.6, 0.8])
    assert curve.tolist() == [0.5, 0.7, 0.7, 0.8]
    assert S.auc(curve, 4) == pytest.approx((0.5 + 0.7 + 0.7 + 0.8) / 4)
    # a run with 4 finished trials of a budget of 6 keeps its last value for the missing two
    assert S.auc(curve, 6) == pytest.approx((0.5 + 0.7 + 0.7 + 0.8 + 0.8 + 0.8) / 6)
    assert S.trials_to_within(curve, 0.8) == 4
    assert S.trials_to_within(curve, 0.704) == 2  # 0.7 >= 0.704 - 0.005
    assert S.trials_to_within(curve, 0.9) is None


def test_mean_and_standard_error():
    mean, se = S.mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert se == pytest.approx(math.sqrt(((1.5**2 + 0.5**2) * 2) / 3) / 2)  # std ddof=1 / sqrt(4)
    one = S.mean_se([1.0])
    assert one[0] == 1.0 and math.isnan(one[1])
    empty = S.mean_se([])
    assert math.isnan(empty[0]) and math.isnan(empty[1])
    assert S.mean_se([None, math.nan, 2.0, 4.0]) == (3.0, pytest.approx(1.0))  # gaps dropped


def test_ranks_seed_by_seed_ties_averaged():
    by_variant = {"a": [0.9, 0.8, 0.7], "b": [0.8, 0.8, 0.9], "c": [0.7, 0.6, 0.8]}
    ranks = S.seed_ranks(by_variant)
    assert ranks == {"a": [1.0, 1.5, 3.0], "b": [2.0, 1.5, 1.0], "c": [3.0, 3.0, 2.0]}
    assert S.mean_ranks(by_variant) == {
        "a": pytest.approx(5.5 / 3),
        "b": 1.5,
        "c": pytest.approx(8 / 3),
    }


def test_holm_by_hand():
    # sorted p: 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert S.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert S.holm([0.5, 0.9]) == [1.0, 1.0]
    assert S.holm([0.6, 0.7]) == [1.0, 1.0]  # 2 * 0.6 = 1.2: capped at 1
    # step-down monotone: 3 * 0.01 = 0.03, then 2 * 0.011 = 0.022 lifted to 0.03
    assert S.holm([0.01, 0.011, 0.5]) == pytest.approx([0.03, 0.03, 0.5])


def test_mann_whitney_u_by_hand():
    """x = [1, 2, 3], y = [4, 5, 6]: every y beats every x: U_x = 0, U_y = 9; exact two-sided
    p = 2 / C(6, 3) = 0.1."""
    (row,) = S.pairwise_mann_whitney({"x": [1.0, 2.0, 3.0], "y": [4.0, 5.0, 6.0]})
    assert (
        row["u"] == 0.0 and row["p"] == pytest.approx(0.1) and row["p_holm"] == pytest.approx(0.1)
    )
    rows = S.pairwise_mann_whitney({"x": [1, 2, 3], "y": [4, 5, 6], "z": [1, 2, 3]})
    assert [(r["variant_a"], r["variant_b"]) for r in rows] == [("x", "y"), ("x", "z"), ("y", "z")]
    # p = [0.1, 1.0, 0.1]; Holm: sorted 0.1, 0.1, 1.0 -> 3 * 0.1, max(0.3, 2 * 0.1), 1.0
    assert [r["p_holm"] for r in rows] == pytest.approx([0.3, 1.0, 0.3])


def test_mann_whitney_with_ties_by_hand():
    """x = [1, 2, 2], y = [2, 3, 4]: U_x counts pairs x > y plus half the ties: 0 + 0.5 + 0.5
    = 1. With ties scipy uses the normal approximation, tie-corrected, with continuity: sigma^2
    = n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1))) = 9/12 * (7 - 24/30) = 4.65, z =
    (|1 - 4.5| - 0.5) / sqrt(4.65), p = erfc(z / sqrt 2)."""
    (row,) = S.pairwise_mann_whitney({"x": [1.0, 2.0, 2.0], "y": [2.0, 3.0, 4.0]})
    z = (abs(1 - 4.5) - 0.5) / math.sqrt(4.65)
    assert row["u"] == 1.0
    assert row["p"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    assert row["p_holm"] == row["p"]
    reverse = S.pairwise_mann_whitney({"y": [2.0, 3.0, 4.0], "x": [1.0, 2.0, 2.0]})[0]
    assert reverse["u"] == 8.0 and reverse["p"] == pytest.approx(row["p"])  # U_y = 9 - U_x


def test_padding_an_empty_run():
    assert np.isnan(S.padded(np.array([]), 3)).all()
    assert S.padded(np.array([0.1, 0.2, 0.3]), 2).tolist() == [0.1, 0.2]
    assert S.padded(np.array([0.1]), 3).tolist() == [0.1, 0.1, 0.1]


def test_a_variant_without_runs_is_left_out_of_the_pairs_and_ranks_skip_missing_seeds():
    assert S.pairwise_mann_whitney({"a": [1.0, 2.0], "b": []}) == []
    ranks = S.seed_ranks({"a": [0.9, 0.1, 0.5], "b": [0.8, 0.2]})  # b has no third seed
    assert ranks == {"a": [1.0, 2.0], "b": [2.0, 1.0]}


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_compare_groups_writes_the_tables_other_tools_read(tmp_path):
    import subprocess
    import sys

    import pandas as pd

    from nnisuite.benchmarks.nni_db import write_experiment
    from tests.helpers.paths import REPO

    for i in range(3):
        write_experiment(tmp_path / "nni", f"a{i}", trials=10, intermediates=1, seed=i)
        write_experiment(tmp_path / "nni", f"b{i}", trials=10, intermediates=1, seed=10 + i)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnisuite.analysis.compare",
            "--group",
            "a=a0,a1,a2",
            "--group",
            "b=b0,b1,b2",
            "--experiment-dir",
            str(tmp_path / "nni"),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert list(runs.columns)[:8] == [
        "variant",
        "seed",
        "experiment_id",
        "final_best",
        "final_best_test",
        "auc",
        "trials_to_within",
        "wall_s",
    ]
    assert len(runs) == 6 and set(runs["experiment_id"]) == {
        f"{v}{i}" for v in "ab" for i in range(3)
    }
    comparison = pd.read_csv(tmp_path / "o" / "comparison.csv")
    for column in (
        "variant",
        "runs",
        "final_best_mean",
        "final_best_se",
        "auc_mean",
        "mean_rank",
        "wall_s_mean",
    ):
        assert column in comparison.columns
    a = runs[runs["variant"] == "a"]["final_best"]
    row = comparison.set_index("variant").loc["a"]
    assert row["final_best_mean"] == pytest.approx(a.mean())
    assert row["final_best_se"] == pytest.approx(a.std(ddof=1) / math.sqrt(3))
    # ranks by hand: per seed, the variant with the higher final best ranks 1
    a_best = runs[runs["variant"] == "a"].sort_values("seed")["final_best"].tolist()
    b_best = runs[runs["variant"] == "b"].sort_values("seed")["final_best"].tolist()
    a_ranks = [1.0 if x > y else 2.0 if x < y else 1.5 for x, y in zip(a_best, b_best)]
    ranks = comparison.set_index("variant")["mean_rank"]
    assert ranks["a"] == pytest.approx(sum(a_ranks) / 3)
    assert ranks["b"] == pytest.approx(3 - sum(a_ranks) / 3)
    pairs = pd.read_csv(tmp_path / "o" / "pairwise.csv")
    assert list(pairs.columns) == ["variant_a", "variant_b", "u", "p", "p_holm"] and len(pairs) == 1
    # U of a by hand: pairs where a's run beats b's, ties counted half; one pair: Holm = p
    u = sum((x > y) + 0.5 * (x == y) for x in a_best for y in b_best)
    assert pairs.loc[0, "u"] == u and pairs.loc[0, "p_holm"] == pytest.approx(pairs.loc[0, "p"])
    if u in (0, 9):  # complete separation of 3 against 3: the exact p is 2 / C(6, 3)
        assert pairs.loc[0, "p"] == pytest.approx(0.1)
    assert "Method:" in (tmp_path / "o" / "comparison.md").read_text()
    for png in ("best_so_far_mean.png", "best_so_far_time.png"):
        assert (tmp_path / "o" / png).read_bytes()[:4] == b"\x89PNG"
