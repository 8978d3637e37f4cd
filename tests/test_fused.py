"""nnisuite.trials.fused: the fused ReLU-MLP SGD epoch and forward equal autograd +
torch.optim.SGD."""

import copy

import pytest
import torch
from torch.nn import functional as F

from nnisuite.models.mlp import MLP
from nnisuite.trials.fused import fused_forward, fused_sgd_epoch, fused_supported


def autograd_epoch(model, x, y, optimizer, batch_size, generator):
    perm = torch.randperm(len(x), generator=generator)
    x, y = x[perm], y[perm]
    total = 0.0
    for start in range(0, len(x), batch_size):
        loss = F.cross_entropy(model(x[start : start + batch_size]), y[start : start + batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(x[start : start + batch_size])
    return total / len(x)


@pytest.mark.parametrize(
    "hidden, decay", [([], 0.0), ([32], 0.0), ([64, 32], 0.0), ([16, 16, 16], 0.0), ([32], 0.05)]
)
def test_fused_epoch_equals_autograd(hidden, decay):
    torch.manual_seed(0)
    x, y = torch.randn(300, 20), torch.randint(0, 5, (300,))
    a = MLP(20, hidden, 5)
    b = copy.deepcopy(a)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, weight_decay=decay)
    assert fused_supported(b)
    for _ in range(3):
        la = autograd_epoch(a, x, y, opt_a, 32, torch.Generator().manual_seed(1))
        lb = fused_sgd_epoch(b, x, y, 0.1, 32, torch.Generator().manual_seed(1), decay)
        assert la == pytest.approx(lb, rel=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-5, rtol=1e-4)


def test_supported_only_for_relu_mlps():
    assert fused_supported(MLP(4, [8], 2))
    assert not fused_supported(MLP(4, [8], 2, activation="tanh"))
    assert not fused_supported(torch.nn.Sequential(torch.nn.Linear(4, 2)))


@pytest.mark.parametrize("hidden", [[], [16, 8]])
def test_fused_forward_equals_the_module(hidden):
    torch.manual_seed(3)
    m = MLP(20, hidden, 4)
    x = torch.randn(50, 20)
    torch.testing.assert_close(fused_forward(m, x), m(x))
