"""nnisuite.analysis.store on databases written in NNI's schema with the patterns a real manager
leaves: the parameter ids and sequence numbers a resume repeats, NNI's parameter mix-up at
concurrency 2, and a trial stopped as it exited. (The same patterns through real managers:
test_faults.)"""

from __future__ import annotations

import pytest

from nnisuite.analysis.export import export
from nnisuite.analysis.store import load_experiment
from tests.helpers.database import Database

CONFIG = {
    "experimentName": "resumed",
    "experimentType": "hpo",
    "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
    "trialCommand": "python3 train.py",
    "trialConcurrency": 2,
    "maxTrialNumber": 4,
    "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "seed": 0}},
    "trainingService": {"platform": "local"},
}


def resumed_database(tmp_path, config=CONFIG):
    """What NNI 3.0 wrote for a study stopped after two trials and resumed (read off a real
    run): in the second session parameter ids and sequence numbers start again at 1, and the
    local service gave each of the two new trials the other's recorded parameters."""
    db = Database(tmp_path, "resumed", config)
    db.start(0, "A", 0, 0, {"x": 0.1})
    db.start(10, "B", 1, 1, {"x": 0.2})
    db.metric(500, "A", 0, "FINAL", {"default": 0.55})
    db.metric(510, "B", 1, "FINAL", {"default": 0.6})
    db.event(600, "A", "SUCCEEDED", seq=0)
    db.event(610, "B", "SUCCEEDED", seq=1)
    # the resume: ids 1 and 2, sequence 1 and 2 again; C's record is id 1, D's id 2, but C
    # trained on id 2's parameters and D on id 1's (their metrics say so)
    db.start(20_000, "C", 1, 1, {"x": 0.7})
    db.start(20_010, "D", 2, 2, {"x": 0.9})
    db.metric(20_500, "C", 2, "FINAL", {"default": 0.95})
    db.metric(20_510, "D", 1, "FINAL", {"default": 0.85})
    db.event(20_600, "C", "SUCCEEDED", seq=1)
    db.event(20_610, "D", "SUCCEEDED", seq=2)
    return db.write()


def test_repeated_parameter_ids_after_a_resume_are_read_by_time(tmp_path):
    exp = load_experiment(str(resumed_database(tmp_path)), live=False)
    ran = {t.trial_id: t.parameters["x"] for t in exp.trials}
    # each trial's final is 0.5 + x / 2: what it trained on
    assert ran == {"A": 0.1, "B": 0.2, "C": 0.9, "D": 0.7}
    for t in exp.trials:
        assert abs(t.final["default"] - (0.5 + t.parameters["x"] / 2)) < 1e-9


@pytest.mark.integration
def test_a_live_manager_is_read_with_the_same_correction(tmp_path):
    """The same database served by a real NNI manager (view mode, as `nnictl view` starts it):
    `nnisuite export http://...` reads NNI's REST answers, whose metrics carry `parameterId`,
    and must pair each trial with what it trained on exactly as the sqlite reader does."""
    from tests.helpers.nni import viewing

    resumed_database(tmp_path, CONFIG | {"experimentWorkingDirectory": str(tmp_path)})
    with viewing(tmp_path, "resumed") as (_, port):
        live = load_experiment(f"http://127.0.0.1:{port}")
    assert {t.trial_id: t.parameters["x"] for t in live.trials} == {
        "A": 0.1,
        "B": 0.2,
        "C": 0.9,
        "D": 0.7,
    }
    assert [t.final["default"] for t in live.trials] == [0.55, 0.6, 0.95, 0.85]


@pytest.mark.integration
def test_a_live_manager_says_which_trials_ran_again_after_a_resume(tmp_path):
    """NNI's REST answers carry no events: `restarts` of a URL export is read from the manager's
    database on this machine (as the sqlite export reads it), and is blank (unknown) when the
    database is elsewhere, never a 0 that may be false."""
    from nnisuite.analysis.store import count_restarts
    from tests.helpers.nni import viewing

    db = Database(tmp_path, "again", CONFIG | {"experimentWorkingDirectory": str(tmp_path)})
    db.start(0, "A", 0, 0, {"x": 0.1})
    db.start(10, "B", 1, 1, {"x": 0.2})
    db.metric(500, "A", 0, "FINAL", {"default": 0.55})
    db.event(600, "A", "SUCCEEDED", seq=0)
    db.event(20_000, "B", "ADD_RESUMED", seq=1)  # cut by a stop, run again on resume
    db.start(20_010, "B", 1, 1, {"x": 0.2})
    db.metric(20_500, "B", 1, "FINAL", {"default": 0.6})
    db.event(20_600, "B", "SUCCEEDED", seq=1)
    stored = load_experiment(str(db.write()), live=False)
    with viewing(tmp_path, "again") as (_, port):
        live = load_experiment(f"http://127.0.0.1:{port}")
    assert {t.trial_id: t.restarts for t in live.trials} == {"A": 0, "B": 1}
    assert {t.trial_id: t.restarts for t in stored.trials} == {"A": 0, "B": 1}
    elsewhere = {t.trial_id: t for t in live.trials}
    count_restarts(elsewhere, str(tmp_path / "not-here"))
    assert {t.restarts for t in elsewhere.values()} == {None}


def test_repeated_sequence_numbers_are_renumbered_in_submission_order(tmp_path):
    exp = load_experiment(str(resumed_database(tmp_path)), live=False)
    assert exp.renumbered
    assert [(t.trial_id, t.sequence) for t in exp.trials] == [
        ("A", 0),
        ("B", 1),
        ("C", 2),
        ("D", 3),
    ]
    result = export(exp, tmp_path / "out", plots=False, optuna=False)
    assert list(result.trials["sequence"]) == [0, 1, 2, 3]
    assert "renumbered" in result.summary
    assert '"x": 0.9' in result.summary.split("## Best trial: C")[1]


def test_unique_sequence_numbers_are_kept(tmp_path):
    db = Database(tmp_path, "plain", CONFIG)
    db.start(0, "A", 5, 0, {"x": 0.1})
    db.start(10, "B", 7, 1, {"x": 0.2})
    exp = load_experiment(str(db.write()), live=False)
    assert not exp.renumbered and [t.sequence for t in exp.trials] == [5, 7]


def test_a_trial_stopped_as_it_exited_is_succeeded_one_cut_short_interrupted(tmp_path):
    """NNI records no end for either: the one that had reported its final finished its work."""
    db = Database(tmp_path, "stopped", CONFIG | {"experimentType": "nas"})
    db.start(0, "done", 0, 0, {"x": 0.1})
    db.metric(500, "done", 0, "FINAL", {"default": 0.55})
    db.start(10, "cut", 1, 1, {"x": 0.2})
    db.metric(400, "cut", 1, "PERIODICAL", {"default": 0.3})
    exp = load_experiment(str(db.write()), live=False)
    assert {t.trial_id: t.status for t in exp.trials} == {"done": "SUCCEEDED", "cut": "INTERRUPTED"}
    summary = export(exp, tmp_path / "out", plots=False, optuna=False).summary
    assert "cannot resume a NAS study" in summary and "a resume runs them again" not in summary


def test_intermediates_stored_out_of_order_are_all_kept_and_a_rerun_replaces_them(tmp_path):
    """NNI's node-sqlite3 inserts in parallel: step 1's row can precede step 0's (seen in a live
    run). A step repeated is a trial run again after a resume: only the new run's steps stay."""
    db = Database(tmp_path, "order", CONFIG)
    db.start(0, "A", 0, 0, {"x": 0.1})
    db.metric(100, "A", 0, "PERIODICAL", {"default": 0.2}, step=1)
    db.metric(100, "A", 0, "PERIODICAL", {"default": 0.1}, step=0)
    db.metric(101, "A", 0, "FINAL", {"default": 0.2})
    db.start(0, "B", 1, 1, {"x": 0.2})
    for ts, step, value in [(100, 0, 0.1), (110, 1, 0.2), (120, 2, 0.3), (900, 0, 0.5)]:
        db.metric(ts, "B", 1, "PERIODICAL", {"default": value}, step=step)
    exp = load_experiment(str(db.write()), live=False)
    steps = {t.trial_id: [(m["step"], m["default"]) for m in t.intermediates] for t in exp.trials}
    assert steps == {"A": [(0, 0.1), (1, 0.2)], "B": [(0, 0.5)]}
