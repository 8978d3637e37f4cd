"""The RNN trial and its cells: the log's Elman cell, learning on digits, the NNI contract."""

import json

import pytest
import torch

from nnisuite.models.rnn import CELLS, ElmanCell, RowClassifier
from nnisuite.trials import rnn
from tests.helpers.markers import needs_fashion_mnist


def test_elman_cell_is_the_logs_concatenated_linear():
    """relu(W [x_t, h_{t-1}] + b), computed as W_x x_t + W_h h_{t-1} + b."""
    torch.manual_seed(0)
    cell = ElmanCell(8, 16)
    concat = torch.nn.Linear(8 + 16, 16)
    with torch.no_grad():
        concat.weight.copy_(torch.cat([cell.input_part.weight, cell.hidden_part.weight], 1))
        concat.bias.copy_(cell.input_part.bias)
    x = torch.randn(4, 5, 8)
    h = torch.zeros(4, 16)
    for t in range(5):
        h = torch.relu(concat(torch.cat([x[:, t], h], dim=1)))
    torch.testing.assert_close(cell(x), h)


@pytest.mark.parametrize("cell", CELLS)
def test_row_classifier_shapes(cell):
    model = RowClassifier(28, 32, 10, cell=cell)
    assert model(torch.randn(3, 784)).shape == (3, 10)
    assert model(torch.randn(3, 28, 28)).shape == (3, 10)


def test_cells_agree_between_trial_and_model():
    assert rnn.CELLS == CELLS


def test_standalone_learns_digits(tmp_path):
    final = rnn.main(["--dataset", "digits", "--epochs", "5", "--out", str(tmp_path)])
    assert final["default"] >= 0.85
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["params"]["cell"] == "elman" and doc["params"]["optimizer"] == "adam"
    assert (tmp_path / "loss.png").exists() and (tmp_path / "accuracy.png").exists()


def test_nni_contract_with_a_tuned_cell(run_nni_trial):
    proc, records = run_nni_trial(
        "nnisuite.trials.rnn",
        {"cell": "gru", "hidden_size": 32, "lr": 0.01},
        ["--dataset", "digits", "--epochs", "2"],
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["type"] for r in records] == ["PERIODICAL", "PERIODICAL", "FINAL"]
    final = records[-1]["value"]
    # GRU(8 -> 32) + Linear(32 -> 10)
    assert final["parameters"] == 3 * (8 * 32 + 32 * 32 + 2 * 32) + 32 * 10 + 10


def test_unknown_cell_is_an_error(run_nni_trial):
    proc, _ = run_nni_trial("nnisuite.trials.rnn", {"cell": "transformer"}, ["--dataset", "digits"])
    assert proc.returncode == 2 and "cell 'transformer' unknown" in proc.stderr


@pytest.mark.slow
@needs_fashion_mnist
def test_fashion_mnist_one_epoch(tmp_path):
    # batch 256: a quarter of the steps over all 60,000 images (the log's 64: 7 s of CPU)
    argv = ["--epochs", "1", "--hidden-size", "32", "--batch-size", "256", "--out", str(tmp_path)]
    final = rnn.main(argv)
    assert final["epochs"] == 1 and final["default"] > 0.5
