"""nnisuite.config.experiment: trial commands parsed and rewritten, overrides applied to a YAML."""

from __future__ import annotations

import pytest

from nnisuite.config.experiment import TrialCommand, apply_overrides, get_key, load_yaml
from nnisuite.launcher import trial_command
from tests.helpers.paths import REPO


@pytest.mark.parametrize(
    "command, module, args",
    [
        (
            "python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 2",
            "nnisuite.trials.mlp",
            ["--epochs", "2"],
        ),
        (
            "python3 -m nnisuite.launcher --python /x/python nnisuite.trials.rnn",
            "nnisuite.trials.rnn",
            [],
        ),
        ("python -m nnisuite.trials.mlp --lr 0.1", "nnisuite.trials.mlp", ["--lr", "0.1"]),
        ("python3 train.py", None, []),
    ],
)
def test_parse(command, module, args):
    parsed = TrialCommand.parse(command)
    assert parsed.module == module and parsed.args == args


def test_with_flag_replaces_both_spellings_and_keeps_the_rest():
    cmd = TrialCommand.parse(
        "python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 2 --lr=0.1 --threads 1"
    )
    out = cmd.with_flag("--epochs", 5).with_flag("--lr", 0.2)
    assert out.args == ["--threads", "1", "--epochs", "5", "--lr", "0.2"]
    assert (
        str(out)
        == "python3 -m nnisuite.launcher nnisuite.trials.mlp --threads 1 --epochs 5 --lr 0.2"
    )
    assert cmd.args == ["--epochs", "2", "--lr=0.1", "--threads", "1"]  # not mutated
    assert (cmd.flag("--epochs"), cmd.flag("--lr"), cmd.flag("--dataset")) == ("2", "0.1", None)
    assert out.flag("--lr") == "0.2"  # what with_flag wrote, flag reads


def test_trial_command_constant_round_trips():
    cmd = trial_command("nnisuite.trials.mlp", "--epochs", "2")
    assert cmd == "python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 2"
    assert TrialCommand.parse(cmd).module == "nnisuite.trials.mlp"


def test_get_key_follows_nnis_case_rules():
    raw = {"trial_command": "x", "MaxTrialNumber": 3}
    assert get_key(raw, "trialCommand") == ("trial_command", "x")
    assert get_key(raw, "maxTrialNumber") == ("MaxTrialNumber", 3)
    assert get_key(raw, "tuner") == (None, None)


def test_overrides_rewrite_the_trial_command():
    raw = load_yaml(REPO / "experiments" / "mlp_tpe_digits.yaml")
    out = apply_overrides(raw, max_trials=3, concurrency=1, dataset="fashion-mnist", epochs=4)
    cmd = TrialCommand.parse(out["trialCommand"])
    assert cmd.module == "nnisuite.trials.mlp"
    assert cmd.args.count("--epochs") == 1 and cmd.args[cmd.args.index("--epochs") + 1] == "4"
    assert cmd.args[cmd.args.index("--dataset") + 1] == "fashion-mnist"
    assert out["maxTrialNumber"] == 3 and out["trialConcurrency"] == 1
    assert raw["maxTrialNumber"] == 10  # the loaded mapping is not changed


def test_load_yaml_gives_a_fresh_mapping_each_time_and_reads_a_rewritten_file(tmp_path):
    path = tmp_path / "e.yml"
    path.write_text("tuner: {name: TPE, classArgs: {seed: 1}}\n")
    first = load_yaml(path)
    first["tuner"]["classArgs"]["seed"] = 99  # a caller changing what it got
    assert load_yaml(path)["tuner"]["classArgs"]["seed"] == 1
    path.write_text("tuner: {name: TPE, classArgs: {seed: 2}}\n")  # same size, same tick
    assert load_yaml(path)["tuner"]["classArgs"]["seed"] == 2


def test_nni_reads_its_registry_and_search_spaces_through_libyaml_with_the_same_result(
    tmp_path, monkeypatch
):
    import yaml
    from nni.experiment.config import experiment_config
    from nni.tools.package_utils import config_manager

    from nnisuite.config.experiment import nni_reads_yaml_with_libyaml

    for module in (experiment_config, config_manager):
        monkeypatch.setattr(module, "yaml", yaml)  # as NNI ships
    space = tmp_path / "space.yml"
    space.write_text(
        "lr: {_type: loguniform, _value: [0.0001, 0.1]}\nn: {_type: choice, _value: [1, 2]}\n"
    )
    plain = (config_manager.get_all_algo_meta(), experiment_config._load_search_space_file(space))
    nni_reads_yaml_with_libyaml()
    assert config_manager.yaml is not yaml and experiment_config.yaml is not yaml
    assert config_manager.yaml.safe_load is not yaml.safe_load
    fast = (config_manager.get_all_algo_meta(), experiment_config._load_search_space_file(space))
    assert fast[0] == plain[0] and len(fast[0]) > 10 and fast[1] == plain[1]
    assert config_manager.yaml.dump is yaml.dump  # every other name PyYAML's own
    monkeypatch.setenv("NNISUITE_NNI_LIBYAML", "0")
    monkeypatch.setattr(config_manager, "yaml", yaml)
    nni_reads_yaml_with_libyaml()
    assert config_manager.yaml is yaml  # switched off


def test_nni_checks_config_types_once_with_the_same_answers(monkeypatch):
    """nnisuite.config.experiment.nni_checks_config_types_once: NNI's config classes work out their
    fields once per class and keep typeguard's answer for immutable values and configs; every
    config is accepted or refused as by NNI's own functions, with the same message, and
    serialises the same, with a third of the type checks or fewer."""
    import typing

    import typeguard
    from nni.experiment.config import utils
    from nni.experiment.config.utils import internal

    from nnisuite.config.experiment import TYPES_SWITCH, to_nni_config
    from nnisuite.config.plan import is_plan
    from nnisuite.config.validate import is_nas_settings

    nni_fields = getattr(internal.fields, "nni", internal.fields)  # as NNI ships them
    nni_is_instance = getattr(internal.is_instance, "nni", internal.is_instance)
    for module in (internal, utils):
        monkeypatch.setattr(module, "fields", nni_fields)
        monkeypatch.setattr(module, "is_instance", nni_is_instance)
    cases = []
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        raw = load_yaml(path)
        if is_plan(raw) or is_nas_settings(raw) or "remote" in path.name:
            continue
        cases.append((raw, path))
        for key, value in (
            ("trialConcurrency", "x"),
            ("maxTrialNumber", 2.5),
            ("debug", 1),
            ("logLevel", "loud"),
        ):
            cases.append(({**raw, key: value}, path))
        service = {**raw["trainingService"], "useActiveGpu": "yes"}
        cases.append(({**raw, "trainingService": service}, path))
        cases.append(({**raw, "tuner": {**raw["tuner"], "classArgs": [1]}}, path))
    checks = []
    real_check = typeguard.check_type

    def counted(*args, **kwargs):
        checks.append(1)
        return real_check(*args, **kwargs)

    monkeypatch.setattr(typeguard, "check_type", counted)

    def outcomes() -> list[str]:
        found = []
        for raw, path in cases:
            try:
                config = to_nni_config(raw, path)
                config.validate()
                found.append(config.json())
            except Exception as exc:  # noqa: BLE001 - NNI's answer, compared as text
                found.append(f"{type(exc).__name__}: {exc}")
        return found

    monkeypatch.setenv(TYPES_SWITCH, "0")
    plain = outcomes()
    assert internal.fields is nni_fields  # switched off
    plain_checks, checks[:] = len(checks), []
    monkeypatch.delenv(TYPES_SWITCH)
    first = outcomes()
    assert internal.fields is not nni_fields and utils.is_instance is not nni_is_instance
    checks[:] = []
    again = outcomes()
    assert first == plain and again == plain
    hpo = typing.Literal["hpo"]  # ExperimentConfig.experiment_type: the value decides, too
    assert utils.is_instance("hpo", hpo) and not utils.is_instance("nas", hpo)
    refused = [o for o in plain if "Error: " in o]
    assert 10 < len(refused) < len(plain), plain  # both kinds of answer are compared
    assert len(checks) * 3 <= plain_checks, (len(checks), plain_checks)
    print(f"{len(plain)} configs, {len(refused)} refused; {plain_checks} -> {len(checks)} checks")
