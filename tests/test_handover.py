"""The hand-over on the manager's events (nni_patches/node_preload.js fix 6) changes when NNI
does things, never what it records: one seeded TPE study run through `nnisuite run` with NNI's
own polling (NNISUITE_HANDOVER=poll) and with the events gives the same database (each
trial's events in order, its parameters, every metric with its type, sequence and value) and
the same trials.csv apart from times. TPE leaves its random start-up after 3 trials here, so
each later suggestion depends on every earlier final having reached the tuner, and reaching it
before the trial's TRIAL_END (the other order raises KeyError in TPE and kills the dispatcher).
The manager's log says which way ran, so both runs are known to be what they claim."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nnisuite.nni_patches.handover import SWITCH
from tests.helpers.nni import running_experiment_ids
from tests.helpers.paths import REPO
from tests.helpers.runner import fault_experiment

SPACE = {
    "x": {"_type": "uniform", "_value": [0, 1]},
    "steps": {"_type": "choice", "_value": [1, 3]},
}
TRIALS = 7
TIMES = {"duration_s", "start_time", "end_time", "submitted", "started", "ended"}
LOGGED = "trial hand-over on the manager's events"


def study(tmp_path: Path, how: str) -> tuple[Path, Path, str]:
    """The study run one way: (its NNI database, its --out folder, the runner's output)."""
    folder = tmp_path / how
    folder.mkdir()
    yaml = fault_experiment(
        folder, SPACE, "--mode ok",
        tuner={"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 7,
                                            "tpe_args": {"n_startup_jobs": 3}}},
        max_trials=TRIALS, concurrency=1,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != SWITCH}
    if how == "poll":
        env[SWITCH] = "poll"
    out = folder / "out"
    run = subprocess.run(
        [sys.executable, "-m", "nnisuite.study.run", str(yaml), "--experiment-dir",
         str(folder / "nni"), "--out", str(out), "--no-plots", "--no-optuna", "--no-importance"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    exp_id = re.search(r"^experiment (\w+): ", output, re.M).group(1)
    return folder / "nni" / exp_id / "db" / "nni.sqlite", out, output


def records(db: Path) -> dict:
    """What NNI recorded, by trial sequence number (trial ids are random)."""
    with sqlite3.connect(db) as con:
        events = con.execute(
            "select trialJobId, event, data, sequenceId from TrialJobEvent order by rowid"
        ).fetchall()
        metrics = con.execute(
            "select trialJobId, parameterId, type, sequence, data from MetricData order by rowid"
        ).fetchall()
    sequence = {trial: seq for trial, _, _, seq in events if seq is not None}
    found: dict = {}
    for trial, event, data, _ in events:
        entry = found.setdefault(sequence[trial], {"events": [], "parameters": None, "metrics": []})
        entry["events"].append(event)
        if data:
            entry["parameters"] = json.loads(data)
    for trial, parameter_id, kind, seq, data in metrics:
        found[sequence[trial]]["metrics"].append((parameter_id, kind, seq, json.loads(data)))
    for entry in found.values():
        entry["metrics"].sort(key=lambda m: (m[1], m[2]))  # PERIODICAL by step, then FINAL
    return found


@pytest.mark.integration
def test_the_event_hand_over_records_what_nni_polling_records(tmp_path):
    polled_db, polled_out, polled = study(tmp_path, "poll")
    evented_db, evented_out, evented = study(tmp_path, "events")
    assert "trial hand-over: NNI's 0.5 s polling" in polled, polled[-2000:]
    assert "trial hand-over: on NNI's events" in evented, evented[-2000:]
    logs = {
        how: "".join(p.read_text() for p in db.parent.parent.glob("log/nnimanager.log"))
        for how, db in (("poll", polled_db), ("events", evented_db))
    }
    assert LOGGED not in logs["poll"] and LOGGED in logs["events"], logs["events"][-2000:]

    before, after = records(polled_db), records(evented_db)
    assert sorted(before) == list(range(TRIALS)), before
    for seq in range(TRIALS):
        assert after[seq] == before[seq], (seq, before[seq], after[seq])
        assert before[seq]["events"][-1] == "SUCCEEDED", before[seq]
        assert [m[1] for m in before[seq]["metrics"]].count("FINAL") == 1, before[seq]
    # TPE past its start-up: the later trials' parameters came from its model of the earlier
    # finals, and they are the same both ways
    xs = [before[seq]["parameters"]["parameters"]["x"] for seq in range(TRIALS)]
    assert len(set(xs)) == TRIALS, xs

    tables = []
    for out in (polled_out, evented_out):
        trials = pd.read_csv(out / "trials.csv")
        tables.append(
            trials.drop(columns=[c for c in trials.columns if c in TIMES or c == "trial_id"])
            .sort_values("sequence")
            .reset_index(drop=True)
        )
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert not running_experiment_ids() or all(
        db.parent.parent.name not in running_experiment_ids() for db in (polled_db, evented_db)
    )
