"""Synthetic NNI experiments in NNI 3.0's own sqlite schema, written without a manager.

    db = write_experiment(Path("runs/synth"), "synth100", trials=100, intermediates=20)
    # runs/synth/synth100/db/nni.sqlite, readable by nnisuite.analysis.store like any experiment

The tables and columns are nni_node/core/sqlDatabase.js's (TrialJobEvent, MetricData,
ExperimentProfile); rows are what a TPE study of the 3.17 space writes: a RUNNING event with the
trial's parameters, one PERIODICAL metric per epoch and one FINAL (metric data JSON-encoded
twice, as NNI stores it), then SUCCEEDED. The validation accuracy of a trial is a smooth
function of its parameters plus seeded noise, so importance methods have something to find.
Used by `python -m nnisuite.benchmarks.export` and by tests that need many trials.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np

SCHEMA = """
create table TrialJobEvent (timestamp integer, trialJobId text, event text, data text,
    logPath text, sequenceId integer, message text, environmentId text);
create index TrialJobEvent_trialJobId on TrialJobEvent(trialJobId);
create index TrialJobEvent_event on TrialJobEvent(event);
create table MetricData (timestamp integer, trialJobId text, parameterId text, type text,
    sequence integer, data text);
create index MetricData_trialJobId on MetricData(trialJobId);
create index MetricData_type on MetricData(type);
create table ExperimentProfile (params text, id text, execDuration integer, startTime integer,
    endTime integer, logDir text, nextSequenceId integer, revision integer);
create index ExperimentProfile_id on ExperimentProfile(id);
"""
SPACE = {
    "features1": {"_type": "choice", "_value": [128, 256, 512, 1024]},
    "features2": {"_type": "choice", "_value": [128, 256, 512, 1024]},
    "lr": {"_type": "loguniform", "_value": [0.0001, 0.1]},
    "batch_size": {"_type": "choice", "_value": [32, 64, 128, 256]},
}
START_MS = 1_790_000_000_000


def sample(rng: np.random.Generator) -> dict:
    return {
        "features1": int(rng.choice(SPACE["features1"]["_value"])),
        "features2": int(rng.choice(SPACE["features2"]["_value"])),
        "lr": float(math.exp(rng.uniform(math.log(1e-4), math.log(0.1)))),
        "batch_size": int(rng.choice(SPACE["batch_size"]["_value"])),
    }


def accuracy(params: dict, rng: np.random.Generator) -> float:
    """Peaks at lr ~ 0.03; wider layers help a little; batch size barely matters."""
    lr_term = -0.04 * (math.log10(params["lr"]) - math.log10(0.03)) ** 2
    width = 0.01 * math.log2(params["features1"] / 128) / 3
    return float(np.clip(0.9 + lr_term + width + rng.normal(0, 0.005), 0.05, 0.999))


def twice(value) -> str:
    """NNI's MetricData.data: the metric JSON-encoded, then encoded again as a string."""
    return json.dumps(json.dumps(value))


def write_experiment(
    root: Path,
    exp_id: str,
    trials: int,
    intermediates: int = 20,
    seed: int = 0,
    tuner: str = "TPE",
    concurrency: int = 2,
) -> Path:
    """Write one finished experiment under root/exp_id; returns the database path."""
    rng = np.random.default_rng(seed)
    db = root / exp_id / "db" / "nni.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    events, metrics = [], []
    clock = [START_MS + i * 7 for i in range(concurrency)]  # one timeline per slot
    for i in range(trials):
        slot = i % concurrency
        trial_id = f"t{i:05d}"
        params = sample(rng)
        final = accuracy(params, rng)
        record = {"parameter_id": i, "parameter_source": "algorithm", "parameters": params}
        start = clock[slot]
        events.append((start, trial_id, "RUNNING", json.dumps(record), None, i, None, "local"))
        for step in range(intermediates):
            t = start + 200 * (step + 1)
            value = final * (1 - 0.5 * math.exp(-3 * (step + 1) / intermediates))
            value += float(rng.normal(0, 0.003))
            data = {"default": value, "val_loss": 1 - value, "train_loss": 1.1 - value}
            metrics.append((t, trial_id, str(i), "PERIODICAL", step, twice(data)))
        end = start + 200 * (intermediates + 1)
        final_data = {
            "default": final,
            "test_accuracy": final - 0.01,
            "epochs": intermediates,
            "train_seconds": 0.2 * intermediates,
        }
        metrics.append((end, trial_id, str(i), "FINAL", 0, twice(final_data)))
        events.append((end + 50, trial_id, "SUCCEEDED", None, None, i, None, "local"))
        clock[slot] = end + 600
    config = {
        "experimentName": f"synthetic_{trials}",
        "experimentType": "hpo",
        "searchSpace": SPACE,
        "trialCommand": "python3 -m nnisuite.launcher nnisuite.trials.mlp --dataset digits",
        "trialConcurrency": concurrency,
        "maxTrialNumber": trials,
        "tuner": {"name": tuner, "classArgs": {"optimize_mode": "maximize", "seed": seed}},
        "trainingService": {"platform": "local"},
    }
    end_ms = max(clock)
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
        conn.execute(
            "insert into ExperimentProfile values (?,?,?,?,?,?,?,?)",
            (
                json.dumps(config),
                exp_id,
                (end_ms - START_MS) // 1000,
                START_MS,
                end_ms,
                None,
                trials,
                1,
            ),
        )
        conn.executemany("insert into TrialJobEvent values (?,?,?,?,?,?,?,?)", events)
        conn.executemany("insert into MetricData values (?,?,?,?,?,?)", metrics)
    return db
