"""The 3.18 NAS study: the model space, bad settings, and a real grid search on NNI."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from nnisuite.analysis.store import flatten_parameters, load_experiment
from nnisuite.nas import __main__ as nas_cli
from nnisuite.nas.space import DepthSpace, log_widths
from nnisuite.study.manager import free_port
from nnisuite.trials.data import raw_splits


def session_args(tmp_path) -> list[str]:
    """A NAS run's own experiment folder, output folder and free port."""
    return [
        "--experiment-dir",
        str(tmp_path / "nni"),
        "--out",
        str(tmp_path / "out"),
        "--port",
        str(free_port()),
    ]


def expected_parameters(in_features, widths, classes=10):
    sizes = [in_features, *widths, classes]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("depth", range(1, 7))
def test_each_depth_builds_the_logs_widths(depth):
    space = DepthSpace(784, 10)
    model = space.freeze({"depth": depth, "seed": 0})
    widths = [block.linear.out_features for block in model.hidden]
    assert widths == log_widths(depth)
    assert widths == ([256] if depth == 1 else [128] + [256] * (depth - 1))
    assert sum(p.numel() for p in model.parameters()) == expected_parameters(784, widths)
    out = model(torch.randn(5, 784))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


def test_space_labels_are_stable():
    assert set(DepthSpace(64, 10, repeats=3).simplify()) == {"depth", "seed"}
    extended = set(DepthSpace(64, 10, extended=True).simplify())
    assert {"depth", "width0", "act0", "width5", "act5"} <= extended


def test_extended_space_per_layer_width_and_activation():
    sample = {
        "depth": 2,
        "seed": 0,
        **{f"width{i}": 64 for i in range(6)},
        **{f"act{i}": "tanh" for i in range(6)},
        "width1": 512,
        "act1": "gelu",
    }
    model = DepthSpace(64, 10, extended=True).freeze(sample)
    assert [b.linear.out_features for b in model.hidden] == [64, 512]
    assert isinstance(model.hidden[0].act, torch.nn.Tanh)
    assert isinstance(model.hidden[1].act, torch.nn.GELU)
    assert model(torch.randn(2, 64)).shape == (2, 10)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-depth", "0"], "depth bounds"),
        (["--max-depth", "7"], "depth bounds"),
        (["--min-depth", "4", "--max-depth", "2"], "depth bounds"),
        (["--strategy", "bayesian"], "strategy 'bayesian' unknown"),
    ],
)
def test_bad_settings_fail_before_any_trial(args, message, capsys, tmp_path):
    code = nas_cli.main([*args, "--experiment-dir", str(tmp_path)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing was started


@pytest.mark.integration
def test_grid_search_over_six_depths(tmp_path, capsys):
    from tests.helpers.nni import running_experiment_ids

    code = nas_cli.main(
        [
            "--config",
            "experiments/nas_depth.yaml",
            "--epochs",
            "1",
            "--concurrency",
            "2",
            "--strategy",
            "grid",
            *session_args(tmp_path),
        ]
    )
    assert code == 0
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert sorted(trials["depth"]) == [1, 2, 3, 4, 5, 6]
    assert (trials["status"] == "SUCCEEDED").all()
    assert trials["parameters"].nunique() == 6
    assert trials[["default", "test_accuracy"]].notna().all().all()
    for row in trials.itertuples():
        assert row.parameters == expected_parameters(64, log_widths(row.depth))
    table = (tmp_path / "out" / "nas_table.md").read_text()
    assert table.count("\n| ") == 1 + 6 and "128-256-256" in table  # header + six depths
    # each trial trained the architecture the table says (NNI 3.0 may swap parameters)
    (exp_dir,) = [p for p in (tmp_path / "nni").iterdir() if p.is_dir() and p.name[0] not in "._"]
    exp = load_experiment(exp_dir.name, tmp_path / "nni")
    for trial in exp.trials:
        assert flatten_parameters(trial.parameters)["depth"] == trial.final["depth"]
    # concurrency 2 took effect: some trials overlapped in time
    spans = sorted((t.start_time, t.end_time) for t in exp.trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    assert exp.id not in running_experiment_ids()
    captured = capsys.readouterr()
    assert "| depth |" in captured.out
    # NAS trials fork from a launcher that imported PyTorch Lightning
    # (nnisuite.nas.study.NAS_PRELOAD)
    assert "pytorch_lightning" in re.search(r"imported before the fork: (.*)", captured.err)[1]
    # the study's best architecture, retrained and saved (nnisuite.deploy.best reads NNI's record)
    from nnisuite.deploy import best

    assert (
        best.main(
            [
                exp.id,
                "--experiment-dir",
                str(tmp_path / "nni"),
                "--out",
                str(tmp_path / "best"),
                "--seeds",
                "2",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "best" / "best.json").read_text())
    chosen = max(exp.trials, key=lambda t: t.final["default"])
    assert record["choice"]["trial_id"] == chosen.trial_id
    assert record["choice"]["parameters"]["depth"] == chosen.final["depth"]
    assert "DepthSpace architecture" in (tmp_path / "best" / "card.md").read_text()
    model = torch.export.load(str(tmp_path / "best" / "model.pt2")).module()
    images, labels = raw_splits("digits", seed=0)[2]
    predicted = model(torch.from_numpy(images)).argmax(dim=1).numpy()
    assert int((predicted == labels).sum()) == record["saved"]["correct"]
    state = torch.load(tmp_path / "best" / "weights.pt", weights_only=True)["state_dict"]
    linear = [k for k in state if k.endswith(".weight")]
    assert len(linear) == chosen.final["depth"] + 1  # the chosen depth, and the head
    # ... and compressed: its hidden layers halved by NNI's pruner and speedup, drawn beside the
    # study's trials, the saved file's test accuracy what the card says
    from nnisuite.deploy import compress

    small = tmp_path / "small"
    argv = [str(tmp_path / "best"), "--out", str(small), "--seeds", "1", "--epochs", "1",
            "--sparsity", "0.5", "--experiment-dir", str(tmp_path / "nni")]  # fmt: skip
    assert compress.main(argv) == 0
    done = json.loads(small.joinpath("compress.json").read_text())
    (point,) = done["points"]
    widths = log_widths(chosen.final["depth"])
    assert list(done["dense"]["widths"].values()) == widths
    assert list(point["widths"].values()) == [w // 2 for w in widths]
    assert sorted(t["trial"] for t in done["study_trials"]) == sorted(
        t.trial_id for t in exp.trials
    )
    model = torch.export.load(str(small / point["folder"] / "model.pt2")).module()
    predicted = model(torch.from_numpy(images)).argmax(dim=1).numpy()
    assert float((predicted == labels).mean()) == point["saved"]["fp32"]["test_accuracy"]


def test_depth_table_means_and_spreads_over_seeds():
    from nnisuite.nas.table import depth_table

    trials = pd.DataFrame(
        {
            "trial_id": list("abcde"),
            "status": ["SUCCEEDED"] * 4 + ["FAILED"],
            "depth": [1, 1, 2, 2, 3],
            "seed": [0, 1, 0, 1, 0],
            "default": [0.90, 0.92, 0.95, 0.93, None],
            "test_accuracy": [0.89, 0.91, 0.94, 0.92, None],
            "parameters": [100, 100, 200, 200, 300],
            "train_seconds": [1.0, 3.0, 2.0, 2.0, None],
            "widths": ["256", "256", "128-256", "128-256", None],
        }
    )
    table = depth_table(trials)
    assert list(table["depth"]) == [2, 1]  # best mean first; the failed depth 3 has no row
    row = table.iloc[0]
    assert row["runs"] == 2 and row["widths"] == "128-256" and row["parameters"] == 200
    assert row["val_accuracy"] == "0.9400 +- 0.0141"  # std with ddof=1
    assert table.iloc[1]["train_s"] == "2.0000 +- 1.4142"
    assert depth_table(trials[trials["status"] == "FAILED"]).empty


def test_attention_table_marks_each_costs_pareto_front_on_mean_accuracy():
    """A row is on a cost's front when no architecture is as accurate (mean over its seeds) and
    as cheap, one strictly; checked here pairwise, by brute force."""
    from nnisuite.nas.table import attention_table

    rng = np.random.default_rng(3)
    rows = []
    for a in range(12):
        params, kv = int(rng.integers(1, 6)) * 1000, int(rng.choice([128, 256, 512]))
        for seed in range(2):
            rows.append(
                {
                    "kind": f"K{a}",
                    "heads": 4,
                    "embed_dim": 32,
                    "depth": 1,
                    "kv_heads": 1,
                    "seed": seed,
                    "status": "SUCCEEDED",
                    "default": round(float(rng.uniform(0.8, 0.9)), 2),
                    "test_accuracy": 0.8,
                    "parameters": params,
                    "kv_cache_bytes_per_token": kv,
                    "epoch_seconds": 1.0,
                }
            )
    trials = pd.DataFrame(rows)
    table = attention_table(trials)
    means = trials.groupby("kind")["default"].mean()
    for cost in ("parameters", "kv_cache_bytes_per_token"):
        for _, row in table.iterrows():
            mine = (means[row["kind"]], row[cost])
            beaten = any(
                means[o["kind"]] >= mine[0]
                and o[cost] <= mine[1]
                and (means[o["kind"]] > mine[0] or o[cost] < mine[1])
                for _, o in table.iterrows()
            )
            assert (cost in row["pareto_front"].split(", ")) == (not beaten), (cost, row.to_dict())
    assert table["pareto_front"].str.contains("kv_cache").any()


def test_settings_file_keys_all_have_flags():
    from nnisuite.config.experiment import load_yaml
    from nnisuite.config.nas_settings import DEFAULTS
    from nnisuite.nas.__main__ import build_parser

    raw = load_yaml("experiments/nas_depth.yaml")
    assert set(raw) == set(DEFAULTS)
    dests = {a.dest for a in build_parser()._actions}
    assert set(DEFAULTS) <= dests


def strategy_choices(strategy, trials: int) -> list[int]:
    """The choices' sum of each of `trials` architectures, in order, on NNI's in-process engine."""
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from tests.fixtures.toy_space import ToySpace, evaluate

    config = NasExperimentConfig("sequential", "simplified", "local")
    config.max_trial_number = trials
    exp = NasExperiment(ToySpace(), FunctionalEvaluator(evaluate), strategy, config)
    exp.run()
    exp.stop()
    models = exp.strategy.list_models(sort=False, limit=None)
    return [sum(m.sample[k] for k in "abcdefgh") for m in models if m.metric is not None]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["nnisuite", "nni_default"])
def test_tpe_strategy_maximizes(which):
    """NNI's TPE strategy minimizes by default; nnisuite's maximizes. After TPE's random start-up
    (20 trials) its own suggestions reach near the best architecture (sum 24) with nnisuite's
    strategy and stay near the worst (sum 0) with the default. (Between them, TPE keeps
    proposing architectures it has seen, which NNI's deduplicator replaces by the next unseen
    one in grid order, low sums both ways: hence the maximum, not the mean.) The two sides run
    as two tests, side by side under parallel workers."""
    from nni.nas import strategy

    from nnisuite.nas.study import make_strategy

    made = make_strategy("tpe", seed=0) if which == "nnisuite" else strategy.TPE(seed=0)
    sums = strategy_choices(made, 36)
    assert len(sums) == 36
    guided = slice(20, 36)
    if which == "nnisuite":
        assert max(sums[guided]) >= 18
    else:
        assert max(sums[guided]) <= 8


def test_attention_space_builds_every_variant():
    from itertools import product

    from nnisuite.config.nas_settings import ATTENTION_CHOICES
    from nnisuite.models.transformer import RowTransformer
    from nnisuite.nas.attention_space import AttentionSpace

    space = AttentionSpace(8, 8, 10)
    assert set(space.simplify()) == {"seed", "kind", "heads", "embed_dim", "depth"}
    x = torch.randn(3, 64)
    combos = list(product(*ATTENTION_CHOICES.values()))
    assert len(combos) == 54
    for kind, heads, embed, depth in combos:
        model = space.freeze(
            {"kind": kind, "heads": heads, "embed_dim": embed, "depth": depth, "seed": 0}
        )
        info = model.describe()
        kv = {"MHA": heads, "GQA": heads // 2, "MQA": 1}[kind]
        assert (info["kv_heads"], info["depth"], len(model.blocks)) == (kv, depth, depth)
        assert info["kv_cache_bytes_per_token"] == 2 * kv * (embed // heads) * depth * 4
        assert model(x).shape == (3, 10)
        # the saved weights rebuild the plain model nnisuite.analysis.attention draws
        plain = RowTransformer(**info["transformer_kwargs"])
        plain.load_state_dict(model.state_dict())
        torch.testing.assert_close(plain(x), model(x))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random-oneshot", "darts", "enas"])
def test_one_shot_search_on_digits_writes_its_table(strategy, tmp_path, capsys):
    if strategy == "enas":
        import tianshou  # noqa: F401 - the enas extra is a declared test dependency: must import
    code = nas_cli.main(
        [
            "--config",
            "experiments/nas_depth.yaml",
            "--strategy",
            strategy,
            "--epochs",
            "2",
            "--out",
            str(tmp_path),
            "--experiment-dir",
            str(tmp_path / "nni"),
        ]
    )
    assert code == 0
    # NNI's files of the one-shot experiment are where --experiment-dir said, as multi-trial's
    assert [p.name for p in (tmp_path / "nni").iterdir() if p.name[0] not in "._"]
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert sorted(trials["depth"]) == [1, 2, 3, 4, 5, 6]
    assert trials["default"].between(0, 1).all() and trials["picked"].sum() == 1
    picked = int(trials.loc[trials["picked"], "depth"].iloc[0])
    assert picked == int(trials.loc[trials["default"].idxmax(), "depth"])
    table = (tmp_path / "nas_table.md").read_text()
    assert "retrained from scratch" in table and "microsoft/nni#5771" in table
    assert "| depth |" in capsys.readouterr().out


def test_one_shot_rejects_what_a_supernet_cannot_be(capsys, tmp_path):
    for args, fragment in (
        (["--strategy", "darts", "--space", "attention"], "one supernet of the plain depth"),
        (["--strategy", "darts", "--repeats", "2"], "instead of --repeats"),
    ):
        assert nas_cli.main([*args, "--out", str(tmp_path)]) == 2
        assert fragment in capsys.readouterr().err


@pytest.mark.integration
def test_attention_search_through_nni(tmp_path, capsys):
    from tests.helpers.nni import running_experiment_ids

    code = nas_cli.main(
        [
            "--config",
            "experiments/nas_attention.yaml",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--max-trials",
            "2",
            "--repeats",
            "1",
            *session_args(tmp_path),
        ]
    )
    assert code == 0
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 2 and (trials["status"] == "SUCCEEDED").all()
    assert set(trials["kind"]) <= {"MHA", "GQA", "MQA"}
    table = (tmp_path / "out" / "nas_table.md").read_text()
    assert "kv_cache_bytes_per_token" in table and "best_model.pt" in table
    assert (tmp_path / "out" / "best_model.pt").stat().st_size > 1000
    from nnisuite.analysis import attention

    assert (
        attention.main(
            [
                "--model",
                str(tmp_path / "out" / "best_model.pt"),
                "--out",
                str(tmp_path / "maps"),
                "--images",
                "2",
            ]
        )
        == 0
    )
    assert (tmp_path / "maps" / "attention_trained_1.png").read_bytes()[:4] == b"\x89PNG"
    (exp_dir,) = [p for p in (tmp_path / "nni").iterdir() if p.is_dir() and p.name[0] not in "._"]
    assert exp_dir.name not in running_experiment_ids()
    # the best architecture retrained, saved with its card; its weights draw attention maps too
    from nnisuite.deploy import best

    out = tmp_path / "best"
    assert (
        best.main(
            [
                exp_dir.name,
                "--experiment-dir",
                str(tmp_path / "nni"),
                "--out",
                str(out),
                "--seeds",
                "1",
            ]
        )
        == 0
    )
    record = json.loads((out / "best.json").read_text())
    assert record["choice"]["parameters"]["kind"] in ("MHA", "GQA", "MQA")
    assert record["saved"]["n"] == len(raw_splits("digits", seed=0)[2][1])
    maps = ["--model", str(out / "weights.pt"), "--out", str(tmp_path / "maps2"), "--images", "1"]
    assert attention.main(maps) == 0
    (drawn,) = (tmp_path / "maps2").glob("attention_trained_*.png")
    assert drawn.read_bytes()[:4] == b"\x89PNG"
    # a digits model (8x8 rows) given 28x28 images: one line, not a reshape RuntimeError
    other = [*maps[:4], "--dataset", "fashion-mnist"]
    other[3] = str(tmp_path / "maps3")
    assert attention.main(other) == 2
    assert "reads 8x8 images; fashion-mnist's are 28x28" in capsys.readouterr().err


@pytest.mark.slow
def test_an_optuna_strategy_maximizes_through_nnis_hpo_strategy():
    """Optuna's multivariate TPE as a NAS strategy (NNI's HPOTunerStrategy around
    nnisuite.study.optuna_tuner, as make_strategy builds it, with 4 random architectures first
    instead of 10): its suggestions reach near the best of the toy space (sum 24), above its
    random start (seed 0: 18 against 15; minimizing, the same start then at most 12)."""
    from nni.nas.strategy.hpo import HPOTunerStrategy

    from nnisuite.nas.study import make_strategy
    from nnisuite.study.optuna_tuner import OptunaTuner

    made = make_strategy("optuna_tpe", seed=0)
    assert isinstance(made, HPOTunerStrategy) and isinstance(made.tuner, OptunaTuner)
    assert [d.name for d in made.tuner.study.directions] == ["MAXIMIZE"]
    quick = HPOTunerStrategy(
        OptunaTuner(sampler="tpe", seed=0, sampler_args={"n_startup_trials": 4})
    )
    sums = strategy_choices(quick, 12)
    assert len(sums) == 12
    assert max(sums[4:]) >= 17 and max(sums[4:]) > max(sums[:4]), sums  # minimizing: 12


def test_the_cmaes_strategy_says_once_that_it_samples_choices_at_random(capsys):
    """Optuna's CMA-ES warns per categorical choice per trial (13 lines a trial on the extended
    space, on the user's terminal): the strategy says it once and turns the warning off."""
    from nnisuite.nas.study import make_strategy

    made = make_strategy("optuna_cmaes", seed=0)
    assert type(made.tuner.sampler).__name__ == "CmaEsSampler"
    assert made.tuner.sampler._warn_independent_sampling is False
    assert capsys.readouterr().err.count("independently at random") == 1
    other = make_strategy("optuna_tpe", seed=0)
    assert type(other.tuner.sampler).__name__ == "TPESampler" and not capsys.readouterr().err
