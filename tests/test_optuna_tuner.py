"""nnisuite.study.optuna_tuner driven by NNI 3.0's own MsgDispatcher in this process (its unittest
channel: the commands it would send are captured), as the manager drives it: the search space,
requests for parameters with trials pending, final results, end events (EARLY_STOPPED is
PRUNED, FAILED is FAIL), a resume's import_data, several objectives. Through real NNI
managers: tests/test_optuna_tuner_nni.py."""

from __future__ import annotations

import json
import math

import pytest
from nni.runtime.msg_dispatcher import MsgDispatcher

from nnisuite.analysis.pareto import front
from nnisuite.study.optuna_tuner import (
    SAMPLERS,
    ArgsError,
    OptunaTuner,
    SpaceError,
    validate_class_args,
)

SPACE = {
    "features1": {"_type": "choice", "_value": [128, 256, 512, 1024]},
    "lr": {"_type": "loguniform", "_value": [1e-4, 0.1]},
    "optimizer": {
        "_type": "choice",
        "_value": [
            {"_name": "sgd", "momentum": {"_type": "uniform", "_value": [0, 0.9]}},
            {"_name": "adam"},
        ],
    },
    "layers": {"_type": "randint", "_value": [1, 4]},
    "dropout": {"_type": "quniform", "_value": [0, 0.5, 0.125]},
    "activation": {"_type": "choice", "_value": [[1, 2], "relu"]},  # not Optuna's own kinds
}


class Driver:
    """NNI's dispatcher around a tuner, its outgoing commands captured."""

    def __init__(self, tuner):
        self.tuner = tuner
        self.dispatcher = MsgDispatcher("ws://_unittest_", tuner)
        self.sent: list = []
        self.dispatcher.send = lambda kind, data: self.sent.append(data)
        self.dispatcher.handle_initialize(SPACE)
        self.sent.clear()

    def ask(self, n: int = 1) -> list[dict]:
        self.dispatcher.handle_request_trial_jobs(n)
        out, self.sent = [json.loads(d) for d in self.sent], []
        return out

    def final(self, pid: int, value) -> None:
        self.dispatcher.handle_report_metric_data(
            {"parameter_id": pid, "type": "FINAL", "value": json.dumps(value), "trial_job_id": pid}
        )

    def end(self, pid: int, event: str = "SUCCEEDED") -> None:
        self.dispatcher.handle_trial_end(
            {"trial_job_id": pid, "event": event, "hyper_params": json.dumps({"parameter_id": pid})}
        )


def in_space(p: dict) -> bool:
    opt = p["optimizer"]
    return (
        p["features1"] in (128, 256, 512, 1024)
        and 1e-4 <= p["lr"] <= 0.1
        and p["layers"] in (1, 2, 3)
        and p["dropout"] in (0.0, 0.125, 0.25, 0.375, 0.5)
        and p["activation"] in ([1, 2], "relu")
        and (
            (opt["_name"] == "sgd" and 0 <= opt["momentum"] <= 0.9 and len(opt) == 2)
            or opt == {"_name": "adam"}
        )
    )


def score(p: dict) -> float:
    return 0.9 - 0.02 * (math.log10(p["lr"]) + 2.5) ** 2 + 0.01 * p["layers"]


def run(tuner, trials: int = 12, concurrency: int = 2) -> list[dict]:
    """Trials at `concurrency` pending, each told its score and, as `parameters`, 1000 x its
    place in order; the parameters, in order."""
    d = Driver(tuner)
    pending, seen = d.ask(concurrency), []
    while pending:
        record = pending.pop(0)
        pid = record["parameter_id"]  # NNI numbers ids per process: not from 0 here
        d.final(pid, {"default": score(record["parameters"]), "parameters": 1000 * len(seen)})
        seen.append(record["parameters"])
        d.end(pid)
        if len(seen) + len(pending) < trials:
            pending += d.ask(1)
    return seen


def marked(samplers):
    """GP's model (torch, an acquisition optimised per suggestion) takes seconds: slow."""
    return [pytest.param(s, marks=pytest.mark.slow) if s == "gp" else s for s in samplers]


@pytest.mark.parametrize("sampler", marked(SAMPLERS))
def test_each_sampler_samples_the_space_and_is_told_every_result(sampler):
    tuner = OptunaTuner(sampler=sampler, seed=3, sampler_args=small(sampler))
    seen = run(tuner, trials=8)
    assert len(seen) == 8 and all(in_space(p) for p in seen)
    done = tuner.study.trials
    assert [t.state.name for t in done] == ["COMPLETE"] * 8
    assert [t.value for t in done] == pytest.approx([score(p) for p in seen])
    assert not tuner.running


def small(sampler: str) -> dict:
    """Start-up trials cut to 4 so that the model-based part runs within a few trials."""
    return {"n_startup_trials": 4} if sampler in ("tpe", "motpe", "gp", "cmaes") else {}


@pytest.mark.parametrize("sampler", marked(["tpe", "cmaes", "gp", "qmc", "nsgaii"]))
def test_a_seed_repeats_the_suggestions_and_another_seed_does_not(sampler):
    def first(seed):
        return run(OptunaTuner(sampler=sampler, seed=seed, sampler_args=small(sampler)), 6, 1)

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_early_stopped_is_pruned_failed_is_fail_and_a_late_final_still_counts():
    tuner = OptunaTuner(sampler="tpe", seed=0)
    d = Driver(tuner)
    a, b, c, late = (r["parameter_id"] for r in d.ask(4))
    d.final(a, {"default": 0.5})
    d.end(a)
    d.end(b, "EARLY_STOPPED")
    d.end(c, "FAILED")
    d.end(late)  # NNI can store the end before the final (node-sqlite3 in parallel)
    d.final(late, {"default": 0.7})
    states = [(t.state.name, t.value) for t in tuner.study.trials]
    assert states == [("COMPLETE", 0.5), ("PRUNED", None), ("FAIL", None), ("COMPLETE", 0.7)]


def test_a_final_without_the_objective_is_a_failed_trial_not_a_crash():
    tuner = OptunaTuner(sampler="tpe", objectives=["default", "parameters"], seed=0)
    d = Driver(tuner)
    (pid,) = (r["parameter_id"] for r in d.ask(1))
    d.final(pid, {"default": 0.5})  # no `parameters`
    d.end(pid)
    assert tuner.study.trials[0].state.name == "FAIL"


@pytest.mark.parametrize("sampler", ["nsgaii", "motpe"])
def test_several_objectives_are_told_and_the_study_front_is_the_pareto_front(sampler):
    tuner = OptunaTuner(
        sampler=sampler, objectives=["default", "parameters"], seed=0, sampler_args=small(sampler)
    )
    assert [d.name for d in tuner.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    run(tuner, trials=16)
    done = tuner.study.trials
    points = [(t.values[0], t.values[1]) for t in done]
    assert [t.values[1] for t in done] == [1000.0 * t.number for t in done]
    expected = {done[i].number for i in front(points, maximize=True)}
    assert {t.number for t in tuner.study.best_trials} == expected


def test_import_data_adds_the_earlier_trials_as_nni_resumes_them():
    earlier = run(OptunaTuner(sampler="random", seed=5), trials=6, concurrency=1)
    tuner = OptunaTuner(sampler="tpe", seed=0)
    d = Driver(tuner)
    data = [{"parameter": p, "value": {"default": score(p)}} for p in earlier]
    data.append({"parameter": dict(earlier[0], features1=99), "value": {"default": 1.0}})
    data.append({"parameter": earlier[1], "value": "not a number"})
    tuner.import_data(data)
    done = tuner.study.trials
    assert len(done) == 6  # the value outside the space and the text value skipped
    assert [t.value for t in done] == pytest.approx([score(p) for p in earlier])
    assert done[0].params["features1"] == earlier[0]["features1"]
    assert all(in_space(r["parameters"]) for r in d.ask(3))


@pytest.mark.parametrize("kind", ["normal", "qlognormal"])
def test_an_unbounded_type_is_refused_naming_the_parameter(kind):
    tuner = OptunaTuner(sampler="tpe")
    space = {"ok": {"_type": "uniform", "_value": [0, 1]}, "x": {"_type": kind, "_value": [0, 1]}}
    with pytest.raises(SpaceError, match=r"x: _type '" + kind):
        tuner.update_search_space(space)
    nested = {"c": {"_type": "choice", "_value": [{"_name": "a", "y": space["x"]}]}}
    with pytest.raises(SpaceError, match=r"c/0/y"):
        tuner.update_search_space(nested)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            {"sampler": "tpee"},
            "sampler 'tpee' unknown; choose one of tpe, cmaes, gp, qmc, random, nsgaii, motpe",
        ),
        ({"sampler": "cmaes", "objectives": ["default", "parameters"]}, "takes one objective"),
        ({"objectives": ["default", "loss"]}, "objective 'loss': give its direction"),
        ({"objectives": ["default"], "directions": ["up"]}, "directions must be"),
        ({"optimize_mode": "max"}, "optimize_mode must be"),
        ({"seed": "1"}, "seed must be an integer"),
        ({"samplr": "tpe"}, "no argument 'samplr'"),
    ],
)
def test_class_args_it_cannot_run_with_are_one_line(args, fragment):
    with pytest.raises(ArgsError, match=fragment):
        validate_class_args(**args)
    if "samplr" not in args:
        with pytest.raises(ArgsError, match=fragment):
            OptunaTuner(**args)


def test_cmaes_says_once_which_parameters_it_samples_at_random(caplog):
    """CMA-ES samples a categorical at random beside it and Optuna warned per parameter per
    trial (3 lines a trial on the 3.17 space, in dispatcher.log): one line names them, once;
    `warn_independent_sampling: true` in sampler_args brings Optuna's warning back."""
    import logging

    # the tuner's own logger too: another test in this process may have quietened "nni"
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, "nni.nnisuite"):
        driver = Driver(OptunaTuner(sampler="cmaes", seed=0, sampler_args={"n_startup_trials": 2}))
        for params in driver.ask(6):
            driver.final(params["parameter_id"], 0.5)
        driver.ask(2)
    lines = [r.getMessage() for r in caplog.records]
    ours = [line for line in lines if line.startswith("cmaes:")]
    assert ours == [
        "cmaes: features1, optimizer, activation sampled independently at random beside "
        "CMA-ES (categorical: Optuna's rule)"
    ]
    assert not [line for line in lines if "is sampled independently" in line], lines[:5]
    loud = OptunaTuner(sampler="cmaes", sampler_args={"warn_independent_sampling": True})
    assert loud.sampler._warn_independent_sampling is True


def sample(space: dict, n: int, seed: int = 0) -> list[dict]:
    """`n` parameter sets of `space` from a seeded random-sampler tuner, as NNI asks for them."""
    tuner = OptunaTuner(sampler="random", seed=seed)
    tuner.update_search_space(space)
    return [tuner.generate_parameters(i) for i in range(n)]


def test_every_bounded_type_samples_what_nni_would():
    """NNI's semantics per type: randint excludes its high end, a q-type is rounded to its q
    (1 when not given) and clipped to its range, loguniform spreads over the decades, a
    choice of non-Optuna values (lists) hands back the values themselves, a nested option
    without `_name` is named by its index."""
    space = {
        "r": {"_type": "randint", "_value": [0, 3]},
        "one": {"_type": "randint", "_value": [3, 4]},
        "q": {"_type": "quniform", "_value": [0, 10, 2.5]},
        "q1": {"_type": "quniform", "_value": [0, 3]},
        "ql": {"_type": "qloguniform", "_value": [1, 100, 10]},
        "log": {"_type": "loguniform", "_value": [1e-5, 1]},
        "lists": {"_type": "choice", "_value": [[1, 2], [3, 4]]},
        "nested": {"_type": "choice", "_value": [{"m": {"_type": "uniform", "_value": [0, 1]}}]},
    }
    seen = sample(space, 300)
    assert {p["r"] for p in seen} == {0, 1, 2}
    assert {p["one"] for p in seen} == {3}
    assert {p["q"] for p in seen} == {0.0, 2.5, 5.0, 7.5, 10.0}
    assert {p["q1"] for p in seen} == {0.0, 1.0, 2.0, 3.0}
    assert {p["ql"] for p in seen} <= {1.0, *(10.0 * k for k in range(1, 11))}
    assert len({p["ql"] for p in seen}) > 5
    below = sum(p["log"] < 1e-3 for p in seen) / len(seen)  # 0.4 on a log scale, 0.001 linear
    assert 0.3 < below < 0.5, below
    assert {tuple(p["lists"]) for p in seen} == {(1, 2), (3, 4)}
    assert all(p["nested"]["_name"] == 0 and 0 <= p["nested"]["m"] <= 1 for p in seen)


@pytest.mark.parametrize(
    "space, said",
    [
        ([1], "search space: must be a mapping"),
        ({"x": {"_type": "uniform"}}, "x: needs _type and _value"),
        ({"x": {"_value": [0, 1]}}, "x: needs _type and _value"),
        ({"x": {"_type": "choice", "_value": []}}, "x: choice needs a non-empty list"),
        ({"x": {"_type": "choice", "_value": "ab"}}, "x: choice needs a non-empty list"),
        ({"x": {"_type": "uniform", "_value": [1]}}, r"x: uniform needs \[low, high\]"),
        ({"x": {"_type": "uniform", "_value": 5}}, r"x: uniform needs \[low, high\]"),
        ({"x": {"_type": "randint", "_value": [4, 4]}}, "x: randint needs low < high"),
        ({"x": {"_type": "uniform", "_value": [1, 1]}}, "x: uniform needs 0 < low < high"),
        ({"x": {"_type": "loguniform", "_value": [0, 1]}}, "x: loguniform needs 0 < low"),
        ({"x": {"_type": "normal", "_value": [0, 1]}}, "x: _type 'normal' is unbounded.*q-forms"),
        ({"x": {"_type": "gauss", "_value": [0, 1]}}, "x: _type 'gauss' is not one NNI defines"),
    ],
)
def test_a_space_optuna_cannot_sample_is_refused_naming_the_parameter(space, said):
    with pytest.raises(SpaceError, match=f"^{said}"):
        OptunaTuner(sampler="tpe").update_search_space(space)


def test_each_sampler_is_optunas_own_with_the_documented_settings():
    """`sampler` names Optuna's class; TPE is multivariate with group decomposition and the
    constant liar, QMC scrambled, unless sampler_args say otherwise; sampler_args reach the
    constructor (a key it does not take is refused, naming the sampler)."""
    import optuna

    classes = {"tpe": "TPESampler", "motpe": "TPESampler", "cmaes": "CmaEsSampler",
               "gp": "GPSampler", "qmc": "QMCSampler", "random": "RandomSampler",
               "nsgaii": "NSGAIISampler"}  # fmt: skip
    assert set(classes) == set(SAMPLERS)
    for name, cls in classes.items():
        objectives = ["default", "parameters"] if name in ("nsgaii", "motpe") else None
        tuner = OptunaTuner(sampler=name, seed=0, objectives=objectives)
        assert type(tuner.sampler) is getattr(optuna.samplers, cls), name
        with pytest.raises(ArgsError, match=f"^sampler_args for {name}: "):
            OptunaTuner(sampler=name, objectives=objectives, sampler_args={"bogus": 1})
    tpe = OptunaTuner(sampler="tpe").sampler
    assert (tpe._multivariate, tpe._group, tpe._constant_liar) == (True, True, True)
    assert (
        OptunaTuner(sampler="tpe", sampler_args={"n_startup_trials": 3}).sampler._n_startup_trials
        == 3
    )
    assert OptunaTuner(sampler="tpe", sampler_args={"group": False}).sampler._group is False
    assert OptunaTuner(sampler="qmc").sampler._scramble is True
    with pytest.raises(ArgsError, match="^sampler_args must be a mapping"):
        OptunaTuner(sampler="tpe", sampler_args=[1])
    validate_class_args(sampler="tpe", sampler_args={"n_startup_trials": 3})  # a known argument


@pytest.mark.parametrize("sampler", ["random", "gp"])
def test_a_seed_repeats_the_start_up_suggestions(sampler):
    """Random and GP's start-up (random) trials repeat with the seed (GP's model is slow to
    reach: tests/test_optuna_tuner.py's seed test marks it slow)."""

    def first(seed):
        args = {"n_startup_trials": 10} if sampler == "gp" else {}
        return run(OptunaTuner(sampler=sampler, seed=seed, sampler_args=args), 3, 1)

    assert first(1) == first(1)
    assert first(1) != first(2)


def test_what_the_dispatcher_log_says_of_each_trial(caplog):
    """dispatcher.log is where a user reads what the tuner was told: each final, each trial that
    ended without one, each final that lacked an objective; a result for a parameter id the
    tuner never gave (a customized trial) is ignored, not a crash."""
    import logging

    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, "nni.nnisuite"):
        tuner = OptunaTuner(sampler="tpe", objectives=["default", "parameters"], seed=0)
        d = Driver(tuner)
        a, b, c = (r["parameter_id"] for r in d.ask(3))
        d.final(a, {"default": 0.5, "parameters": 10})
        d.final(b, {"default": 0.5})
        d.end(c, "EARLY_STOPPED")
        tuner.receive_trial_result(10_000, {}, {"default": 0.1, "parameters": 1})
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("nni.nnisuite")]
    assert f"parameter id {a} told: [0.5, 10.0]" in lines
    assert (
        f"trial {b}: final result {{'default': 0.5}} lacks a finite default / parameters: "
        "told FAIL" in lines
    )
    assert f"parameter id {c} told: PRUNED (NNI: EARLY_STOPPED)" in lines
    assert len(tuner.study.trials) == 3


def test_import_data_skips_what_it_cannot_take_and_keeps_the_rest(caplog):
    """A resume hands over whatever NNI stored: entries that are not records, values outside
    the space (a nested option or a list that is not among the choices), results without the
    objectives; each is skipped with its reason in the log and the entries after it still
    count; two objectives come back as two values."""
    import logging

    space = {
        "kind": {"_type": "choice", "_value": ["plain", {"_name": "a", "m": {"_type": "uniform",
                                                                           "_value": [0, 1]}}]},
        "pair": {"_type": "choice", "_value": [[1, 2], [3, 4]]},
    }  # fmt: skip
    tuner = OptunaTuner(sampler="tpe", objectives=["default", "parameters"], seed=0)
    tuner.update_search_space(space)
    good = [{"kind": {"_name": "a", "m": 0.25}, "pair": [3, 4]}, {"kind": "plain", "pair": [1, 2]}]
    data = [
        "not a record",
        {"parameter": {"kind": "plain", "pair": [9, 9]}, "value": {"default": 1, "parameters": 1}},
        {"value": {"default": 1, "parameters": 1}},
        {"parameter": good[0], "value": {"default": 0.5}},
        *({"parameter": p, "value": {"default": 0.5 + i, "parameters": 7}}
          for i, p in enumerate(good)),
    ]  # fmt: skip
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, "nni.nnisuite"):
        tuner.import_data(data)
    done = tuner.study.trials
    assert [t.values for t in done] == [[0.5, 7.0], [1.5, 7.0]]
    assert done[0].params == {"kind": 1, "kind/1/m": 0.25, "pair": 1}
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("nni.nnisuite")]
    assert "import_data: 2 of 6 earlier trials added" in lines
    skipped = [line for line in lines if line.startswith("import_data: skipped ")]
    assert len(skipped) == 1 and "[9, 9]" in skipped[0] and not skipped[0].endswith("(None)")


def test_the_end_event_is_noted_on_the_call_that_tells_the_tuner(monkeypatch):
    """Under nnisuite's ordered trial end (nnisuite.nni_patches.dispatcher, on in every study
    nnisuite starts) NNI's handle_trial_end runs twice per end: the manager's part, then the
    tuner's. The tuner notes the event on the second only, whichever end came between."""
    from nnisuite.nni_patches import dispatcher
    from nnisuite.study.optuna_tuner import heard

    monkeypatch.setitem(dispatcher.ORDERED, "on", True)
    d = Driver(OptunaTuner(sampler="tpe", seed=0))
    heard(d.dispatcher, {"event": "EARLY_STOPPED"})  # the manager's part
    assert d.tuner.event is None
    heard(d.dispatcher, {"event": "EARLY_STOPPED", dispatcher.TUNER_PART: True})
    assert d.tuner.event == "EARLY_STOPPED"
