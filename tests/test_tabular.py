"""nnisuite.benchmarks.tabular: the grid of the 3.17 space; a table built through real NNI
experiments (a reduced grid, stopped with Ctrl-C and continued), its values against NNI's own
database; the simulated NNI on the committed digits table: its tuner told the table's values, NNI's
poll clock, an assessor's kill, Hyperband's budgets as epochs, seeds that repeat."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nnisuite.benchmarks.tabular.table import Table, TableError, grid_space, load_space_file, snap
from tests.helpers.nni import running_experiment_ids
from tests.helpers.paths import REPO
from tests.helpers.runner import wait_dead

DIGITS = REPO / "benchmarks" / "tables" / "digits"


def test_the_grid_of_the_317_space():
    space = load_space_file()
    grid = grid_space(space, lr_values=8, seeds=3)
    assert [grid[p]["_value"] for p in ("features1", "features2", "batch_size")] == [
        space[p]["_value"] for p in ("features1", "features2", "batch_size")
    ]
    lrs = grid["lr"]["_value"]
    assert len(lrs) == 8 and lrs[0] == 1e-4 and lrs[-1] == 0.1
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) / min(ratios) < 1.001  # geometric: equal steps on a log scale
    assert grid["seed"]["_value"] == [0, 1, 2]
    assert math.prod(len(s["_value"]) for s in grid.values()) == 4 * 4 * 8 * 4 * 3
    reduced = grid_space(space, lr_values=2, seeds=1, choices=1)
    assert {p: s["_value"] for p, s in reduced.items()} == {
        "features1": [128],
        "features2": [128],
        "lr": [1e-4, 0.1],
        "batch_size": [32],
        "seed": [0],
    }
    assert snap(0.003, lrs) == min(lrs, key=lambda v: abs(math.log(v / 0.003)))
    assert snap(0.0011, [0.001, 0.1]) == 0.001 and snap(0.011, [0.001, 0.1]) == 0.1  # log scale
    assert snap(300, [128, 256, 512]) == 256
    with pytest.raises(TableError, match="normal"):
        grid_space({"x": {"_type": "normal", "_value": [0, 1]}})


def database_curves(db: Path) -> dict:
    """(parameters as JSON, seed) -> per-epoch intermediate dicts, read from NNI's sqlite."""
    conn = sqlite3.connect(db)
    try:
        params = {}
        for trial, data in conn.execute(
            "SELECT trialJobId, data FROM TrialJobEvent WHERE event = 'RUNNING'"
        ):
            params[trial] = json.loads(data)["parameters"]
        curves: dict = {}
        for trial, _seq, data in conn.execute(
            "SELECT trialJobId, sequence, data FROM MetricData WHERE type = 'PERIODICAL' "
            "ORDER BY trialJobId, sequence"
        ):
            curves.setdefault(trial, []).append(json.loads(json.loads(data)))
    finally:
        conn.close()
    return {json.dumps(params[t], sort_keys=True): c for t, c in curves.items() if t in params}


def build(out: Path, nni: Path, *extra: str) -> list[str]:
    """The build command; `extra` flags replace the defaults of the same name (a flag given
    twice is an error)."""
    flags = {"--choices": "1", "--epochs": "2", "--concurrency": "1"}
    rest = list(extra)
    for i in range(0, len(rest) - 1):
        if rest[i] in flags:
            flags.pop(rest[i])
    defaults = [part for item in flags.items() for part in item]
    return [
        sys.executable,
        "-m",
        "nnisuite.benchmarks.tabular",
        "build",
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--experiment-dir",
        str(nni),
        *defaults,
        *rest,
    ]


@pytest.mark.integration
def test_a_build_through_nni_is_stopped_continued_extended_and_holds_nnis_values(tmp_path):
    out, nni = tmp_path / "table", tmp_path / "nni"
    command = build(out, nni, "--lr-values", "3", "--seeds", "2")  # 6 cells, one at a time
    # NNI's own 0.5 s polling between trials: with the event hand-over the 6 cells take about
    # 2 s, and the runner's progress line (once a second) can go from 1/6 to 6/6 before a stop
    slow = {**os.environ, "NNISUITE_HANDOVER": "poll"}
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=slow
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"trials [1-5]/6 done", line):
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + rest
    assert proc.returncode == 130, output[-3000:]
    assert "run the same command again to continue" in output
    assert not (out / "table.csv.gz").exists()
    first = json.loads((out / "build.json").read_text())["experiments"]
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    remaining = int(re.search(r"(\d+) of 6 cells to train", again.stdout).group(1))
    assert 0 < remaining < 6  # only what the stopped experiment had not finished
    experiments = json.loads((out / "build.json").read_text())["experiments"]
    assert experiments[: len(first)] == first and len(experiments) == len(first) + 1
    assert len(json.loads((out / "cells.json").read_text())) == remaining
    two_seeds = Table.load(out)
    # a third seed extends the table: its 3 cells are trained, the 6 kept as they are
    extend = build(out, nni, "--lr-values", "3", "--seeds", "3")
    third = subprocess.run(extend, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "3 of 9 cells to train" in third.stdout and "6 cells kept" in third.stdout
    assert [c["seed"] for c in json.loads((out / "cells.json").read_text())] == [2, 2, 2]
    record = json.loads((out / "build.json").read_text())
    table = Table.load(out)
    assert table.meta["extends"]["sha256"] == two_seeds.meta["sha256"]
    assert table.meta["extends"]["experiments"] == [e for e, _ in experiments]
    assert table.meta["experiments"] == [e for e, _ in record["experiments"]]
    assert len(record["experiments"]) == 1
    assert table.seeds == [0, 1, 2] and len(table.rows) == 9 and table.epochs == 2
    for key, curve in two_seeds.rows.items():
        assert table.rows[key] == curve and table.startup[key] == two_seeds.startup[key]
    # every cell's curve is what NNI's database holds for the trial of those parameters
    stored = {}
    for exp_id, _ in experiments + record["experiments"]:
        stored |= database_curves(nni / exp_id / "db" / "nni.sqlite")
    grid = table.meta["grid"]
    for (cell, seed), curve in table.rows.items():
        params = dict(zip(table.parameters, cell)) | {"seed": seed}
        nni_curve = stored[json.dumps(params, sort_keys=True)]
        assert len(curve) == len(nni_curve) == 2
        for ours, theirs in zip(curve, nni_curve):
            assert ours["val_accuracy"] == pytest.approx(theirs["default"], rel=1e-5)
            assert ours["test_accuracy"] == pytest.approx(theirs["test_accuracy"], rel=1e-5)
            assert ours["test_loss"] == pytest.approx(theirs["test_loss"], rel=1e-5)
            assert ours["epoch_s"] == pytest.approx(theirs["epoch_seconds"], rel=1e-5)
        assert 0 <= table.startup[(cell, seed)] < 60
    assert grid["lr"]["_value"] == [1e-4, 0.003162, 0.1]
    sha = table.meta["sha256"]
    # once more trains nothing and keeps the table; a grid it does not extend is refused
    fourth = subprocess.run(extend, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert fourth.returncode == 0 and "cells to train" not in fourth.stdout, fourth.stderr
    assert Table.load(out).meta["sha256"] == sha
    for other in (("--seeds", "2"), ("--seeds", "3", "--epochs", "1")):
        refused = subprocess.run(
            build(out, nni, "--lr-values", "3", *other),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2 and "another grid" in refused.stderr, refused.stderr
    for exp_id, _ in experiments + record["experiments"]:
        assert exp_id not in running_experiment_ids()
    assert wait_dead([proc.pid]) == []


def test_a_table_whose_file_changed_is_refused(tmp_path):
    for name in ("table.csv.gz", "table.json"):
        (tmp_path / name).write_bytes((DIGITS / name).read_bytes())
    raw = gzip.decompress((tmp_path / "table.csv.gz").read_bytes()).decode()
    frame = pd.read_csv(io.StringIO(raw))
    frame.loc[0, "val_accuracy"] = 0.5
    (tmp_path / "table.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    with pytest.raises(TableError, match="sha256"):
        Table.load(tmp_path)


def plan_file(tmp_path: Path, variants: dict, trials: int = 12, concurrency: int = 2) -> Path:
    base = REPO / "experiments" / "mlp_tpe_digits.yaml"
    plan = {
        "base": str(base),
        "trials": trials,
        "concurrency": concurrency,
        "epochs": 10,
        "variants": variants,
    }
    path = tmp_path / "plan.yaml"
    path.write_text(json.dumps(plan))
    return path


RECORDING = {
    "className": "tests.fixtures.recording_tuner.RecordingTuner",
    "codeDirectory": str(REPO),
    "classArgs": {"optimize_mode": "maximize"},
}


def simulated_trials(out: Path) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(gzip.decompress((out / "trials.csv.gz").read_bytes())))


def test_a_retrain_names_only_cells_of_a_whole_table(tmp_path, capsys):
    """`build --retrain FILE` trains listed cells again (the NNI side is the build's own, tested
    above): every listed cell must be one of the table's, and the table whole; refused in one
    line otherwise, before any NNI experiment starts."""
    from nnisuite.benchmarks.tabular.__main__ import main

    folder = tmp_path / "digits"
    folder.mkdir()
    for name in ("table.csv.gz", "table.json", "grid.yaml"):
        (folder / name).write_bytes((REPO / "benchmarks" / "tables" / "digits" / name).read_bytes())
    good = {"features1": 128, "features2": 128, "lr": 0.0001, "batch_size": 32, "seed": 0}
    base = ["build", "--dataset", "digits", "--epochs", "10", "--out", str(folder)]
    cases = [
        ([{**good, "lr": 0.5}], "is not a cell of this table's grid"),
        ([{"features1": 128}], "is not a cell (keys: features1, features2, lr, batch_size, seed)"),
        ([], "give a non-empty JSON list of cells"),
    ]
    for listed, message in cases:
        file = tmp_path / "cells.json"
        file.write_text(json.dumps(listed))
        assert main([*base, "--retrain", str(file)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    (tmp_path / "cells.json").write_text("[{")
    assert main([*base, "--retrain", str(tmp_path / "cells.json")]) == 2
    assert "not a JSON list" in capsys.readouterr().err
    assert not (folder / "build.json").exists()  # nothing recorded, nothing started
    # a table with cells missing: build it first
    assert main([*base, "--seeds", "4", "--retrain", str(tmp_path / "cells.json")]) == 2


def test_a_simulated_tuner_is_told_the_tables_values_for_what_it_asked(tmp_path):
    from nnisuite.benchmarks.tabular.study import simulate
    from tests.fixtures import recording_tuner

    recording_tuner.HANDED.clear()
    recording_tuner.TOLD.clear()
    plan = plan_file(tmp_path, {"rec": {"tuner": RECORDING}})
    simulate(plan, DIGITS, seeds=2, out=tmp_path / "out", workers=1, plots=False)
    table = Table.load(DIGITS)
    trials = simulated_trials(tmp_path / "out")
    assert len(trials) == 24 and set(trials["status"]) == {"SUCCEEDED"}
    # NNI's manager asks for as many trials as ended, even past its budget: a few handed out
    # at the end never run (as in NNI); every trial that ran was told
    assert len(recording_tuner.TOLD) == 24 <= len(recording_tuner.HANDED) <= 24 + 2 * 2
    handed = dict(recording_tuner.HANDED)
    for pid, value in recording_tuner.TOLD:
        params = handed[pid]
        row = trials[(trials["param.lr"] - params["lr"]).abs() < 1e-12].iloc[0]
        assert all(row[f"param.{k}"] == v for k, v in params.items() if k != "lr")
        cell = table.key(params)  # snapped here, independently of the simulator's record
        assert cell == tuple(row[f"cell.{p}"] for p in table.parameters)
        expected = table.rows[(cell, int(row["table_seed"]))][9]
        assert value["default"] == expected["val_accuracy"] == row["default"]
        assert value["test_accuracy"] == expected["test_accuracy"]
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    best = trials.groupby("seed")["default"].max()
    assert list(runs["final_best"]) == pytest.approx(list(best))


def test_the_simulated_clock_is_nnis_poll_and_the_tables_seconds(tmp_path):
    from nnisuite.benchmarks.tabular.study import simulate

    plan = plan_file(tmp_path, {"random": {"tuner": {"name": "Random"}}}, trials=8, concurrency=1)
    simulate(plan, DIGITS, seeds=1, out=tmp_path / "out", workers=1, plots=False)
    table = Table.load(DIGITS)
    trials = simulated_trials(tmp_path / "out").sort_values("sequence")
    assert trials["start_s"].iloc[0] == 0
    for prev, (_, row) in zip([None, *trials.itertuples()], trials.iterrows()):
        cell = tuple(row[f"cell.{p}"] for p in table.parameters)
        key = (cell, int(row["table_seed"]))
        seconds = table.startup[key] + sum(r["epoch_s"] for r in table.rows[key][:10])
        assert row["end_s"] == pytest.approx(row["start_s"] + seconds, abs=2e-3)
        if prev is not None:  # asked at the first poll after the end, submitted at the next
            asked = math.ceil(prev.end_s / 0.5 - 1e-9) * 0.5
            assert row["start_s"] == pytest.approx(asked + 0.5, abs=2e-3)


def test_a_time_budget_cuts_every_run_at_the_same_simulated_second(tmp_path):
    """--max-seconds: the same run, cut in the middle of its last trial: the trials that ended
    by then as before, the ones running then cut without a final, none started after; the
    run's wall is the budget."""
    from nnisuite.benchmarks.tabular.study import simulate

    plan = plan_file(tmp_path, {"random": {"tuner": {"name": "Random"}}}, trials=8, concurrency=2)
    simulate(plan, DIGITS, seeds=1, out=tmp_path / "full", workers=1, plots=False)
    full = simulated_trials(tmp_path / "full").set_index("sequence").sort_values("end_s")
    last = full.iloc[-1]
    budget = round((last["start_s"] + last["end_s"]) / 2, 3)
    assert last["start_s"] < budget < last["end_s"]
    simulate(
        plan, DIGITS, seeds=1, out=tmp_path / "cut", workers=1, plots=False, max_seconds=budget
    )
    cut = simulated_trials(tmp_path / "cut").set_index("sequence")
    assert (cut["start_s"] < budget).all() and set(full.index) >= set(cut.index)
    ended = cut[cut["status"] == "SUCCEEDED"]
    assert (ended["end_s"] <= budget).all() and len(ended)
    pd.testing.assert_frame_equal(ended, full.loc[ended.index])
    assert set(full.index[full["end_s"] <= budget]) == set(ended.index)  # none lost
    running = cut[cut["status"] != "SUCCEEDED"]
    assert last.name in running.index and (running["status"] == "USER_CANCELED").all()
    assert running["default"].isna().all() and (running["end_s"] == budget).all()
    runs = pd.read_csv(tmp_path / "cut" / "runs.csv")
    assert runs["wall_s"].tolist() == [budget] and runs["final_best"][0] == ended["default"].max()


def test_an_assessor_stops_trials_without_a_final_and_hyperband_budgets_are_epochs(tmp_path):
    from nnisuite.benchmarks.tabular.study import simulate

    median = {"name": "Medianstop", "classArgs": {"optimize_mode": "maximize", "start_step": 2}}
    hyperband = {
        "className": "nnisuite.nni_patches.tuners.Hyperband",
        "codeDirectory": str(REPO),
        "classArgs": {"optimize_mode": "maximize", "R": 9, "eta": 3},
    }
    variants = {"median": {"tuner": {"name": "Random"}, "assessor": median}}
    variants["hyperband"] = {"tuner": hyperband}
    plan = plan_file(tmp_path, variants, trials=20)
    simulate(plan, DIGITS, seeds=2, out=tmp_path / "out", workers=2, plots=False)
    table = Table.load(DIGITS)
    trials = simulated_trials(tmp_path / "out")
    stopped = trials[(trials["variant"] == "median") & (trials["status"] == "EARLY_STOPPED")]
    assert len(stopped) > 0 and stopped["default"].isna().all()
    assert (stopped["intermediates"] >= 2).all() and (stopped["intermediates"] < 10).all()
    for _, row in stopped.iterrows():  # it ended at the epoch it was stopped
        key = (tuple(row[f"cell.{p}"] for p in table.parameters), int(row["table_seed"]))
        ran = table.startup[key] + sum(
            r["epoch_s"] for r in table.rows[key][: row["intermediates"]]
        )
        assert row["end_s"] == pytest.approx(row["start_s"] + ran, abs=2e-3)
    hb = trials[trials["variant"] == "hyperband"]
    assert set(hb["epochs"]) <= {1, 3, 9} and len(set(hb["epochs"])) > 1
    for _, row in hb.iterrows():
        key = (tuple(row[f"cell.{p}"] for p in table.parameters), int(row["table_seed"]))
        assert row["default"] == table.rows[key][row["epochs"] - 1]["val_accuracy"]


def test_a_seed_repeats_a_simulated_run_and_the_files_are_repeats(tmp_path):
    from nnisuite.benchmarks.tabular.study import simulate

    variants = {"tpe": {"tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}}}
    plan = plan_file(tmp_path, variants, trials=10)
    for out in ("a", "b"):
        simulate(plan, DIGITS, seeds=3, out=tmp_path / out, workers=2, plots=False)
    a, b = simulated_trials(tmp_path / "a"), simulated_trials(tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    by_seed = [tuple(g["param.lr"]) for _, g in a.groupby("seed")]
    assert len(set(by_seed)) == 3  # another seed, other suggestions
    runs = pd.read_csv(tmp_path / "a" / "runs.csv")
    for column in ("variant", "seed", "final_best", "auc", "wall_s", "trials"):
        assert column in runs  # nnisuite.study.repeat's columns
    assert (tmp_path / "a" / "pairwise.csv").is_file()


def test_the_command_line_sets_trials_and_the_trials_training_seed(tmp_path):
    from nnisuite.benchmarks.tabular.__main__ import main

    plan = plan_file(tmp_path, {"random": {"tuner": {"name": "Random"}}}, trials=12)
    out = tmp_path / "out"
    argv = ["run", str(plan), "--table", str(DIGITS), "--seeds", "3", "--out", str(out)]
    assert main([*argv, "--max-trials", "5", "--trial-seed", "study", "--no-plots"]) == 0
    trials = simulated_trials(out)
    assert (trials.groupby("seed").size() == 5).all()
    assert (trials["table_seed"] == trials["seed"]).all()  # every trial trains with its run's
    assert main([*argv[:4], "--seeds", "4", "--out", str(out), "--trial-seed", "study"]) == 2
    short = [*argv[:-1], str(tmp_path / "short"), "--max-trials", "2", "--no-plots"]
    assert main([*short, "--epochs", "3"]) == 0  # every trial ends at the table's 3rd epoch
    table = Table.load(DIGITS)
    for _, row in simulated_trials(tmp_path / "short").iterrows():
        cell = tuple(row[f"cell.{p}"] for p in table.parameters)
        assert row["default"] == table.rows[(cell, int(row["table_seed"]))][2]["val_accuracy"]
    assert main([*short, "--epochs", "11"]) == 2  # the table has 10


def test_how_many_seeds_see_two_variants_apart(tmp_path, capsys):
    """`seeds` on a runs.csv: a clear difference is seen by 10 seeds always, none by 3 (a
    Mann-Whitney test of 3 against 3 cannot reach p < 0.05), and two variants drawn from one
    distribution are seen apart about as often as alpha says."""
    import numpy as np

    from nnisuite.benchmarks.tabular.__main__ import main

    rng = np.random.default_rng(1)
    rows = [("good", s, 0.95 + 0.005 * rng.standard_normal()) for s in range(40)]
    rows += [("bad", s, 0.90 + 0.005 * rng.standard_normal()) for s in range(40)]
    rows += [("twin", s, 0.90 + 0.005 * rng.standard_normal()) for s in range(40)]
    runs = tmp_path / "runs"
    runs.mkdir()
    pd.DataFrame(rows, columns=["variant", "seed", "final_best"]).to_csv(runs / "runs.csv")
    assert main(["seeds", str(runs), "--variants", "good,bad", "--out", str(tmp_path / "a")]) == 0
    apart = pd.read_csv(tmp_path / "a" / "seeds.csv").set_index("seeds")["detected"]
    assert list(apart.index) == [3, 5, 10, 15, 20, 30]  # sizes up to the runs there are
    assert apart[3] == 0 and apart[10] == 1
    assert "| 10 | 100% |" in (tmp_path / "a" / "seeds.md").read_text()
    code = main(["seeds", str(runs), "--variants", "bad,twin", "--out", str(tmp_path / "b")])
    assert code == 0
    same = pd.read_csv(tmp_path / "b" / "seeds.csv").set_index("seeds")["detected"]
    assert same[30] < 0.15  # 0.05 expected; never 1 as for a real difference
    capsys.readouterr()
    assert main(["seeds", str(runs), "--variants", "good,none", "--out", str(tmp_path / "c")]) == 2
    assert "variant 'none': 0 run(s)" in capsys.readouterr().err


def test_a_plan_for_another_dataset_is_refused_whoever_names_it(tmp_path):
    """The table is of digits: a plan whose trials train on Fashion-MNIST (its base's trial
    command, the plan's `dataset`, or --dataset) is refused before any run, naming both."""
    from nnisuite.benchmarks.tabular.study import simulate

    plan = plan_file(tmp_path, {"random": {"tuner": {"name": "Random"}}}, trials=2)
    simulate(plan, DIGITS, 1, tmp_path / "ok", workers=1, plots=False, dataset="digits")
    title = (tmp_path / "ok" / "comparison.md").read_text().splitlines()[0]
    assert "plan's variants, trials on digits" in title, title  # not the plan's own title
    with pytest.raises(TableError, match="trains on fashion-mnist; the table is of digits"):
        simulate(plan, DIGITS, 1, tmp_path / "x", workers=1, plots=False, dataset="fashion-mnist")
    base = yaml.safe_load((REPO / "experiments" / "mlp_tpe_digits.yaml").read_text())
    base["trialCommand"] = base["trialCommand"].replace("digits", "fashion-mnist")
    base["searchSpaceFile"] = str(REPO / "search_spaces" / "mlp_tpe.yaml")
    base["trialCodeDirectory"] = str(REPO)
    (tmp_path / "fashion.yaml").write_text(yaml.safe_dump(base))
    raw = json.loads(plan.read_text())
    plan.write_text(json.dumps({**raw, "base": str(tmp_path / "fashion.yaml")}))
    with pytest.raises(TableError, match="trains on fashion-mnist; the table is of digits"):
        simulate(plan, DIGITS, seeds=1, out=tmp_path / "y", workers=1, plots=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
