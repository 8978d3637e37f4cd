"""Multi-layer perceptron: the log's 784-128-256-10 network, any depth and widths.

model = MLP(784, [128, 256], 10)      # logits (batch, 10) from (batch, 784)
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


class MLP(nn.Module):
    """Linear -> activation for each hidden width, then a linear classifier head."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        activation: str = "relu",
    ):
        super().__init__()
        if any(int(w) <= 0 for w in hidden):
            raise ValueError(f"hidden widths must be positive, got {list(hidden)}")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, int(h)), make_activation(activation)]
            width = int(h)
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # x: (batch, in_features) or (batch, rows, cols)
        return self.net(x.flatten(1))
