"""nnisuite.config.validate: each problem named with file, key and fix; exit code 2; shipped files
are clean; the runner refuses to start an invalid experiment."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from nnisuite.config.validate import main, validate
from tests.helpers.paths import REPO

SHIPPED = sorted(p for p in (REPO / "experiments").glob("*.yaml") if not p.name.startswith("."))
SPACE = {
    "features1": {"_type": "choice", "_value": [128, 256]},
    "lr": {"_type": "loguniform", "_value": [0.0001, 0.1]},
}


def write_experiment(tmp_path, space=None, space_file="space.yaml", **config):
    if space is not None:
        (tmp_path / space_file).write_text(yaml.safe_dump(space))
    raw = {
        "searchSpaceFile": space_file,
        "trialCodeDirectory": str(REPO),
        "trialCommand": "python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 2",
        "trialConcurrency": 1,
        "maxTrialNumber": 2,
        # a TPE that models from its second result: no random-search note (tpe_start_up)
        "tuner": {
            "name": "TPE",
            "classArgs": {"optimize_mode": "maximize", "tpe_args": {"n_startup_jobs": 1}},
        },
        "trainingService": {"platform": "local"},
    } | config
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path):
    # notes are allowed: the log's own 10-trial TPE templates are random search (tpe_start_up)
    problems = [p for p in validate(path) if p.severity != "note"]
    if path.name == "mlp_tpe_remote.yaml":  # a template: its SSH key is the user's to fill in
        assert len(problems) == 1 and "SSH key file" in problems[0].message
    else:
        assert problems == []


@pytest.mark.parametrize(
    "trials, tpe_args, said",
    [(10, {}, True), (20, {}, True), (21, {}, False), (10, {"n_startup_jobs": 5}, False)],
)
def test_a_tpe_study_within_its_random_start_up_is_called_random_search(
    tmp_path, trials, tpe_args, said
):
    tuner = {"name": "TPE", "classArgs": {"optimize_mode": "maximize", "tpe_args": tpe_args}}
    path = write_experiment(tmp_path, SPACE, maxTrialNumber=trials, tuner=tuner)
    notes = [p for p in validate(path) if "it is random search" in p.message]
    assert len(notes) == said and all(p.severity == "note" for p in notes)


def test_the_logs_feature1_defect(tmp_path):
    space = SPACE | {"feature1": {"_type": "choice", "_value": [128]}}
    (problem,) = validate(write_experiment(tmp_path, space))
    text = str(problem)
    assert "exp.yaml" in text and "'feature1'" in text and "rename it to 'features1'" in text


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"_type": "chioce", "_value": [1]}, "unknown _type 'chioce'. Fix: did you mean 'choice'"),
        ({"_type": "choice", "_value": []}, "empty _value"),
        ({"_type": "uniform", "_value": [0.1, 0.01]}, "low >= high"),
        ({"_type": "loguniform", "_value": [0, 0.1]}, "bounds must be > 0"),
        ({"_type": "quniform", "_value": [1, 10]}, "must be 3 finite numbers"),
        ({"_type": "normal", "_value": [0, -1]}, "sigma must be > 0"),
        ({"_type": "choice"}, "must be a mapping with `_type` and `_value`"),
    ],
)
def test_malformed_space_entries(tmp_path, entry, fragment):
    problems = validate(write_experiment(tmp_path, {"lr": entry}))
    assert len(problems) == 1 and fragment in str(problems[0])
    assert "space.yaml" in problems[0].file and problems[0].key == "lr"


def test_value_of_the_wrong_type_for_the_trial(tmp_path):
    problems = validate(
        write_experiment(tmp_path, {"batch_size": {"_type": "uniform", "_value": [16, 256]}})
    )
    assert len(problems) == 1 and "not a valid int" in str(problems[0])


def test_cli_only_setting_is_not_tunable(tmp_path):
    problems = validate(write_experiment(tmp_path, {"out": {"_type": "choice", "_value": ["a"]}}))
    assert len(problems) == 1 and "command-line setting" in str(problems[0])


def test_missing_space_file(tmp_path):
    (problem,) = validate(write_experiment(tmp_path, None, space_file="nowhere.yaml"))
    assert problem.key == "searchSpaceFile" and "does not exist" in problem.message


def test_unknown_config_key_from_nni(tmp_path):
    (problem,) = validate(write_experiment(tmp_path, SPACE, maxTrialNum=3))
    assert problem.key == "maxTrialNum" and "maxTrialNumber" in problem.fix


def test_bad_trial_command_flag(tmp_path):
    command = "python3 -m nnisuite.launcher nnisuite.trials.mlp --epocs 2"
    (problem,) = validate(write_experiment(tmp_path, SPACE, trialCommand=command))
    assert problem.key == "trialCommand" and "--epocs" in problem.message


@pytest.mark.parametrize(
    "flags, fragment",
    [
        ("--dataset imagenet", "dataset 'imagenet' unknown"),
        ("--epochs 0", "epochs must be >= 1, got 0"),
        ("--lr -1", "lr must be > 0, got -1.0"),
        ("--optimizer adam --momentum 0.9", "momentum 0.9 is SGD's"),
    ],
)
def test_the_trials_own_range_checks_refuse_its_flags_first(tmp_path, flags, fragment):
    """The trial refuses these at run time (every trial would fail); validation asks the trial's
    own checks first."""
    command = f"python3 -m nnisuite.launcher nnisuite.trials.mlp {flags}"
    (problem,) = validate(write_experiment(tmp_path, SPACE, trialCommand=command))
    assert problem.key == "trialCommand" and fragment in problem.message, problem


@pytest.mark.parametrize(
    "name, spec, fragment",
    [
        ("features1", {"_type": "choice", "_value": [128, 100_000_000]}, "must be <= 65536"),
        ("lr", {"_type": "uniform", "_value": [-0.1, 0.1]}, "lr must be > 0"),
        ("batch_size", {"_type": "randint", "_value": [0, 64]}, "batch_size must be >= 1"),
        ("optimizer", {"_type": "choice", "_value": ["sgd", "adamw2"]}, "unknown"),
    ],
)
def test_space_values_the_trial_refuses_are_named(tmp_path, name, spec, fragment):
    (problem,) = validate(write_experiment(tmp_path, SPACE | {name: spec}))
    assert problem.key == f"search space {name!r}" and fragment in problem.message, problem


def test_required_parameter_nobody_sets(tmp_path):
    """A trial parameter without a default must come from the space or the command line."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "strict_trial.py").write_text(
        "from dataclasses import dataclass\n\nfrom nnisuite.trials.params import TrialParams\n\n\n"
        "@dataclass(kw_only=True)\nclass StrictParams(TrialParams):\n    width: int\n\n\n"
        "PARAMS = StrictParams\n"
    )
    kw = {
        "trialCodeDirectory": str(code),
        "trialCommand": "python3 -m nnisuite.launcher strict_trial",
    }
    try:
        (problem,) = validate(
            write_experiment(tmp_path, {"epochs": {"_type": "choice", "_value": [1]}}, **kw)
        )
        assert problem.key == "width" and "--width" in problem.fix
        assert (
            validate(
                write_experiment(tmp_path, {"width": {"_type": "choice", "_value": [8]}}, **kw)
            )
            == []
        )
        kw["trialCommand"] += " --width 16"
        assert (
            validate(
                write_experiment(tmp_path, {"epochs": {"_type": "choice", "_value": [1]}}, **kw)
            )
            == []
        )
    finally:
        sys.modules.pop("strict_trial", None)
        if str(code) in sys.path:
            sys.path.remove(str(code))


def test_cli_exit_codes(tmp_path, capsys):
    bad = write_experiment(tmp_path, SPACE | {"feature2": {"_type": "choice", "_value": [1]}})
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 1 and "feature2" in err
    assert main([str(SHIPPED[0])]) == 0


def test_runner_refuses_an_invalid_experiment(tmp_path):
    bad = write_experiment(tmp_path, SPACE | {"feature1": {"_type": "choice", "_value": [1]}})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnisuite.study.run",
            str(bad),
            "--experiment-dir",
            str(tmp_path / "nni"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2 and "feature1" in proc.stderr
    assert not (tmp_path / "nni").exists()  # nothing started


@pytest.mark.parametrize(
    "tuner, key, fragment",
    [
        ({"name": "TPEE"}, "tuner.name", "did you mean 'TPE'"),
        ({"name": "Medianstop"}, "tuner.name", "Medianstop is an assessor"),
        (
            {"name": "TPE", "classArgs": {"optimise_mode": "maximize"}},
            "tuner.classArgs.optimise_mode",
            "did you mean 'optimize_mode'",
        ),
        (
            {"name": "TPE", "classArgs": {"optimize_mode": "maximum"}},
            "tuner.classArgs.optimize_mode",
            "must be maximize or minimize, got 'maximum'",
        ),
        ({"name": "TPE", "classArgs": {"seed": "x"}}, "tuner.classArgs.seed", "'x' does not fit"),
        ({"name": "GridSearch", "classArgs": {"seed": 1}}, "tuner.classArgs", "takes no classArgs"),
        ({"name": "SMAC"}, "tuner.name", "needs the Python package 'smac'"),
        ({"name": "TPE", "clasArgs": {}}, "tuner.clasArgs", "did you mean 'classArgs'"),
        ("TPE", "tuner", "must be a mapping"),
    ],
)
def test_tuner_mistakes(tmp_path, tuner, key, fragment):
    problems = validate(write_experiment(tmp_path, SPACE, tuner=tuner))
    assert [p.key for p in problems] == [key] and fragment in str(problems[0]), problems


def test_a_tuner_that_cannot_sample_a_space_type_is_named(tmp_path):
    tuner = {"name": "Metis", "classArgs": {"optimize_mode": "maximize"}}
    (problem,) = validate(write_experiment(tmp_path, SPACE, tuner=tuner))
    assert problem.key == "search space 'lr'" and "Metis" in problem.message
    assert "loguniform" in problem.message


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("trialConcurrency", -1, "trialConcurrency must be a positive integer, got -1"),
        ("maxTrialNumber", 0, "maxTrialNumber must be a positive integer, got 0"),
        ("maxTrialDuration", "ten minutes", "a duration"),
        ("trialCommand", [1], "trialCommand must be a command line"),
        ("trainingService", {"platform": "locall"}, "trainingService must be a mapping"),
        ("logLevel", "loud", "logLevel must be one of"),
        ("maxTrialNumbr", 3, "unknown config key. Fix: did you mean 'maxTrialNumber'"),
    ],
)
def test_config_key_mistakes_are_one_line_each(tmp_path, key, value, fragment):
    (problem,) = validate(write_experiment(tmp_path, SPACE, **{key: value}))
    assert problem.key == key and fragment in str(problem)


def test_nas_settings_mistakes(tmp_path):
    path = tmp_path / "nas.yaml"
    for settings, fragment in (
        ({"strategy": "grid", "epochs": "x"}, "epochs must be an integer >= 1, got 'x'"),
        ({"strategy": "grid", "epoch": 3}, "did you mean 'epochs'"),
        ({"strategy": "anneal"}, "strategy 'anneal' unknown"),
        ({"strategy": "grid", "dataset": ["digits"]}, "dataset ['digits'] unknown"),
    ):
        path.write_text(yaml.safe_dump(settings))
        (problem,) = validate(path)
        assert fragment in str(problem), problem


def test_the_cached_algorithm_registry_is_nnis_and_sees_a_registration(tmp_path, monkeypatch):
    """nnisuite.config.algorithms reads NNI's registry once per state of its files: the same
    entries and lookups as NNI's config_manager, and an `nnictl algo register` seen at once."""
    from nni.tools.package_utils import config_manager
    from nni.tools.package_utils.common import AlgoMeta

    from nnisuite.config import algorithms

    monkeypatch.setenv("NNI_CONFIG_DIR", str(tmp_path))
    assert algorithms.registry() == config_manager.get_all_algo_meta()
    for name in ("TPE", "tpe", "Medianstop", "hyperband", "nosuch"):
        assert algorithms.lookup(name) == config_manager.get_algo_meta(name)
    assert algorithms.lookup("MyOwnTuner") is None
    mine = AlgoMeta(
        "MyOwnTuner", None, "my.module.Tuner", True, None, None, "tuner", False, False, None
    )
    config_manager.register_algo_meta(mine)
    assert algorithms.lookup("myowntuner") == mine == config_manager.get_algo_meta("MyOwnTuner")
    assert "MyOwnTuner" in algorithms.names("tuner")
