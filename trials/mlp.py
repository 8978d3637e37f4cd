"""The MLP trial (log days 3.12 and 3.17): an NNI trial, or a standalone run.

    python -m nnisuite.trials.mlp --epochs 5 --lr 0.05                 # digits, writes runs/<time>/
    python -m nnisuite.trials.mlp --dataset fashion-mnist --out runs/fmnist
    nnictl create --config experiments/mlp_tpe.yaml           # as an NNI trial

Parameter names are the 3.17 search space's: features1, features2, lr, batch_size.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from nnisuite.trials.params import MAX_WIDTH, ParameterError, TrainingParams
from nnisuite.trials.runner import main_guard, run_trial

ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid")  # nnisuite.models.mlp.ACTIVATIONS, without torch


@dataclass
class MLPParams(TrainingParams):
    features1: int = 128  # the log's 3.17 defaults (lr 0.001, batch 64, SGD: TrainingParams)
    features2: int = 256
    activation: str = "relu"

    def check(self):
        super().check()
        if min(self.features1, self.features2) < 1:
            raise ParameterError("features1 and features2 must be >= 1")
        if max(self.features1, self.features2) > MAX_WIDTH:
            raise ParameterError(f"features1 and features2 must be <= {MAX_WIDTH}")
        if self.activation not in ACTIVATIONS:
            raise ParameterError(
                f"activation {self.activation!r} unknown; choose one of {', '.join(ACTIVATIONS)}"
            )


def build_mlp(params: MLPParams, data):
    from nnisuite.models.mlp import MLP

    return MLP(
        data.num_features,
        [params.features1, params.features2],
        data.num_classes,
        activation=params.activation,
    )


PARAMS = MLPParams  # what nnisuite.config.validate checks search spaces against
BUILD = build_mlp  # what nnisuite.deploy.best retrains


def main(argv=None) -> dict:
    return run_trial(
        MLPParams, build_mlp, argv, prog="python -m nnisuite.trials.mlp", description=__doc__
    )


if __name__ == "__main__":
    sys.exit(main_guard(main))
