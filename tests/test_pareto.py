"""nnisuite.analysis.pareto against brute force (the front by pairwise dominance, the hypervolume by
cells of the coordinate grid), and the export's pareto.csv / summary / plot on databases in
NNI's schema whose trials report costs: maximizing and minimizing, and a foreign experiment
with no cost (no trade-off section)."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from nnisuite.analysis.export import export
from nnisuite.analysis.pareto import build_front, dominates, front, hypervolume, reference_for
from nnisuite.analysis.store import load_experiment
from nnisuite.models import costs
from tests.helpers.database import Database


def brute_front(points, maximize):
    return {
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, maximize) for j, q in enumerate(points) if j != i)
    }


def grid_hypervolume(points, reference, maximize):
    """The dominated area as a sum over the cells of the grid the points' coordinates make."""
    ref_obj, ref_cost = reference
    xs = sorted({p[1] for p in points if p[1] < ref_cost} | {ref_cost})
    ys = sorted({p[0] for p in points} | {ref_obj})
    area = 0.0
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2  # the cell's centre
            inside = (cy > ref_obj) if maximize else (cy < ref_obj)
            covered = any(p[1] <= cx and (p[0] >= cy if maximize else p[0] <= cy) for p in points)
            if inside and covered:
                area += (x1 - x0) * (y1 - y0)
    return area


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_front_and_hypervolume_agree_with_brute_force(seed, maximize):
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    # ties on purpose: values on a coarse grid
    points = [(rng.randint(0, 20) / 20, float(rng.randint(1, 15))) for _ in range(n)]
    if seed == 0:
        points += [points[0]]  # an exact duplicate: neither dominates the other
    members = front(points, maximize)
    assert set(members) == brute_front(points, maximize)
    assert [points[i][1] for i in members] == sorted(points[i][1] for i in members)
    ref = (0.0 if maximize else 1.05, 16.5)
    assert hypervolume(points, ref, maximize) == pytest.approx(
        grid_hypervolume(points, ref, maximize)
    )
    # only the front matters
    assert hypervolume([points[i] for i in members], ref, maximize) == pytest.approx(
        hypervolume(points, ref, maximize)
    )


def test_hypervolume_share_and_reference():
    # one trial: accuracy 0.8 at cost 10, reference cost 11: the box is 1 x 11
    f = build_front("parameters", [(0.8, 10.0)], maximize=True)
    assert f.reference.objective == 0 and f.reference.cost == pytest.approx(11.0)
    assert f.hypervolume == pytest.approx(0.8 * 1.0 / 11.0)
    # a loss (minimized, not in [0, 1]): the worst value seen is the reference
    g = build_front("parameters", [(2.0, 1.0), (3.0, 0.5)], maximize=False)
    assert g.reference.objective == 3.0 and g.reference.ideal == 2.0
    assert reference_for([0.5, 0.9], [1, 2], True).objective == 0.0
    # a maximized score beyond [0, 1] (a reward): from the worst value seen to the best
    reward = reference_for([5.0, 20.0, 12.0], [1, 2, 3], True)
    assert (reward.objective, reward.ideal) == (5.0, 20.0)


CONFIG = {
    "experimentName": "costs",
    "searchSpace": {
        "features1": {"_type": "choice", "_value": [128, 256, 512]},
        "features2": {"_type": "choice", "_value": [256, 512]},
        "value": {"_type": "uniform", "_value": [0, 1]},  # named like a pareto.csv column
    },
    "trialCommand": "python3 -m nnisuite.trials.mlp",
    "trialConcurrency": 1,
    "maxTrialNumber": 30,
    "tuner": {"name": "Random", "classArgs": {"optimize_mode": "maximize"}},
    "trainingService": {"platform": "local"},
}


def costly_database(tmp_path, mode="maximize", with_costs=True, n=24):
    config = dict(CONFIG, tuner={"name": "Random", "classArgs": {"optimize_mode": mode}})
    db = Database(tmp_path, f"costs-{mode}", config)
    rng = random.Random(7)
    for i in range(n):
        trial = f"T{i:02d}"
        f1, f2 = rng.choice([128, 256, 512]), rng.choice([256, 512])
        db.start(i * 100, trial, i, i, {"features1": f1, "features2": f2, "value": rng.random()})
        final = {"default": round(rng.uniform(0.8, 0.95), 3)}
        if with_costs:
            final |= {
                costs.PARAMETERS: 784 * f1 + f1 * f2 + f2 * 10,
                costs.latency_key(1): rng.uniform(2e-5, 9e-5),
                costs.latency_key(256): rng.uniform(1e-6, 5e-6),
                costs.LATENCY_THREADS: 2,
            }
        db.metric(i * 100 + 50, trial, i, "FINAL", final)
        db.event(i * 100 + 60, trial, "SUCCEEDED", seq=i)
    db.start(n * 100, "FAILED1", n, n, {"features1": 128, "features2": 256, "value": 0.5})
    db.event(n * 100 + 10, "FAILED1", "FAILED", seq=n)  # no final: on no front
    return db.write()


@pytest.mark.parametrize("mode", ["maximize", "minimize"])
def test_export_writes_the_front_of_every_cost_checked_against_trials_csv(tmp_path, mode):
    exp = load_experiment(str(costly_database(tmp_path, mode)), live=False)
    result = export(exp, tmp_path / "out", plots=True, parallel=False, optuna=False)
    out = tmp_path / "out"
    trials = pd.read_csv(out / "trials.csv")
    pareto = pd.read_csv(out / "pareto.csv")
    maximize = mode == "maximize"
    keys = [costs.PARAMETERS, costs.latency_key(1), costs.latency_key(256)]
    assert list(dict.fromkeys(pareto["cost"])) == keys  # threads are not a cost
    done = trials[trials["status"] == "SUCCEEDED"].reset_index(drop=True)
    for key in keys:
        points = list(zip(done["default"], done[key]))
        expected = {done["trial_id"][i] for i in brute_front(points, maximize)}
        rows = pareto[pareto["cost"] == key]
        assert set(rows["trial_id"]) == expected
        assert list(rows["value"]) == sorted(rows["value"])
        ref = reference_for([p[0] for p in points], [p[1] for p in points], maximize)
        hv = hypervolume(points, (ref.objective, ref.cost), maximize) / ref.box()
        assert f"hypervolume {hv:.4f}" in result.summary
        assert (out / f"pareto_{key}.png").stat().st_size > 0
    # the space's `value` parameter does not overwrite the cost's value column
    assert "param.value" in pareto.columns
    chosen = done[(done["features1"] == 128) & (done["features2"] == 256)]["trial_id"]
    assert set(pareto[pareto["log_choice"]]["trial_id"]) <= set(chosen)
    assert "## Trade-offs (Pareto fronts)" in result.summary


def test_an_experiment_without_costs_has_no_trade_off_section(tmp_path):
    exp = load_experiment(str(costly_database(tmp_path, with_costs=False)), live=False)
    result = export(exp, tmp_path / "out", plots=False, parallel=False, optuna=False)
    assert not (tmp_path / "out" / "pareto.csv").exists()
    assert "Trade-offs" not in result.summary


def test_costs_of_a_real_model_are_measured():
    import torch

    from nnisuite.models.mlp import MLP

    model = MLP(64, [32, 16], 10).eval()
    found = costs.measure(model, torch.zeros(1, 64))
    assert found[costs.PARAMETERS] == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert found[costs.LATENCY_THREADS] == torch.get_num_threads()
    b1, b256 = found[costs.latency_key(1)], found[costs.latency_key(256)]
    assert 0 < b256 < b1 < 1 and math.isfinite(b1)  # per sample: a batch amortises the call


def test_repeated_runs_are_compared_on_hypervolume_with_one_reference(tmp_path):
    """Two variants x 3 seeds of databases whose trials report costs: runs.csv's hypervolume
    per run, recomputed here from each run's trials.csv with the reference of all runs."""
    from nnisuite.analysis.compare import compare_groups

    groups = {"a": [], "b": []}
    for variant, n in (("a", 12), ("b", 24)):
        for seed in range(3):
            root = tmp_path / f"{variant}{seed}"
            path = costly_database(root, n=n - seed)
            groups[variant].append(str(path))
    text = compare_groups(groups, tmp_path / "out", plots=False)
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    tables = []
    for variant, paths in groups.items():
        for seed, path in enumerate(paths):
            exp = load_experiment(path, live=False)
            export(exp, tmp_path / f"x-{variant}{seed}", plots=False, parallel=False, optuna=False)
            trials = pd.read_csv(tmp_path / f"x-{variant}{seed}" / "trials.csv")
            tables.append((variant, seed, trials[trials["status"] == "SUCCEEDED"]))
    key = costs.PARAMETERS
    everything = pd.concat([t for _, _, t in tables])
    ref = reference_for(list(everything["default"]), list(everything[key]), True)
    for variant, seed, trials in tables:
        points = list(zip(trials["default"], trials[key]))
        expected = hypervolume(points, (ref.objective, ref.cost), True) / ref.box()
        row = runs[(runs["variant"] == variant) & (runs["seed"] == seed)]
        assert row[f"hypervolume_{key}"].item() == pytest.approx(expected)
    pairs = pd.read_csv(tmp_path / "out" / "pairwise_hypervolume.csv")
    assert set(pairs["cost"]) == {key, costs.latency_key(1), costs.latency_key(256)}
    assert "## Hypervolume: accuracy against parameters" in text


def test_the_optuna_bridge_carries_every_objective_and_its_name(tmp_path):
    """An experiment whose tuner optimized accuracy and size (nnisuite.study.optuna_tuner's
    objectives) becomes a two-objective study, objectives named; its best trials are the
    Pareto front computed here from the trials."""
    from nnisuite.analysis.direction import objectives
    from nnisuite.analysis.optuna import to_study

    path = costly_database(tmp_path)
    exp = load_experiment(str(path), live=False)
    exp.config["tuner"] = {
        "className": "nnisuite.study.optuna_tuner.OptunaTuner",
        "classArgs": {"sampler": "nsgaii", "objectives": ["default", "parameters"]},
    }
    study, _ = to_study(exp, objectives=objectives(exp.config))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["validation accuracy", "parameters"]
    done = [t for t in exp.trials if t.status == "SUCCEEDED"]
    points = [(t.final["default"], t.final["parameters"]) for t in done]
    expected = {done[i].trial_id for i in front(points, maximize=True)}
    assert {t.user_attrs["nni_trial_id"] for t in study.best_trials} == expected
    single, _ = to_study(exp)  # what the importance evaluators take: default alone
    assert single.metric_names == ["validation accuracy"] and len(single.directions) == 1


def test_a_compared_study_draws_every_runs_front_per_cost(tmp_path):
    """compare with plots: one pareto_<cost>.png per cost every run reports (each run's front
    in its variant's colour), beside the best-so-far bands; none for a key no trial reports."""
    from nnisuite.analysis.compare import compare_groups

    groups = {
        v: [str(costly_database(tmp_path / f"{v}{s}", n=8 + s)) for s in range(2)] for v in "ab"
    }
    compare_groups(groups, tmp_path / "out", plots=True)
    drawn = sorted(p.name for p in (tmp_path / "out").glob("pareto_*.png"))
    keys = [costs.PARAMETERS, costs.latency_key(1), costs.latency_key(256)]
    assert drawn == sorted(f"pareto_{k}.png" for k in keys)
    for name in drawn:
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("maximize", [True, False])
def test_points_beyond_the_reference_on_either_axis_add_nothing(maximize):
    """A trial costlier than the reference, or worse than its objective, dominates no part of
    the reference box, however good it is on the other axis."""
    inside = [(0.6, 2.0), (0.8, 5.0)] if maximize else [(0.4, 2.0), (0.2, 5.0)]
    ref = (0.0 if maximize else 1.0, 10.0)
    costly = (0.99, 12.0) if maximize else (0.01, 12.0)  # beyond the reference's cost
    worse = (-0.5, 1.0) if maximize else (1.5, 1.0)  # beyond the reference's objective
    alone = hypervolume(inside, ref, maximize)
    assert hypervolume([*inside, costly, worse], ref, maximize) == pytest.approx(alone)
    assert alone == pytest.approx(grid_hypervolume(inside, ref, maximize)) and alone > 0


def test_the_reference_of_accuracies_is_zero_to_one_and_of_other_scores_the_range_seen():
    from nnisuite.analysis.pareto import Reference, share

    assert reference_for([0.5, 1.0], [1, 2], True).objective == 0.0  # 1.0 is an accuracy
    assert reference_for([0.0, 0.5], [1, 2], True).ideal == 1.0  # 0.0 is one too
    assert reference_for([0.5, 1.5], [1, 2], True).objective == 0.5  # 1.5 is not
    assert reference_for([0.5, 0.9], [1, 2], False).objective == 0.9  # minimized: the worst
    flat = Reference(objective=1.0, cost=0.0, ideal=1.0)  # an empty box
    assert math.isnan(share([(1.0, 0.0)], flat, True))


def test_the_documented_defaults_maximize():
    """`front(points)`, `hypervolume(points, reference)` and `trade_offs(trials)` maximize unless
    told (accuracy, nnisuite's metric): called bare they answer as with maximize=True."""
    points = [(0.9, 1.0), (0.8, 2.0), (0.95, 3.0)]
    assert front(points) == front(points, maximize=True) == [0, 2]
    assert front(points, maximize=False) != front(points)
    ref = (0.0, 4.0)
    assert hypervolume(points, ref) == hypervolume(points, ref, maximize=True) > 0


def test_the_box_of_a_score_spans_its_worst_to_its_best(tmp_path):
    """The hypervolume share of a minimized loss: the box runs from the worst loss seen to the
    best, times the reference cost (not from 0): a front of the best loss at the least cost
    covers the whole box but the margin beyond the costliest trial."""
    g = build_front("parameters", [(2.0, 1.0), (5.0, 2.0)], maximize=False)
    assert g.reference.box() == pytest.approx((5.0 - 2.0) * 2.2)
    assert g.hypervolume == pytest.approx((2.2 - 1.0) / 2.2)


def test_trade_offs_take_succeeded_trials_only_and_the_reference_given(tmp_path):
    """A trial that reported its final and then FAILED is on no front; a reference passed for
    a cost (the one all repeated runs share) is the one used."""
    from nnisuite.analysis.pareto import Reference, common_reference, trade_offs

    db = Database(tmp_path, "failed-final", CONFIG)
    finals = [(0.80, 100), (0.90, 300), (0.99, 50)]
    for i, (acc, size) in enumerate(finals):
        db.start(i * 100, f"T{i}", i, i, {"features1": 128, "features2": 256, "value": 0.1})
        db.metric(i * 100 + 50, f"T{i}", i, "FINAL", {"default": acc, costs.PARAMETERS: size})
        db.event(i * 100 + 60, f"T{i}", "FAILED" if i == 2 else "SUCCEEDED", seq=i)
    exp = load_experiment(str(db.write()), live=False)
    (own,) = trade_offs(exp.trials)
    assert [own.trial_ids[i] for i in own.members] == ["T0", "T1"]  # T2 failed: not a point
    assert len(own.points) == 2
    given = Reference(objective=0.0, cost=1000.0, ideal=1.0)
    (shared,) = trade_offs(exp.trials, reference={costs.PARAMETERS: given})
    assert shared.reference == given
    expected = hypervolume([(0.8, 100), (0.9, 300)], (0.0, 1000.0)) / given.box()
    assert shared.hypervolume == pytest.approx(expected) != own.hypervolume
    # one run alone is compared with the reference of its own trials
    assert common_reference([own]) == own.reference


def test_pareto_csv_and_the_summary_section_as_users_read_them(tmp_path):
    """pareto.csv's columns, in order, with each row's sequence and validation accuracy those
    of its trial in trials.csv; the summary's section: its heading, one table per cost with
    only that cost's trials, the cost's values shown in its unit, the log's choice marked."""
    from nnisuite.analysis.pareto import log_choice

    assert log_choice({"features1": 128, "features2": 256, "lr": 0.1})
    assert not log_choice({"features1": 128, "features2": 512})
    exp = load_experiment(str(costly_database(tmp_path)), live=False)
    result = export(exp, tmp_path / "out", plots=False, parallel=False, optuna=False)
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    trials = pd.read_csv(tmp_path / "out" / "trials.csv").set_index("trial_id")
    own = ["cost", "trial_id", "sequence", "default", "value", "log_choice"]
    assert list(pareto.columns) == own + ["features1", "features2", "param.value"]
    for row in pareto.itertuples():
        assert row.sequence == trials.loc[row.trial_id, "sequence"]
        assert row.default == trials.loc[row.trial_id, "default"]
        assert row.value == pytest.approx(trials.loc[row.trial_id, row.cost])
        assert row.log_choice == (row.features1 == 128 and row.features2 == 256)
    lines = result.summary.splitlines()
    start = lines.index("## Trade-offs (Pareto fronts)")
    assert lines[start + 1] == "" and lines[start + 2].startswith("The trials no other trial")
    for cost in dict.fromkeys(pareto["cost"]):
        members = pareto[pareto["cost"] == cost]
        label = costs.label(cost)
        heading = lines.index(f"### {label}: {len(members)} of 24 trials on the front")
        assert lines[heading - 1] == lines[heading + 1] == ""  # markdown: blocks apart
        assert lines[heading + 2].startswith("- hypervolume ")
        assert lines[heading + 3] == ""
        table = []
        for line in lines[heading + 4 :]:
            if not line.startswith("|"):
                break
            table.append([c.strip() for c in line.strip("|").split("|")])
        header, rows = table[0], table[2:]
        assert header[:4] == ["trial_id", "sequence", "validation accuracy", label]
        assert ("log_choice" in header) == bool(members["log_choice"].any())
        assert [r[0] for r in rows] == list(members["trial_id"])  # this cost's trials only
        shown = [costs.shown(cost, v) for v in members["value"]]
        assert [float(r[3]) for r in rows] == pytest.approx(shown, rel=1e-3)
