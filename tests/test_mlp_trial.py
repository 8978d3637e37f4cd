"""The MLP trial: learning, files, the NNI reporting contract, divergence, parameter errors."""

import json
import math

import pytest

from nnisuite.trials import mlp
from tests.helpers.markers import needs_fashion_mnist

INTERMEDIATE_KEYS = {"default", "val_loss", "train_loss", "val_precision", "val_recall", "val_f1"}
FINAL_KEYS = {
    "default",
    "test_accuracy",
    "test_precision",
    "test_recall",
    "test_f1",
    "test_loss",
    "epochs",
    "train_seconds",
    "parameters",
    "diverged",
}


def all_finite(d: dict) -> bool:
    return all(math.isfinite(v) for v in d.values() if isinstance(v, (int, float)))


def test_standalone_learns_digits_and_writes_files(tmp_path):
    final = mlp.main(["--epochs", "5", "--lr", "0.1", "--out", str(tmp_path)])
    assert final["default"] >= 0.90
    assert final["test_accuracy"] >= 0.85
    for name in ("metrics.json", "accuracy.png", "loss.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["params"]["lr"] == 0.1 and doc["params"]["features1"] == 128
    assert [row["epoch"] for row in doc["history"]] == [1, 2, 3, 4, 5]
    assert INTERMEDIATE_KEYS <= set(doc["history"][0])
    assert FINAL_KEYS <= set(doc["final"])
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nni_contract_one_final_per_trial(run_nni_trial):
    params = {"features1": 256, "features2": 128, "lr": 0.05, "batch_size": 32}
    proc, records = run_nni_trial("nnisuite.trials.mlp", params, ["--epochs", "3"])
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr, proc.stderr  # runpy's, on a preloaded module
    periodical = [r["value"] for r in records if r["type"] == "PERIODICAL"]
    finals = [r["value"] for r in records if r["type"] == "FINAL"]
    assert len(periodical) == 3 and len(finals) == 1
    for value in periodical:
        assert INTERMEDIATE_KEYS <= set(value) and all_finite(value)
    final = finals[0]
    assert FINAL_KEYS <= set(final) and all_finite(final)
    # the widths NNI sent are the ones trained: 64*256 + 256 + 256*128 + 128 + 128*10 + 10
    assert final["parameters"] == 64 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert final["epochs"] == 3 and final["diverged"] is False


def test_unknown_nni_parameter_is_an_error(run_nni_trial):
    proc, records = run_nni_trial(
        "nnisuite.trials.mlp", {"feature1": 512, "lr": 0.01}, ["--epochs", "1"]
    )
    assert proc.returncode == 2
    assert "unknown parameter 'feature1'" in proc.stderr and "features1" in proc.stderr
    assert not [r for r in records if r["type"] == "FINAL"]  # nothing silently trained


def test_wrong_type_from_nni_is_an_error(run_nni_trial):
    proc, _ = run_nni_trial("nnisuite.trials.mlp", {"batch_size": 32.5}, ["--epochs", "1"])
    assert proc.returncode == 2 and "batch_size" in proc.stderr


def test_diverging_run_reports_once_and_finite(run_nni_trial):
    proc, records = run_nni_trial(
        "nnisuite.trials.mlp", {"lr": 1000.0, "batch_size": 256}, ["--epochs", "5"]
    )
    assert proc.returncode == 0, proc.stderr
    finals = [r["value"] for r in records if r["type"] == "FINAL"]
    assert len(finals) == 1
    assert finals[0]["diverged"] is True and finals[0]["epochs"] < 5
    assert all_finite(finals[0])
    for r in records:
        assert all_finite(r["value"])


@pytest.mark.slow
@needs_fashion_mnist
def test_fashion_mnist_one_epoch(tmp_path):
    final = mlp.main(
        ["--dataset", "fashion-mnist", "--epochs", "1", "--lr", "0.05", "--out", str(tmp_path)]
    )
    assert final["epochs"] == 1 and final["default"] > 0.6


def test_hyperband_budget_sets_the_epochs(run_nni_trial):
    proc, records = run_nni_trial(
        "nnisuite.trials.mlp", {"TRIAL_BUDGET": 2.0, "lr": 0.05}, ["--epochs", "9"]
    )
    assert proc.returncode == 0, proc.stderr
    final = [r["value"] for r in records if r["type"] == "FINAL"][0]
    assert final["epochs"] == 2 and final["budget"] == 2.0
    assert len([r for r in records if r["type"] == "PERIODICAL"]) == 2


@pytest.mark.slow
def test_pbt_checkpoints_carry_training_on(run_nni_trial, tmp_path):
    first = {"lr": 0.05, "save_checkpoint_dir": str(tmp_path / "g0"), "load_checkpoint_dir": ""}
    proc, records = run_nni_trial("nnisuite.trials.mlp", first, ["--epochs", "2"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g0" / "model.pt").exists()
    second = {
        "lr": 0.02,
        "load_checkpoint_dir": str(tmp_path / "g0"),
        "save_checkpoint_dir": str(tmp_path / "g1"),
    }
    proc, records = run_nni_trial("nnisuite.trials.mlp", second, ["--epochs", "2"])
    assert proc.returncode == 0, proc.stderr
    final = [r["value"] for r in records if r["type"] == "FINAL"][0]
    assert final["resumed_epochs"] == 2 and final["epochs"] == 4
    assert "continued from" in proc.stderr and (tmp_path / "g1" / "model.pt").exists()


def test_the_final_result_is_reported_exactly_once_even_when_asked_twice():
    """NNI 3.0's TPE dispatcher dies on a second final (microsoft/nni#5689): the reporter
    refuses it before anything reaches NNI."""
    from nnisuite.trials.report import Reporter

    sent = []

    class Recording(Reporter):
        def _emit_final(self, metrics):
            sent.append(metrics)

    reporter = Recording()
    reporter.final({"default": 0.5})
    with pytest.raises(RuntimeError, match="exactly once"):
        reporter.final({"default": 0.6})
    assert sent == [{"default": 0.5}] and reporter.final_result == {"default": 0.5}
    with pytest.raises(ValueError, match="non-finite"):
        Recording().final({"default": math.nan})


def test_what_ran_is_recorded_not_what_was_asked(tmp_path, capsys):
    """No GPU here: --device cuda trains on the CPU, says so, and metrics.json says cpu; a
    --data-dir with the embedded digits is unused, said, and not recorded as used."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda would use it")
    mlp.main(
        ["--epochs", "1", "--device", "cuda", "--data-dir", str(tmp_path), "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    saved = json.loads((tmp_path / "metrics.json").read_text())
    params = saved.get("params", saved)
    assert params["device"] == "cpu" and "training on the CPU" in err
    assert params["data_dir"] is None and "unused, digits is embedded" in err
