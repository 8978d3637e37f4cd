"""The RNN trial (log day 3.13): an image read row by row; NNI trial or standalone run.

    python -m nnisuite.trials.rnn --epochs 5                         # fashion-mnist, the log's cell
    python -m nnisuite.trials.rnn --dataset digits --cell gru --epochs 5 --out runs/rnn-digits
    python -m nnisuite.study.run experiments/rnn_tpe.yaml           # tuned by NNI

Defaults are the log's: hidden 128, Adam, lr 0.003, batch 64, fashion-mnist.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from nnisuite.trials.params import MAX_WIDTH, ParameterError, TrainingParams
from nnisuite.trials.runner import main_guard, run_trial

CELLS = ("elman", "gru", "lstm")  # nnisuite.models.rnn.CELLS, restated so validation skips torch


@dataclass
class RNNParams(TrainingParams):
    dataset: str = "fashion-mnist"
    lr: float = 0.003
    optimizer: str = "adam"
    hidden_size: int = 128
    cell: str = "elman"

    def check(self):
        super().check()
        if self.cell not in CELLS:
            raise ParameterError(f"cell {self.cell!r} unknown; choose one of {', '.join(CELLS)}")
        if not 1 <= self.hidden_size <= MAX_WIDTH:
            raise ParameterError(f"hidden_size must be in 1..{MAX_WIDTH}, got {self.hidden_size}")


PARAMS = RNNParams  # what nnisuite.config.validate checks search spaces against


def build_rnn(params: RNNParams, data):
    from nnisuite.models.rnn import RowClassifier

    rows, cols = data.image_shape
    return RowClassifier(cols, params.hidden_size, data.num_classes, cell=params.cell)


BUILD = build_rnn  # what nnisuite.deploy.best retrains


def main(argv=None) -> dict:
    return run_trial(
        RNNParams, build_rnn, argv, prog="python -m nnisuite.trials.rnn", description=__doc__
    )


if __name__ == "__main__":
    sys.exit(main_guard(main))
