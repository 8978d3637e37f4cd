"""Recurrent classifiers that read an image row by row (log day 3.13).

    model = RowClassifier(input_size=28, hidden_size=128, num_classes=10, cell="elman")
    logits = model(x)      # x: (batch, rows, cols) or (batch, rows * cols) with rows given

`elman` is the log's cell: the input and the previous hidden state concatenated, a linear layer
with ReLU for the next hidden state, and a linear output layer read at the last step. `gru` and
`lstm` are PyTorch's (cuDNN / fused CPU kernels) for comparison.
"""

from __future__ import annotations

import torch
from torch import nn

CELLS = ("elman", "gru", "lstm")


class ElmanCell(nn.Module):
    """h_t = relu(W [x_t, h_{t-1}] + b): the log's cell."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_part = nn.Linear(input_size, hidden_size)  # W_x, b
        self.hidden_part = nn.Linear(hidden_size, hidden_size, bias=False)  # W_h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, steps, input_size) -> last hidden state (batch, hidden_size).

        W [x, h] = W_x x + W_h h; the input half is one matmul for all steps, so the Python
        loop does only the recurrent matmul."""
        inputs = self.input_part(x)  # (batch, steps, hidden)
        h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        for t in range(x.shape[1]):
            h = torch.relu(inputs[:, t] + self.hidden_part(h))
        return h


class RowClassifier(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "elman"):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        self.input_size = input_size
        self.cell = cell
        if cell == "elman":
            self.rnn = ElmanCell(input_size, hidden_size)
        else:
            self.rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](
                input_size, hidden_size, batch_first=True
            )
        self.out = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1, self.input_size)  # (batch, rows, cols)
        if self.cell == "elman":
            last = self.rnn(x)
        else:
            last = self.rnn(x)[0][:, -1]
        return self.out(last)
