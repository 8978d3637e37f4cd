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
    assert json.loads(block) == flat(best["params"])


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
