"""Your own trial, read without running it: nnisuite.config.trial (which trial a command runs),
nnisuite.config.scan (the names it reads from nni.get_next_parameter()), and validation of a foreign
experiment file (the log's feature1 defect with file:line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nnisuite.config.experiment import ConfigError, TrialCommand, apply_overrides
from nnisuite.config.scan import compare, scan_trial
from nnisuite.config.trial import Trial, through_launcher
from nnisuite.config.validate import validate

SPACE = {
    "lr": {"_type": "loguniform", "_value": [0.001, 0.1]},
    "momentum": {"_type": "uniform", "_value": [0, 0.9]},
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def findings(tmp_path, source: str, space=SPACE):
    """(severity, name, line) of each problem the scan reports for `source`."""
    path = write(tmp_path, "train.py", source)
    out = []
    for p in compare(scan_trial(path), space, "space.yaml"):
        name = p.key.split("'")[1] if "'" in p.key else p.key
        here = p.file.startswith(f"{path}:")
        line = int(p.file.rsplit(":", 1)[1]) if here else None
        out.append((p.severity, name, line))
    return out


def test_a_misspelt_subscript_is_an_error_at_its_line_and_the_space_name_a_warning(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni
        params = nni.get_next_parameter()
        lr = params["lr"]
        m = params["momentun"]
        """,
    )
    assert ("error", "momentun", 4) in got
    assert ("warning", "momentum", None) in got
    assert not [g for g in got if g[1] == "lr"]


def test_an_optional_parameter_read_with_a_default_is_a_warning_a_typo_an_error(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni
        p = nni.get_next_parameter()
        steps = p.get("steps", 3)      # nothing like it in the space: optional on purpose
        mom = p.get("momentun", 0.9)   # one letter off momentum: the log's feature1
        lr = p.get("lr")               # in the space: fine
        w = p.get("weight")            # None when absent
        """,
    )
    assert ("warning", "steps", 3) in got
    assert ("error", "momentun", 4) in got
    assert ("error", "weight", 6) in got


def test_the_report_has_file_line_and_did_you_mean(tmp_path):
    path = write(tmp_path, "t.py", "import nni\np = nni.get_next_parameter()\np.get('lrate', 1)\n")
    (problem,) = [
        p for p in compare(scan_trial(path), {"lr_rate": {}}, "s.yaml") if p.severity == "error"
    ]
    assert problem.file.endswith("t.py:3")
    assert "did you mean 'lr_rate'" in problem.fix
    assert "silently uses its default" in problem.message


def test_through_a_function_argument_and_keyword(tmp_path):
    got = findings(
        tmp_path,
        """
        from nni import get_next_parameter

        def train(cfg, other=None):
            return cfg["lr"] * cfg.get("momentum", 0.9)

        def main(p):
            train(p)
            train(cfg=p)

        if __name__ == "__main__":
            main(get_next_parameter())
        """,
    )
    assert got == []  # both names read, inside train(), reached through two calls


def test_a_module_level_dict_read_inside_a_function(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni as n
        P = n.get_next_parameter()
        def fit():
            return P["lr"], P["momentun"]
        """,
    )
    assert ("error", "momentun", 4) in got


def test_unpacked_into_a_function_its_parameters_are_the_names(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni
        def train(lr, momentun=0.5, epochs=3):
            pass
        train(**nni.get_next_parameter())
        """,
    )
    # momentum is not an argument of train: an unexpected keyword; epochs has a default: fine
    assert ("error", "momentum", 2) in got
    assert not [g for g in got if g[1] in ("epochs", "lr")]


def test_a_required_argument_the_space_lacks_is_an_error(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni
        def train(lr, momentum, batch):
            pass
        train(**nni.get_next_parameter())
        """,
    )
    assert ("error", "batch", 4) in got


def test_a_dict_of_defaults_marks_untuned_names(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni
        params = {"lr": 0.1, "momentum": 0.9, "epochs": 10}
        params.update(nni.get_next_parameter())
        print(params)
        n = params["epochs"] + params["lr"] + params["momentum"]
        """,
    )
    assert got == []  # epochs is untuned on purpose; print() does not lose track


@pytest.mark.parametrize(
    "reading",
    [
        'params = {"feature1": 64, "lr": 0.1}\nparams.update(nni.get_next_parameter())',
        'defaults = {"feature1": 64, "lr": 0.1}\nparams = {**defaults, **nni.get_next_parameter()}',
    ],
)
def test_the_logs_feature1_defect_in_nnis_quickstart_style_is_an_error(tmp_path, reading):
    """NNI's quickstart reads parameters over a dict of defaults: with the log's typo (space
    `features1`, trial `feature1`) every trial trains with the default. An error naming both
    places, not a warning."""
    space = {
        "features1": {"_type": "choice", "_value": [128, 256]},
        "lr": {"_type": "loguniform", "_value": [0.001, 0.1]},
    }
    path = write(tmp_path, "train.py", "import nni\n" + reading + "\n"
                 "width = params['feature1']\nrate = params['lr']\n")  # fmt: skip
    problems = compare(scan_trial(path), space, "space.yaml", {"features1": 2})
    (error,) = [p for p in problems if p.severity == "error"]
    assert error.file == "space.yaml:2" and "'features1'" in error.key
    assert f"reads 'feature1' at {path}:" in error.message and "never tuned" in error.message
    assert not [p for p in problems if p.severity == "warning"]


def test_where_tracking_is_lost_it_says_so_and_reports_no_unread_names(tmp_path):
    got = findings(
        tmp_path,
        """
        import nni
        import somewhere
        p = nni.get_next_parameter()
        somewhere.train(p)
        """,
    )
    assert got == [("note", "trial", 4)]


def test_a_trial_that_never_asks_nni_is_a_note(tmp_path):
    assert findings(tmp_path, "print('hello')\n") == [("note", "trial", None)]


def test_a_local_module_holding_the_call_is_read(tmp_path):
    write(tmp_path, "mypkg/__init__.py", "")
    write(
        tmp_path,
        "mypkg/hpo.py",
        "import nni\ndef params():\n    p = nni.get_next_parameter()\n    return p['lrr']\n",
    )
    got = findings(tmp_path, "from mypkg.hpo import params\nparams()\n")
    assert ("error", "lrr", None) in got  # reported at mypkg/hpo.py:4


@pytest.mark.parametrize(
    "command, kind, source",
    [
        ("python3 train.py --lr 0.1", "python-script", "train.py"),
        ("NNISUITE_SEED=1 python3 -u sub/t.py", "python-script", "sub/t.py"),
        ("python3 -m mypkg.run --x", "python-module", "mypkg/run.py"),
        ("bash run.sh", "other", None),
        ("python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 1", "nnisuite", None),
    ],
)
def test_which_trial_a_command_runs(tmp_path, command, kind, source):
    write(tmp_path, "mypkg/run.py", "print(1)\n")
    trial = Trial.parse(command, tmp_path)
    assert trial.kind == kind
    if source:
        assert trial.source == tmp_path / source


def test_commands_keep_their_environment_and_get_the_seed_there():
    cmd = TrialCommand.parse("A=1 python3 -u train.py --x 'a b'")
    assert cmd.env == {"A": "1"} and cmd.script == "train.py" and cmd.args == ["--x", "a b"]
    raw = {"trialCommand": str(cmd), "trialConcurrency": 1}
    out = apply_overrides(raw, concurrency=2, trial_flags={"--seed": 3}, own_trial=False)
    again = TrialCommand.parse(out["trialCommand"])
    assert again.env == {"A": "1", "NNISUITE_SEED": "3", "OMP_NUM_THREADS": "1"}
    assert again.args == ["--x", "a b"]  # no --seed / --threads flags for a foreign script
    with pytest.raises(ConfigError, match="--epochs"):
        apply_overrides(raw, epochs=2, own_trial=False)


def test_the_launcher_takes_a_script_of_this_python_only(tmp_path):
    write(tmp_path, "train.py", "import nni\n")
    same = Trial.parse("python3 train.py --a 1", tmp_path)
    command, warm, said = through_launcher(same, None)
    assert same.same_python() and warm and "--script train.py --a 1" in command
    other = Trial.parse("/usr/bin/env-python-nowhere/python3 train.py", tmp_path)
    assert through_launcher(other, None)[:2] == (None, False)
    assert through_launcher(same, False)[:2] == (None, False)
    assert through_launcher(Trial.parse("bash run.sh", tmp_path), True)[:2] == (None, False)


def test_validation_of_a_foreign_experiment(tmp_path):
    write(
        tmp_path,
        "proj/trial.py",
        """
        import nni
        p = nni.get_next_parameter()
        print(p["x"], p["yy"])
        """,
    )
    config = write(
        tmp_path,
        "proj/conf/exp.yml",
        """
        searchSpace:
          x: {_type: uniform, _value: [0, 1]}
          y: {_type: uniform, _value: [0, 1]}
        trialCommand: python3 trial.py
        trialCodeDirectory: ..
        trialConcurrency: 1
        maxTrialNumber: 2
        tuner: {name: TPE}
        trainingService: {platform: local}
        """,
    )
    problems = validate(config)
    text = [f"{p.severity}: {p}" for p in problems]
    assert any(t.startswith("error:") and "trial.py:3" in t and "'yy'" in t for t in text), text
    assert any(t.startswith("warning:") and "exp.yml:3" in t and "'y'" in t for t in text), text
    assert sum(t.startswith("note:") and "your own trial" in t for t in text) == 1
    config.write_text(config.read_text().replace("trialCodeDirectory: ..", "trialCodeDirectory: ."))
    (missing,) = validate(config)
    assert "does not exist" in missing.message and missing.severity == "error"


def test_an_empty_default_and_a_copy_keep_track(tmp_path):
    got = findings(
        tmp_path,
        """
        import copy
        import nni
        p = nni.get_next_parameter() or {}
        q = copy.deepcopy(p)
        r = dict(q)
        r.get("lr", 0.1), r["momentum"], p.get("lrr")
        """,
    )
    assert got == [("error", "lrr", 6)]


def test_a_warm_launcher_preloads_what_the_trial_imports(tmp_path):
    from tests.helpers.paths import REPO

    write(
        tmp_path,
        "train.py",
        """
        import os, json
        import numpy as np
        from torch import nn
        import torch.nn.functional as F
        import nni
        def later():
            import sklearn.ensemble
        """,
    )
    trial = Trial.parse("python3 train.py", tmp_path)
    assert trial.preload() == ("numpy", "torch", "torch.nn.functional", "sklearn.ensemble")
    assert (
        Trial.parse("python3 -m nnisuite.launcher nnisuite.trials.mlp", REPO).preload() is None
    )  # all of it
    fault = Trial.parse("python3 -m nnisuite.launcher tests.fixtures.fault_trial", REPO)
    assert fault.kind == "python-module" and fault.preload() == ()  # nni's own deps only


ARGPARSE = """
import argparse
import nni
from nni.utils import merge_parameter

def get_params():
    parser = argparse.ArgumentParser()
    parser.add_argument("--feature1", type=int, default=64)
    parser.add_argument("--learning-rate", dest="lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    args, _ = parser.parse_known_args()
    return args

"""


@pytest.mark.parametrize(
    "reading",
    [
        # NNI's own mnist-pytorch example
        "params = vars(merge_parameter(get_params(), nni.get_next_parameter()))\n"
        "w = params['feature1'] + params['lr'] + params['epochs']",
        "args = merge_parameter(get_params(), nni.get_next_parameter())\n"
        "w = args.feature1 + args.lr + args.epochs",
        "args = get_params()\nvars(args).update(nni.get_next_parameter())\n"
        "w = args.feature1 + args.lr + args.epochs",
        "args = get_params()\nparams = vars(args)\nparams.update(nni.get_next_parameter())\n"
        "w = params['feature1'] + args.lr + params['epochs']",
    ],
    ids=["vars-merge", "merge", "vars-update", "vars-then-update"],
)
def test_the_feature1_defect_over_argparse_defaults_is_an_error(tmp_path, reading):
    """Parameters over argparse's defaults (add_argument destinations read without running
    anything): `epochs`, untuned on purpose, is fine; the space's `features1` beside the
    trial's `feature1` is the log's defect; `lr` (dest= of --learning-rate) is read."""
    space = {
        "features1": {"_type": "choice", "_value": [128, 256]},
        "lr": {"_type": "loguniform", "_value": [0.001, 0.1]},
    }
    path = write(tmp_path, "train.py", ARGPARSE + reading + "\n")
    problems = compare(scan_trial(path), space, "space.yaml", {"features1": 2})
    assert [(p.severity, p.key) for p in problems] == [("error", "search space 'features1'")]
    assert "reads 'feature1' at" in problems[0].message
    right = {**space, "feature1": space["features1"]}
    del right["features1"]
    assert compare(scan_trial(path), right, "space.yaml") == []


def test_a_function_of_a_local_module_is_read_where_the_parameters_go(tmp_path):
    """`build(**params)` and `train(params)` into the user's own model.py: its signature and
    reads are followed there (read, not imported), at model.py's lines."""
    write(
        tmp_path,
        "model.py",
        """
        def build(lr, momentum=0.9, width=64):
            return lr, momentum, width

        def train(p):
            return p["lr"] * p["momentm"]
        """,
    )
    path = write(
        tmp_path,
        "train.py",
        """
        import nni
        from model import build, train
        params = nni.get_next_parameter()
        net = build(**params)
        train(params)
        """,
    )
    problems = compare(scan_trial(path), {**SPACE, "depth": SPACE["lr"]}, "space.yaml")
    got = sorted((p.severity, p.key, p.file.rsplit("/", 1)[-1]) for p in problems)
    assert got == [
        ("error", "parameter 'momentm'", "model.py:5"),  # would be a KeyError in train()
        ("error", "search space 'depth'", "model.py:1"),  # build() takes no depth
    ], [p.message for p in problems]
