"""nnisuite.trials.engine: which path fit takes and why, the divergence roll-back, evaluation."""

from __future__ import annotations

import math

import pytest
import torch

from nnisuite.models.mlp import MLP
from nnisuite.trials.data import Dataset
from nnisuite.trials.engine import FitConfig, epoch_lr, evaluate, fast_path, fit


def toy_data(n=240, features=12, classes=3, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, features, generator=g)
    third = n // 3
    return Dataset(
        "toy",
        x[:third],
        y[:third],
        x[third : 2 * third],
        y[third : 2 * third],
        x[2 * third :],
        y[2 * third :],
        image_shape=(3, 4),
        num_classes=classes,
    )


@pytest.mark.parametrize(
    "model, config, fused, reason",
    [
        (MLP(4, [8], 2), FitConfig(), True, "fused ReLU-MLP SGD"),
        (MLP(4, [8], 2), FitConfig(fused=False), False, "--no-fused"),
        (MLP(4, [8], 2), FitConfig(optimizer="adam"), False, "optimizer adam"),
        (MLP(4, [8], 2), FitConfig(momentum=0.9), False, "momentum 0.9"),
        (MLP(4, [8], 2, activation="tanh"), FitConfig(), False, "not a ReLU MLP"),
    ],
)
def test_path_selection_says_why(model, config, fused, reason):
    chosen, why = fast_path(config, model)
    assert chosen is fused and reason in why


def test_insisting_on_the_fused_path_where_it_does_not_apply_is_an_error():
    with pytest.raises(ValueError, match="optimizer adam"):
        fast_path(FitConfig(fused=True, optimizer="adam"), MLP(4, [8], 2))


@pytest.mark.parametrize("fused", [None, False])
def test_both_paths_learn_and_record_which_they_took(fused):
    data = toy_data()
    torch.manual_seed(0)
    result = fit(MLP(12, [16], 3), data, FitConfig(epochs=5, lr=0.1, fused=fused))
    assert result.fused is (fused is None) and result.final["fused"] is result.fused
    assert result.final["default"] > 0.9 and len(result.history) == 5


@pytest.mark.parametrize(
    "extra", [{}, {"schedule": "cosine", "weight_decay": 0.01}], ids=["plain", "cosine-decay"]
)
def test_the_two_paths_give_the_same_model(extra):
    data = toy_data()
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = MLP(12, [16, 8], 3)
        fit(model, data, FitConfig(epochs=3, lr=0.05, fused=fused, **extra))
        results.append(model)
    for a, b in zip(results[0].parameters(), results[1].parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_cosine_schedule_and_weight_decay_change_the_training():
    data, models = toy_data(), {}
    for name, extra in {
        "plain": {},
        "cosine": {"schedule": "cosine"},
        "decay": {"weight_decay": 0.5},
    }.items():
        torch.manual_seed(0)
        models[name] = MLP(12, [16], 3)
        fit(models[name], data, FitConfig(epochs=3, lr=0.05, **extra))
    norms = {k: float(sum(p.norm() for p in m.parameters())) for k, m in models.items()}
    assert norms["decay"] < norms["plain"] and norms["cosine"] != norms["plain"]
    config = FitConfig(epochs=4, lr=0.2, schedule="cosine")
    assert [epoch_lr(config, i) for i in range(4)] == pytest.approx(
        [0.2, 0.1707, 0.1, 0.0293], abs=1e-4
    )


@pytest.mark.parametrize("fused", [None, False])
def test_restore_best_ends_on_the_best_validation_epoch(fused):
    """Too high a learning rate: validation accuracy wanders; the final's figures are those
    of the best epoch, with restore_best, and of the last one without."""
    data = toy_data(n=300, features=12, classes=3, seed=2)
    runs = {}
    for restore in (False, True):
        torch.manual_seed(0)
        model, seen = MLP(12, [32], 3), []
        config = FitConfig(epochs=12, lr=3.0, fused=fused, restore_best=restore)
        runs[restore] = (fit(model, data, config, on_epoch=seen.append), seen, model)
    (last, history, _), (best, _, model) = runs[False], runs[True]
    chosen = max(history, key=lambda r: r["default"])
    assert best.final["restored_epoch"] == best.final["best_epoch"] == chosen["epoch"]
    assert best.final["default"] == pytest.approx(chosen["default"])
    assert last.final["default"] == pytest.approx(history[-1]["default"])
    assert "restored_epoch" not in last.final and last.final["best_epoch"] == chosen["epoch"]
    assert best.final["default"] > last.final["default"]  # the run ended below its best
    again = evaluate(model, data.val_x, data.val_y, 3)["accuracy"]
    assert again == pytest.approx(best.final["default"])  # the model kept is the best epoch's


def test_a_model_without_hidden_layers_trains():
    data = toy_data()
    torch.manual_seed(0)
    result = fit(MLP(12, [], 3), data, FitConfig(epochs=4, lr=0.1))
    assert result.fused and result.final["default"] > 0.9
    assert result.final["parameters"] == 12 * 3 + 3


@pytest.mark.parametrize("fused", [None, False])
def test_divergence_rolls_back_to_the_last_finite_epoch(fused):
    """lr 1e6 blows the loss up: fit stops, restores the last finite weights and says so."""
    data = toy_data()
    torch.manual_seed(0)
    model = MLP(12, [16], 3)
    seen = []
    result = fit(
        model, data, FitConfig(epochs=6, lr=1e6, fused=fused), on_epoch=lambda r: seen.append(r)
    )
    assert result.diverged and result.final["diverged"] is True
    assert result.final["epochs"] == len(result.history) == len(seen) < 6
    assert all(torch.isfinite(p).all() for p in model.parameters())
    numbers = [v for v in result.final.values() if isinstance(v, float)]
    assert all(math.isfinite(v) for v in numbers)


def test_evaluate_counts_every_sample_once():
    data = toy_data()
    model = MLP(12, [8], 3)
    a = evaluate(model, data.test_x, data.test_y, 3, fused=True)
    b = evaluate(model, data.test_x, data.test_y, 3, fused=False)
    assert a == pytest.approx(b, rel=1e-5)
    logits = model(data.test_x)
    expected = float((logits.argmax(1) == data.test_y).float().mean())
    assert a["accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize("optimizer, fused", [("sgd", None), ("adam", False)])
def test_a_checkpoint_resumes_training_exactly(tmp_path, optimizer, fused):
    """PBT's contract: 2 epochs, save; load and 2 more = 4 epochs straight (weights, optimizer
    state and batch order all carried over)."""
    data = toy_data()
    config = dict(lr=0.05, optimizer=optimizer, fused=fused, seed=3)
    torch.manual_seed(0)
    straight = MLP(12, [16], 3)
    fit(straight, data, FitConfig(epochs=4, **config))
    torch.manual_seed(0)
    first = MLP(12, [16], 3)
    fit(first, data, FitConfig(epochs=2, save_to=str(tmp_path / "a"), **config))
    torch.manual_seed(7)  # other initial weights: the checkpoint must replace them
    resumed = MLP(12, [16], 3)
    result = fit(
        resumed,
        data,
        FitConfig(epochs=2, resume_from=str(tmp_path / "a"), save_to=str(tmp_path / "b"), **config),
    )
    assert result.resumed_epochs == 2 and result.final["epochs"] == 4
    assert [row["epoch"] for row in result.history] == [3, 4]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    assert (tmp_path / "b" / "model.pt").exists()


def test_a_checkpoint_of_another_architecture_is_a_fresh_start(tmp_path):
    data = toy_data()
    fit(MLP(12, [16], 3), data, FitConfig(epochs=1, save_to=str(tmp_path)))
    result = fit(MLP(12, [8], 3), data, FitConfig(epochs=1, resume_from=str(tmp_path)))
    assert result.resumed_epochs == 0 and "another architecture" in result.resume_note
