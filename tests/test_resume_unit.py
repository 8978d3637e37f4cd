"""nnisuite.study.resume on databases in NNI's schema (no manager): the seed a resumed tuner gets,
the profile revision that carries it, and what cannot be resumed. (Resumes through real managers:
test_faults, test_everyday.)"""

from __future__ import annotations

import json
import sqlite3

import pytest

from nnisuite.study.resume import (
    AlreadyFinished,
    ResumeError,
    check_not_finished,
    experiment_folder,
    prepare_resume,
    recorded_config,
    reseed_tuner,
    resumed_seed,
)
from tests.helpers.database import Database


def database(tmp_path, tuner, statuses):
    config = {
        "experimentName": "r",
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 train.py",
        "maxTrialNumber": 3,
        "tuner": tuner,
    }
    db = Database(tmp_path, "exp", config)
    for i, status in enumerate(statuses):
        db.start(i * 10, f"t{i}", i, i, {"x": i / 10})
        if status != "CUT":  # CUT: running, no final yet
            db.metric(i * 10 + 5, f"t{i}", i, "FINAL", 0.5)
        if status not in ("RUNNING", "CUT"):
            db.event(i * 10 + 6, f"t{i}", status, seq=i)
    return db.write()


def profiles(db):
    with sqlite3.connect(db) as conn:
        return [
            (revision, json.loads(params))
            for revision, params in conn.execute(
                "SELECT revision, params FROM ExperimentProfile ORDER BY revision"
            )
        ]


def test_the_resumed_seed_is_stable_new_and_a_valid_seed():
    assert resumed_seed(0, 4) == resumed_seed(0, 4)
    seeds = {resumed_seed(s, n) for s in range(10) for n in range(1, 10)}
    assert len(seeds) == 90 and all(isinstance(s, int) and 0 <= s < 2**31 for s in seeds)
    assert not seeds & set(range(100))  # never a small seed another run of a study uses


def test_a_seeded_tuner_resumes_with_a_new_seed_in_a_new_revision(tmp_path):
    tpe = {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 7}}
    db = database(tmp_path, tpe, ["SUCCEEDED", "RUNNING"])
    note = reseed_tuner(db, 2)
    (first, before), (second, after) = profiles(db)
    assert second == first + 1 and before["tuner"]["classArgs"]["seed"] == 7
    assert after["tuner"]["classArgs"]["seed"] == resumed_seed(7, 2) != 7
    assert str(resumed_seed(7, 2)) in note and "TPE" in note
    assert {k: v for k, v in after.items() if k != "tuner"} == {
        k: v for k, v in before.items() if k != "tuner"
    }


def test_a_tuner_of_the_users_own_class_is_named_by_its_class(tmp_path):
    mine = {"className": "my_tuners.Mine", "codeDirectory": ".", "classArgs": {"seed": 3}}
    db = database(tmp_path, mine, ["SUCCEEDED"])
    assert "tuner my_tuners.Mine:" in reseed_tuner(db, 1)


@pytest.mark.parametrize(
    "tuner, trials",
    [({"name": "Evolution", "classArgs": {"optimize_mode": "maximize"}}, 2), (None, 2),
     ({"name": "TPE", "classArgs": {"seed": 1}}, 0)],
)  # fmt: skip
def test_nothing_to_reseed(tmp_path, tuner, trials):
    db = database(tmp_path, tuner, ["SUCCEEDED"])
    assert reseed_tuner(db, trials) is None and len(profiles(db)) == 1


def test_a_finished_study_is_not_resumed_an_unfinished_one_is(tmp_path):
    done = database(tmp_path / "a", None, ["SUCCEEDED", "FAILED", "SUCCEEDED"])
    with pytest.raises(AlreadyFinished, match="already ran all its 3 trials"):
        check_not_finished("exp", done.parent.parent.parent)
    short = database(tmp_path / "b", None, ["SUCCEEDED", "SUCCEEDED"])
    check_not_finished("exp", short.parent.parent.parent)  # 2 of 3: NNI runs the third
    cut = database(tmp_path / "c", None, ["SUCCEEDED", "CUT", "SUCCEEDED"])
    check_not_finished("exp", cut.parent.parent.parent)  # t1 was cut short: NNI runs it again
    # stopped as it exited: its final stands, nothing is left to run
    exited = database(tmp_path / "d", None, ["SUCCEEDED", "RUNNING", "SUCCEEDED"])
    with pytest.raises(AlreadyFinished):
        check_not_finished("exp", exited.parent.parent.parent)


def test_a_study_whose_last_trial_timed_out_is_finished(tmp_path):
    """TIMED_OUT (killed past maxTrialDuration, read from the manager's log) has ended."""
    db = database(tmp_path, None, ["SUCCEEDED", "SUCCEEDED", "USER_CANCELED"])
    log = db.parent.parent / "log" / "nnimanager.log"
    log.parent.mkdir()
    log.write_text("Trial job t2 has been canceled because it is over max trial duration.\n")
    from nnisuite.analysis.store import load_experiment

    assert load_experiment("exp", db.parent.parent.parent).trials[2].status == "TIMED_OUT"
    with pytest.raises(AlreadyFinished):
        check_not_finished("exp", db.parent.parent.parent)


def test_an_experiment_that_is_not_there(tmp_path):
    with pytest.raises(ResumeError, match="not found"):
        experiment_folder("nope", str(tmp_path))
    db = database(tmp_path, None, ["SUCCEEDED"])
    assert experiment_folder("exp", str(tmp_path)) == db.parent.parent.parent.resolve()


SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}}


def recorded(tmp_path, space_file=None, code=None):
    """A stopped study whose config names a space file and a trials' folder."""
    config = {
        "experimentName": "r",
        "searchSpace": SPACE,
        "trialCommand": "python3 train.py",
        "trialCodeDirectory": str(code or tmp_path),
        "trialConcurrency": 1,
        "maxTrialNumber": 3,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 5}},
        "trainingService": {"platform": "local"},
    }
    if space_file is not None:
        config["searchSpaceFile"] = str(space_file)
    db = Database(tmp_path / "nni", "exp", config)
    db.start(0, "t0", 0, 0, {"x": 0.1})
    return db.write()


def test_a_resume_needs_only_the_database_the_space_is_the_recorded_one(tmp_path, capsys):
    moved = tmp_path / "space.yaml"  # never written: moved away since the study started
    recorded(tmp_path, moved)
    config = recorded_config("exp", tmp_path / "nni")
    assert config.search_space == SPACE and config.search_space_file is None
    assert f"search space file {moved} cannot be read" in capsys.readouterr().out
    moved.write_text("x: {_type: uniform, _value: [0, 5]}\n")  # edited instead
    assert recorded_config("exp", tmp_path / "nni").search_space == SPACE
    assert f"{moved} changed since the study started" in capsys.readouterr().out
    moved.write_text(json.dumps(SPACE))  # as it was: nothing to say
    assert recorded_config("exp", tmp_path / "nni").search_space == SPACE
    assert capsys.readouterr().out == ""


def test_a_resume_that_cannot_start_writes_nothing_to_the_database(tmp_path):
    db = recorded(tmp_path, code=tmp_path / "gone")
    before = profiles(db)
    with pytest.raises(ResumeError, match="trials' folder .*gone.* is gone"):
        prepare_resume("exp", str(tmp_path / "nni"))
    assert profiles(db) == before  # no new tuner seed written for a resume that never ran


def test_a_study_that_ran_its_whole_duration_is_finished(tmp_path):
    """Ended by maxExperimentDuration with 2 of 3 trials: a resume would start a manager that
    stops at once, its idle time added to the recorded wall time (96 -> 159 s was seen)."""
    config = {
        "experimentName": "r",
        "searchSpace": SPACE,
        "trialCommand": "python3 train.py",
        "maxTrialNumber": 3,
        "maxExperimentDuration": "10s",
        "tuner": {"name": "Random"},
    }
    db = Database(tmp_path, "exp", config)
    for i in range(2):
        db.start(i * 10, f"t{i}", i, i, {"x": i / 10})
        db.metric(i * 10 + 5, f"t{i}", i, "FINAL", 0.5)
        db.event(12_000 + i, f"t{i}", "SUCCEEDED", seq=i)  # NNI counted 12 s of running
    db.write()
    with pytest.raises(AlreadyFinished, match=r"already ran its maxExperimentDuration \(10s\)"):
        check_not_finished("exp", tmp_path)
    config["maxExperimentDuration"] = "1m"  # time left: NNI runs the third trial
    db.write()
    check_not_finished("exp", tmp_path)
