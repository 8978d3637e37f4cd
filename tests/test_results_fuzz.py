"""The results tools on generated NNI experiments: random search spaces of every `_type` NNI
accepts (nested choices, mixed-type and unicode choices), both optimize modes, finals as floats,
ints and dicts with random keys (every column name the export writes among them), trials with
intermediates only, failed trials with and without a final, stopped ones, unicode names; all
written in NNI's own database schema (tests.helpers.database). For each experiment the export,
compare and the Optuna bridge must end without a traceback (a clear ExportError / BridgeError is
allowed where NNI's data cannot be expressed), and every value of trials.csv, of summary.md's
best trial and of the Optuna study must equal what this file's own reading of what it wrote
says, computed here without the code under test."""

from __future__ import annotations

import json
import math
import random
import re

import pandas as pd
import pytest

from nnisuite.analysis.compare import compare
from nnisuite.analysis.export import export
from nnisuite.analysis.optuna import BridgeError, to_study
from nnisuite.analysis.store import ExportError, load_experiment
from nnisuite.analysis.tables import fmt
from tests.helpers.database import Database

EXPERIMENTS = 120
COLUMNS = [  # every column name trials.csv has of its own
    "trial_id", "sequence", "status", "default", "intermediate_count", "best_intermediate",
    "start_time", "end_time", "duration_s", "restarts",
]  # fmt: skip
NAMES = ["lr", "batch_size", "größe", "层数", "status", "default", "duration_s", "mode", "w"]
CHOICES = [1, 2, 2.5, "1", "a", "ü", True, False, 0, 'x, "y"', 1.0]
OPTUNA_TYPES = {"choice", "uniform", "loguniform", "randint", "quniform"}
ACTIVE = {"WAITING", "RUNNING"}


# ---------------------------------------------------------------- generating


def spec_of(rng: random.Random, depth: int = 0) -> dict:
    kinds = ["choice", "uniform", "loguniform", "quniform", "randint", "normal", "qnormal"]
    kinds += ["lognormal", "qlognormal", "qloguniform"] + (["nested"] * 2 if depth == 0 else [])
    kind = rng.choice(kinds)
    if kind == "choice":
        values = []
        for v in rng.sample(CHOICES, rng.randint(2, 5)):
            if not any(type(v) is type(w) and v == w for w in values):
                values.append(v)
        return {"_type": "choice", "_value": values}
    if kind == "nested":
        branches = []
        for name in rng.sample(["small", "big", "größer"], 2):
            inner = {f"{name[:2]}_{i}": spec_of(rng, 1) for i in range(rng.randint(0, 2))}
            branches.append({"_name": name, **inner})
        return {"_type": "choice", "_value": branches}
    if kind in ("uniform", "randint"):
        low = rng.choice([0, 1, -3])
        return {"_type": kind, "_value": [low, low + rng.choice([1, 5, 10])]}
    if kind in ("loguniform", "qloguniform"):
        value = [1e-4, 0.1] if kind == "loguniform" else [1, 100, 5]
        return {"_type": kind, "_value": value}
    if kind == "quniform":
        return {"_type": kind, "_value": rng.choice([[1, 10, 2], [0, 10, 2], [0.5, 2.0, 0.25]])}
    if kind in ("normal", "lognormal"):
        return {"_type": kind, "_value": [0, 1]}
    return {"_type": kind, "_value": [0, 1, 0.5]}  # qnormal, qlognormal


def sample(rng: random.Random, spec: dict):
    """A value as NNI's tuners give it."""
    kind, value = spec["_type"], spec["_value"]
    if kind == "choice":
        pick = rng.choice(value)
        if isinstance(pick, dict):
            return {k: (v if k == "_name" else sample(rng, v)) for k, v in pick.items()}
        return pick
    if kind == "uniform":
        return rng.uniform(value[0], value[1])
    if kind == "randint":
        return rng.randrange(value[0], value[1])
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(value[0]), math.log(value[1])))
    if kind == "quniform":
        low, high, q = value
        return min(max(round(rng.uniform(low, high) / q) * q, low), high)
    if kind == "qloguniform":
        low, high, q = value
        x = math.exp(rng.uniform(math.log(low), math.log(high)))
        return min(max(round(x / q) * q, low), high)
    if kind in ("normal", "qnormal"):
        x = rng.gauss(value[0], value[1])
        return round(x / value[2]) * value[2] if kind == "qnormal" else x
    x = math.exp(rng.gauss(value[0], value[1]))
    return round(x / value[2]) * value[2] if kind == "qlognormal" else x


def final_of(rng: random.Random):
    """A final result as trials report it: a float, an int, or a dict with any keys."""
    form = rng.choice(["float", "int", "dict", "dict", "dict", "no_default"])
    value = rng.choice([rng.random(), rng.uniform(1, 20), 0.5, 0.5])
    if form == "float":
        return value
    if form == "int":
        return rng.randint(0, 9)
    extra = {}
    for key in rng.sample([*COLUMNS, *NAMES, "test_accuracy", "métrique", "step"], 3):
        if key != "default":
            extra[key] = rng.choice([rng.random(), 7, "converged", True, "ü"])
    if form == "no_default":
        return extra
    return {"default": value, **extra}


def generate(root, index: int) -> dict:
    """One experiment written to root; returns what was written (the ground truth)."""
    rng = random.Random(index)
    names = rng.sample(NAMES, rng.randint(1, 4))
    space = {name: spec_of(rng) for name in names}
    mode = rng.choice(["maximize", "minimize"])
    config = {
        "experimentName": rng.choice(["fuzz", "Größe ü 实验", "a|b"]),
        "experimentType": "hpo",
        "searchSpace": space,
        "trialCommand": "python3 train.py",
        "trialConcurrency": 2,
        "maxTrialNumber": 8,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": mode}},
        "trainingService": {"platform": "local"},
    }
    db = Database(root, f"fuzz{index}", config)
    intermediates_only = rng.random() < 0.15
    trials = []
    for i in range(rng.randint(0, 8)):
        tid = f"T{i}{rng.choice(['a', 'B'])}"
        params = {name: sample(rng, spec) for name, spec in space.items()}
        status = rng.choice(["SUCCEEDED"] * 4 + ["FAILED", "EARLY_STOPPED", "RUNNING", "WAITING"])
        final = None if intermediates_only or rng.random() < 0.2 else final_of(rng)
        t0 = 1000 * i
        db.event(t0, tid, "WAITING", seq=i)
        if status != "WAITING":
            db.start(t0 + 10, tid, i, i, params)
        steps = []
        for step in range(rng.randint(0, 3)):
            value = rng.random()
            steps.append(value)
            data = value if rng.random() < 0.5 else {"default": value, "trial_id": "mine"}
            db.metric(t0 + 100 + step, tid, i, "PERIODICAL", data, step=step)
        if final is not None and status != "WAITING":
            db.metric(t0 + 500, tid, i, "FINAL", final)
        else:
            final = None
        if status not in ACTIVE:
            db.event(t0 + 600, tid, status, seq=i)
        recorded = params if status != "WAITING" else {}  # a trial never started has none
        trials.append({"id": tid, "params": recorded, "status": status, "final": final})
    db.write()
    return {"config": config, "mode": mode, "trials": trials, "path": db.path}


# ---------------------------------------------------------------- an independent reading


def flat(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def default_of(final):
    if isinstance(final, dict):
        return final.get("default")
    return final


def status_of(trial) -> str:
    if trial["status"] in ACTIVE:  # no end recorded, manager gone
        return "SUCCEEDED" if default_of(trial["final"]) is not None else "INTERRUPTED"
    return trial["status"]


def expected_best(truth):
    """First trial (in order) with the best numeric final `default`."""
    scored = [
        (t, default_of(t["final"]))
        for t in truth["trials"]
        if isinstance(default_of(t["final"]), (int, float))
    ]
    if not scored:
        return None
    pick = min if truth["mode"] == "minimize" else max
    best = pick(v for _, v in scored)
    return next(t for t, v in scored if v == best)


def same(text: str, value, as_json: bool) -> bool:
    """A trials.csv cell (read as text) against the value written."""
    if value is None:
        return text == ""
    if as_json:
        decoded = json.loads(text)
        return type(decoded) is type(value) and decoded == value
    if isinstance(value, bool):
        return text == str(value)
    if isinstance(value, (int, float)):
        return text != "" and float(text) == float(value)
    return text == value


# ---------------------------------------------------------------- the test


def check_trials_csv(truth, out) -> None:
    table = pd.read_csv(out / "trials.csv", dtype=str, keep_default_na=False)
    reserved = set(COLUMNS)
    assert list(table["trial_id"]) == [t["id"] for t in truth["trials"]]
    names = {n for t in truth["trials"] for n in flat(t["params"])}
    for name in names:
        column = f"param.{name}" if name in reserved else name
        assert column in table.columns, (column, list(table.columns))
        values = [flat(t["params"]).get(name) for t in truth["trials"]]
        kinds = {isinstance(v, str) for v in values if v is not None}
        for text, value in zip(table[column], values):
            assert same(text, value, len(kinds) > 1), (column, text, value)
    for row, trial in zip(table.to_dict("records"), truth["trials"]):
        assert row["status"] == status_of(trial), (row, trial)
        assert same(row["default"], default_of(trial["final"]), False), (row, trial)
        if isinstance(trial["final"], dict):
            taken = reserved | {f"param.{n}" if n in reserved else n for n in names}
            for key, value in trial["final"].items():
                if key == "default":
                    continue
                column = f"metric.{key}" if key in taken else key
                assert same(row[column], value, False), (column, row[column], value)


def check_summary(truth, out) -> None:
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "\\u00" not in summary  # unicode as itself
    best = expected_best(truth)
    if best is None:
        assert "## Best trial" not in summary
        return
    header = re.search(r"## Best trial: (\S+) \(", summary)
    assert header and header.group(1) == best["id"], (header, best["id"], truth["mode"])
    block = summary.split("## Best trial")[1].split("```json")[1].split("```")[0]
    assert json.loads(block) == best["params"]  # as the trial got them (nested, not flat)


def check_optuna(truth, exp) -> None:
    kinds = set()
    for spec in truth["config"]["searchSpace"].values():
        nested = (
            any(isinstance(v, dict) for v in spec["_value"]) if spec["_type"] == "choice" else False
        )
        kinds.add("nested" if nested else spec["_type"])
    inexpressible = kinds - OPTUNA_TYPES - {"nested"}
    try:
        study, notes = to_study(exp)
    except BridgeError as exc:
        assert inexpressible, f"refused an expressible space: {exc}"
        assert any(k in str(exc) for k in inexpressible)
        return
    assert not inexpressible, f"accepted {inexpressible}"
    assert not [n for n in notes if "outside its distribution" in n], notes
    assert study.direction.name.lower() == truth["mode"]
    assert len(study.trials) == len(truth["trials"])
    for ot, trial in zip(study.trials, truth["trials"]):
        value = default_of(trial["final"])
        if isinstance(value, (int, float)):
            assert ot.state.name == "COMPLETE" and ot.value == value, (ot, trial)
        else:
            assert ot.state.name in ("FAIL", "PRUNED"), (ot.state, trial)
        for name, given in flat(trial["params"]).items():
            held = ot.params[name]
            if isinstance(held, str) and not isinstance(given, str):
                held = json.loads(held)  # a choice held as JSON text (true and 1 apart)
            elif isinstance(held, str) and held.startswith('"') and given != held:
                held = json.loads(held)
            assert type(held) is type(given) or float(held) == float(given), (name, held, given)
            assert held == given, (name, held, given)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return root, [generate(root, i) for i in range(EXPERIMENTS)]


@pytest.mark.slow
def test_export_compare_and_optuna_read_every_generated_experiment(generated, tmp_path):
    root, truths = generated
    for i, truth in enumerate(truths):
        exp = load_experiment(str(truth["path"]), live=False)
        out = tmp_path / f"e{i}"
        # the plots (0.3 s) on every 8th, the forest (0.3 s) on every other: each still meets
        # 15 / 60 of the odd experiments; the tables and the summary on all of them
        export(exp, out, plots=i % 8 == 0, parallel=False, optuna=False, forest=i % 2 == 1)
        check_trials_csv(truth, out)
        check_summary(truth, out)
        check_optuna(truth, exp)
        try:
            compare(
                [str(truth["path"]), str(truths[i - 1]["path"])], tmp_path / f"c{i}", plots=False
            )
        except ExportError as exc:
            assert "different directions" in str(exc) and truths[i - 1]["mode"] != truth["mode"]
    counts = {"nested": 0, "minimize": 0, "trials": 0}
    for truth in truths:
        counts["trials"] += len(truth["trials"])
        counts["minimize"] += truth["mode"] == "minimize"
        counts["nested"] += any(
            s["_type"] == "choice" and any(isinstance(v, dict) for v in s["_value"])
            for s in truth["config"]["searchSpace"].values()
        )
    print(f"\nFUZZ results: {len(truths)} experiments, {counts}")
    assert counts["nested"] and counts["minimize"] and counts["trials"] > 100


@pytest.mark.slow
def test_the_command_lines_on_generated_experiments(generated, tmp_path, capsys):
    """Their command lines (each module's main, as `python -m` runs it; the `python -m` wrapper
    itself: test_cli_fuzz): exit 0, or one line and exit 2; never an exception. In this
    process, the export --serial (no forked workers from a test worker's threads)."""
    import importlib

    root, truths = generated
    for i, truth in enumerate(truths[:6]):
        for module, extra in (
            ("nnisuite.analysis.export", ["--out", str(tmp_path / f"x{i}"), "--serial"]),
            ("nnisuite.analysis.optuna", ["--storage", f"sqlite:///{tmp_path / f'o{i}.db'}"]),
            (
                "nnisuite.analysis.compare",
                [str(truths[i + 1]["path"]), "--out", str(tmp_path / f"c{i}")],
            ),
        ):
            main = importlib.import_module(module).main
            try:
                code = main([str(truth["path"]), *extra]) or 0
            except SystemExit as exc:
                code = exc.code
            stderr = capsys.readouterr().err
            if code:
                assert code == 2 and len(stderr.strip().splitlines()) == 1, (module, stderr)


# ---------------------------------------------------------------- through a real NNI manager

ODD = [0.5, 0.25, 1, 0, -3, 2**40, 1e300, -1e300, math.nan, math.inf, -math.inf, "n/a", "0.9",
       True, None, "ü"]  # fmt: skip
ODD_KEYS = ["status", "metric.status", "step", "trial_id", "größe", "层数", "duration_s", "a|b"]
REPORTING_TRIAL = """
import json, sys
import nni
p = nni.get_next_parameter()
plan = json.load(open("plans.json"))[p["i"]]
for value in plan["intermediates"]:
    nni.report_intermediate_result(value)
for value in plan["finals"]:
    nni.report_final_result(value)
"""


def report_of(rng: random.Random, intermediate: bool):
    """A value or a dict as a trial reports it: odd values, `step`, colliding and unicode keys."""
    value = rng.choice(ODD)
    if rng.random() < 0.4:
        return value
    extra = {k: rng.choice(ODD) for k in rng.sample(ODD_KEYS, rng.randint(1, 3))}
    if intermediate and rng.random() < 0.5:
        extra["step"] = rng.randint(0, 9)  # the epoch, as users report it
    return {"default": value, **extra} if rng.random() < 0.85 else extra


def plans(n: int) -> list[dict]:
    rng = random.Random(44)
    return [
        {
            "intermediates": [report_of(rng, True) for _ in range(rng.randint(0, 3))],
            "finals": [report_of(rng, False) for _ in range(rng.choice([0, 1, 1, 1, 2]))],
        }
        for _ in range(n)
    ]


def stored(db) -> dict:
    """NNI's own rows, read here with sqlite3 and json alone: trial -> its PERIODICAL rows and
    its last FINAL (decoded twice, as NNI encoded it), in (timestamp, rowid) order."""
    import sqlite3

    found: dict[str, dict] = {}
    with sqlite3.connect(db) as conn:
        for trial in conn.execute("SELECT DISTINCT trialJobId FROM TrialJobEvent"):
            found.setdefault(trial[0], {"periodical": 0, "final": None, "finals": 0})
        rows = conn.execute(
            "SELECT trialJobId, type, data FROM MetricData ORDER BY timestamp, rowid"
        )
        for trial, kind, data in rows:
            entry = found.setdefault(trial, {"periodical": 0, "final": None, "finals": 0})
            if kind == "PERIODICAL":
                entry["periodical"] += 1
            else:
                value = json.loads(json.loads(data))
                entry["final"] = value if isinstance(value, dict) else {"default": value}
                entry["finals"] += 1
    return {k: v for k, v in found.items() if k}


def own_columns_rule(keys, taken, prefix="metric.") -> dict:
    """The documented rule (analysis/tables.py), applied here: own names first, then the
    prefix repeated until free."""
    taken, columns = set(taken), {}
    for key in keys:
        if key not in taken:
            columns[key] = key
    taken |= set(columns)
    for key in keys:
        if key not in columns:
            column = prefix + key
            while column in taken:
                column = prefix + column
            columns[key], taken = column, taken | {column}
    return columns


def shown(text: str, value) -> bool:
    """A trials.csv cell (as text) is the value NNI stored."""
    if isinstance(value, float) and math.isnan(value):
        return text == "NaN"
    return same(text, value, False)


def usable_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.integration
def test_values_reported_through_a_real_manager_are_read_as_nni_stored_them(tmp_path):
    """40 sub-second trials of one real study, each reporting generated odd values (NaN, +-inf,
    1e300, 2**40, strings, bools, null, dicts with `step`, colliding and unicode keys, none,
    one or two finals), over a space whose names collide with columns: every row and cell of
    trials.csv and intermediate.csv, the summary's best, compare's best and the Optuna study
    against NNI's own database."""
    import subprocess

    from tests.helpers.runner import NNISUITE

    n = 40
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "odd.py").write_text(REPORTING_TRIAL.lstrip())
    (folder / "plans.json").write_text(json.dumps(plans(n)))
    space = {
        "i": {"_type": "choice", "_value": list(range(n))},
        "status": {"_type": "choice", "_value": [1]},
        "param.status": {"_type": "choice", "_value": ["x"]},
        "größe": {"_type": "choice", "_value": [True]},
    }
    config = {
        "searchSpace": space,
        "trialCommand": "python3 odd.py",
        "trialCodeDirectory": ".",
        "trialConcurrency": 4,
        "maxTrialNumber": n,
        "tuner": {"name": "GridSearch"},
        "trainingService": {"platform": "local"},
    }
    (folder / "odd.yml").write_text(json.dumps(config))
    from nnisuite.study.manager import free_port

    exp_dir, out = tmp_path / "nni", tmp_path / "out"
    run = subprocess.run(
        [NNISUITE[0], "run", "odd.yml", "--experiment-dir", str(exp_dir), "--out", str(out),
         "--port", str(free_port())],
        cwd=folder, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    exp_id = re.search(r"^experiment (\w+):", run.stdout, re.M).group(1)
    nni = stored(exp_dir / exp_id / "db" / "nni.sqlite")
    assert len(nni) == n
    table = pd.read_csv(out / "trials.csv", dtype=str, keep_default_na=False)
    header = list(table.columns)
    assert len(header) == len(set(header)) and sorted(table["trial_id"]) == sorted(nni)
    params = {"i": "i", "status": "param.param.status", "param.status": "param.status"}
    params["größe"] = "größe"
    taken = set(COLUMNS) | set(params.values()) | {"host"}
    keys: list[str] = []
    for entry in nni.values():
        keys += [k for k in (entry["final"] or {}) if k != "default" and k not in keys]
    column_of = own_columns_rule(keys, taken)
    assert sorted(c for c in header if c not in taken) == sorted(column_of.values())
    for row in table.to_dict("records"):
        entry = nni[row["trial_id"]]
        assert row["param.param.status"] == "1" and row["param.status"] == "x"
        assert int(row["intermediate_count"]) == entry["periodical"], (row, entry)
        final = entry["final"] or {}
        assert shown(row["default"], final.get("default")), (row["default"], final)
        for key in keys:
            assert shown(row[column_of[key]], final.get(key)), (key, row[column_of[key]], final)
    steps = pd.read_csv(out / "intermediate.csv", dtype=str, keep_default_na=False)
    assert len(steps) == sum(e["periodical"] for e in nni.values())
    numbers = {t: e["final"]["default"] for t, e in nni.items()
               if e["final"] and usable_number(e["final"].get("default"))}  # fmt: skip
    summary = (out / "summary.md").read_text()
    if numbers:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        best = max(numbers.values())
        header_line = next(x for x in summary.splitlines() if x.startswith("## Best trial"))
        assert numbers[header_line.split()[3]] == best, header_line
    else:
        assert run.returncode == 5
    for args in (
        ["compare", exp_id, exp_id, "--out", str(tmp_path / "side"), "--no-plots"],
        ["compare", "--group", f"a={exp_id}", "--group", f"b={exp_id}", "--out",
         str(tmp_path / "cmp"), "--no-plots"],
        ["optuna", exp_id, "--storage", f"sqlite:///{tmp_path / 'o.db'}"],
    ):  # fmt: skip
        done = subprocess.run(
            [NNISUITE[0], *args, "--experiment-dir", str(exp_dir)],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr[-2000:])
    # the id alone, without --experiment-dir: found through NNI's list of experiments
    again = subprocess.run(
        [NNISUITE[0], "export", exp_id, "--out", str(tmp_path / "again"), "--no-plots",
         "--no-optuna", "--no-importance"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "again" / "trials.csv").read_text() == (out / "trials.csv").read_text()
    side = (tmp_path / "side" / "compare.md").read_text()
    assert side.count(f"| {fmt(max(numbers.values()))} |") == 2, side
    runs = pd.read_csv(tmp_path / "cmp" / "runs.csv")  # repeat's statistics, two runs of one
    assert (runs["final_best"] == max(numbers.values())).all()
    assert "No conclusion" in (tmp_path / "cmp" / "comparison.md").read_text()
    import optuna

    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path / 'o.db'}")
    complete = {t.user_attrs.get("nni_trial_id", t.number): t.value for t in study.trials
                if t.state.name == "COMPLETE"}  # fmt: skip
    assert sorted(complete.values()) == sorted(numbers.values())
