"""Every table, plot, statistic and ranking follows the experiment's optimize mode: the same
four trials read as a maximizing and as a minimizing experiment (NNI's schema, no manager),
with the expected answers written out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from nnisuite.analysis import statistics as S
from nnisuite.analysis.compare import Run, aggregate, comparison_row
from nnisuite.analysis.export import export
from nnisuite.analysis.plots import best_so_far
from nnisuite.analysis.store import load_experiment
from tests.helpers.database import Database

FINALS = [0.5, 0.2, 0.9, 0.1]  # trials t0..t3 in order


def experiment(tmp_path, mode: str, key: str = "tuner", name: str = "TPE"):
    config = {
        "experimentName": f"toy {mode}",
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 train.py",
        "maxTrialNumber": 4,
        key: {"name": name, "classArgs": {"optimize_mode": mode}},
    }
    db = Database(tmp_path, mode, config)
    for i, value in enumerate(FINALS):
        db.start(i * 1000, f"t{i}", i, i, {"x": i / 10})
        db.metric(i * 1000 + 100, f"t{i}", i, "PERIODICAL", {"default": value + 0.05}, step=0)
        db.metric(i * 1000 + 150, f"t{i}", i, "PERIODICAL", {"default": value - 0.05}, step=1)
        db.metric(i * 1000 + 200, f"t{i}", i, "FINAL", {"default": value})
        db.event(i * 1000 + 300, f"t{i}", "SUCCEEDED", seq=i)
    return load_experiment(str(db.write()), live=False)


@pytest.mark.parametrize(
    "mode, best, order, curve, reach",
    [
        ("maximize", "t2", ["t2", "t0", "t1", "t3"], [0.5, 0.5, 0.9, 0.9], 3),
        ("minimize", "t3", ["t3", "t1", "t0", "t2"], [0.5, 0.2, 0.2, 0.1], 2),
    ],
)
def test_export_and_compare_follow_the_mode(tmp_path, mode, best, order, curve, reach):
    exp = experiment(tmp_path, mode)
    summary = export(exp, tmp_path / "out", plots=False, optuna=False).summary
    assert f"## Best trial: {best} " in summary
    ranked = summary.split("## Trials, best first")[1].split("## Best trial")[0]
    positions = [ranked.index(f"| {t} |") for t in order]
    assert positions == sorted(positions), ranked
    assert f"optimize mode: {mode}" in summary
    assert list(best_so_far(pd.read_csv(tmp_path / "out" / "trials.csv"), mode)) == curve
    row = comparison_row(exp)
    assert row["best_default"] == {"maximize": 0.9, "minimize": 0.1}[mode]
    assert row["optimize_mode"] == mode
    # within 0.5 points of the best: 0.9 first reached at trial 3; 0.1 within 0.005 only at
    # trial 4 (0.2 is 0.1 away), so reach counts trial 4 for minimize
    assert row["trials_to_within_0.5pt"] == {"maximize": 3, "minimize": 4}[mode]
    target = {"maximize": 0.9, "minimize": 0.2}[mode]
    assert S.trials_to_within(S.best_so_far(FINALS, mode), target, 0.005, mode) == reach


def test_best_intermediate_follows_the_mode(tmp_path):
    for mode, shift in (("maximize", 0.05), ("minimize", -0.05)):
        exp = experiment(tmp_path / mode, mode)
        trials = export(exp, tmp_path / mode / "out", plots=False, optuna=False).trials
        assert trials["best_intermediate"].tolist() == pytest.approx([v + shift for v in FINALS])


def test_statistics_rank_and_pick_by_the_mode():
    by_variant = {"a": [0.1, 0.2], "b": [0.3, 0.4]}
    assert S.mean_ranks(by_variant) == {"a": 2.0, "b": 1.0}
    assert S.mean_ranks(by_variant, "minimize") == {"a": 1.0, "b": 2.0}
    assert list(S.best_so_far([0.3, 0.1, 0.2], "minimize")) == [0.3, 0.1, 0.1]
    assert S.trials_to_within(S.best_so_far([0.3, 0.1, 0.2], "minimize"), 0.1, 0.005, "minimize")


def test_a_repeated_study_of_a_minimizing_tuner(tmp_path):
    low = [Run("low", s, f"l{s}", [0.3, 0.1], [None, None], [1.0, 2.0], 2.0, 2, "minimize")
           for s in range(4)]  # fmt: skip
    high = [Run("high", s, f"h{s}", [0.3, 0.6], [None, None], [1.0, 2.0], 2.0, 2, "minimize")
            for s in range(4)]  # fmt: skip
    text = aggregate(low + high, 2, tmp_path, plots=True)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs.groupby("variant")["final_best"].first().to_dict() == {"high": 0.3, "low": 0.1}
    comparison = pd.read_csv(tmp_path / "comparison.csv")
    assert list(comparison["variant"]) == ["low", "high"]  # best mean rank first
    assert comparison.set_index("variant")["mean_rank"].to_dict() == {"low": 1.0, "high": 2.0}
    assert "Optimize mode: minimize" in text
    pairs = pd.read_csv(tmp_path / "pairwise.csv")
    assert pairs.loc[0, "u"] in (0.0, 16.0)


def test_comparing_opposite_directions_is_one_clear_error(tmp_path):
    from nnisuite.analysis.compare import compare
    from nnisuite.analysis.store import ExportError

    a, b = experiment(tmp_path, "maximize"), experiment(tmp_path, "minimize")
    with pytest.raises(ExportError, match="different directions"):
        compare([a.source, b.source], tmp_path / "out", plots=False)


@pytest.mark.parametrize("name", ["Hyperband", "BOHB"])
def test_an_advisors_optimize_mode_is_the_studys(tmp_path, name):
    """Hyperband and BOHB are configured under `advisor:`, not `tuner:`: a minimizing one makes
    the lowest final the best, as it does for a tuner."""
    exp = experiment(tmp_path, "minimize", key="advisor", name=name)
    summary = export(exp, tmp_path / "out", plots=False, optuna=False).summary
    assert "## Best trial: t3 " in summary and "optimize mode: minimize" in summary


def test_what_an_experiment_optimized_is_read_from_its_tuner_or_advisor():
    from nnisuite.analysis.direction import ObjectiveError, Objectives, objectives, objectives_of

    def of(config):
        found = objectives(config)
        return found.keys, found.directions

    assert of({}) == (["default"], ["maximize"])
    minimizing = {"classArgs": {"optimize_mode": "minimize"}}
    assert of({"tuner": minimizing}) == (["default"], ["minimize"])
    assert of({"advisor": minimizing}) == (["default"], ["minimize"])  # BOHB, Hyperband
    two = {"objectives": ["default", "latency"], "directions": ["maximize", "minimize"]}
    assert of({"tuner": {"classArgs": two}}) == (two["objectives"], two["directions"])
    flipped = {**two, "directions": ["minimize", "maximize"]}  # the directions given are used
    assert of({"tuner": {"classArgs": flipped}}) == (two["objectives"], flipped["directions"])
    one = {"objectives": ["latency"], "directions": ["minimize"]}  # one objective: default
    assert of({"tuner": {"classArgs": one}}) == (["default"], ["maximize"])
    assert of({"tuner": "TPE"}) == (["default"], ["maximize"])  # not a mapping: defaults
    for keys in (["a", "a"], ["a", ""], ["a", 3]):
        with pytest.raises(ObjectiveError, match="distinct keys of the final result"):
            objectives_of("maximize", keys, ["maximize", "maximize"])
    pair = Objectives(["default", "latency"], ["maximize", "minimize"])
    assert pair.values({"default": 0.9, "latency": 2}) == [0.9, 2.0]
    assert pair.values(0.9) is None  # a bare number has no latency
    assert Objectives(["default"], ["maximize"]).values(0.9) == [0.9]
    assert Objectives(["latency"], ["minimize"]).values(0.9) is None


def test_the_small_rules_every_table_uses():
    import numpy as np

    from nnisuite.analysis.direction import best_first, running_best, scored, sign, word

    assert (word("minimize"), word("maximize")) == ("lower is better", "higher is better")
    assert (sign("minimize"), sign("maximize")) == (-1.0, 1.0)
    no_column = pd.DataFrame({"x": [1, 2]})
    assert list(scored(no_column)) == [False, False]
    assert best_first(no_column, "maximize").equals(no_column)
    assert np.allclose(running_best([0.5, None, 0.7, 0.6], "maximize"), [0.5, 0.5, 0.7, 0.7])
    assert np.allclose(running_best([0.5, None, 0.3], "minimize"), [0.5, 0.5, 0.3])
    # what NNI stored but cannot be ranked (an infinite loss, a string) is no one's best
    inf = float("inf")
    assert list(running_best([0.5, inf, 0.7], "maximize")) == [0.5, 0.5, 0.7]
    assert list(running_best([0.5, -inf, "0.1"], "minimize")) == [0.5, 0.5, 0.5]


def test_numpy_numbers_from_a_table_are_numbers():
    import numpy as np

    from nnisuite.analysis.direction import running_best, usable

    assert usable(np.int64(3)) and usable(np.float32(0.5)) and not usable(np.bool_(True))
    assert not usable(np.float64("nan")) and not usable(True) and not usable("0.9")
    column = pd.Series([1, 3, 2])  # int64: what a table of integer finals holds
    assert list(running_best(column, "maximize")) == [1.0, 3.0, 3.0]


def test_best_first_keeps_ties_in_trial_order_and_what_cannot_rank_last():
    from nnisuite.analysis.direction import best_first

    values = [0.5, "n/a", 0.9, float("nan"), 0.9, None, 0.1, True]
    df = pd.DataFrame({"trial_id": list("abcdefgh"), "default": values})
    assert list(best_first(df, "maximize")["trial_id"]) == list("ceagbdfh")
    assert list(best_first(df, "minimize")["trial_id"]) == list("gacebdfh")
    assert list(best_first(df, "maximize", column="missing")["trial_id"]) == list("abcdefgh")


def test_best_first_is_stable_over_many_ties():
    from nnisuite.analysis.direction import best_first

    values = [0.5 if i % 3 else 0.9 for i in range(60)]
    df = pd.DataFrame({"trial_id": range(60), "default": values})
    ranked = list(best_first(df, "maximize")["trial_id"])
    assert ranked == [i for i in range(60) if not i % 3] + [i for i in range(60) if i % 3]


def test_without_optimize_mode_the_tuners_own_default_decides():
    """NNI 3.0's TPE and Anneal minimize unless told (their constructors' default); Evolution
    maximizes; Random has no mode (nnisuite reads maximize); a NAS study maximizes."""
    from nnisuite.analysis.direction import direction

    assert direction({"tuner": {"name": "TPE"}}) == "minimize"
    assert direction({"tuner": {"name": "Anneal", "classArgs": {}}}) == "minimize"
    assert direction({"tuner": {"name": "Evolution"}}) == "maximize"
    assert direction({"tuner": {"name": "Random"}}) == "maximize"
    assert direction({"advisor": {"name": "TPE"}}) == "minimize"
    assert direction({"tuner": {"name": "TPE"}, "experimentType": "nas"}) == "maximize"
    assert direction({"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "sideways"}}}) == (
        "minimize"  # not a mode: the constructor's default
    )
