"""nnisuite.trials.metrics against scikit-learn on random predictions."""

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from nnisuite.trials.metrics import classification_metrics, confusion_matrix


def sklearn_scores(y, p):
    kw = {"average": "macro", "zero_division": 0}
    return {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, **kw),
        "recall": skm.recall_score(y, p, **kw),
        "f1": skm.f1_score(y, p, **kw),
    }


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, 500)
    p = np.where(rng.random(500) < 0.6, y, rng.integers(0, 10, 500))
    cm = confusion_matrix(torch.from_numpy(p), torch.from_numpy(y), 10)
    np.testing.assert_array_equal(cm.numpy(), skm.confusion_matrix(y, p, labels=range(10)))
    ours = classification_metrics(cm)
    for key, value in sklearn_scores(y, p).items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key


def test_class_never_predicted_and_class_absent():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 9, 300)  # class 9 never occurs
    p = y.copy()
    p[y == 3] = 4  # class 3 never predicted: precision 0 division must count as 0
    cm = confusion_matrix(torch.from_numpy(p), torch.from_numpy(y), 10)
    ours = classification_metrics(cm)
    for key, value in sklearn_scores(y, p).items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    assert ours["recall"] < 1.0


def test_empty_split_is_zero_not_nan():
    cm = torch.zeros(3, 3, dtype=torch.long)
    assert classification_metrics(cm) == {
        "accuracy": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }
