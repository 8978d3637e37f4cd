"""Trial parameters: one typed dataclass of defaults, overridden by CLI flags, then by NNI.

    @dataclass
    class MLPParams(TrialParams):
        features1: int = 128
    params = resolve_params(MLPParams, ["--features1", "512"], {"lr": 0.01})

A dataclass field `x_y` is the flag `--x-y` and the NNI parameter `x_y`. A key NNI sends that
the dataclass does not have is an error naming it and the accepted names (the log's 3.17 trial
read `feature1` while the space sent `features1`, and nothing said so). Standard library only:
the validator imports these classes without paying for torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path

from nnisuite.flags import Parser

# Fields a user sets on the command line but a search space must not tune.
CLI_ONLY = {"out", "data_dir", "threads", "device", "fused", "test_each_epoch"}
OPTIMIZERS = ("sgd", "adam")  # what nnisuite.trials.engine.make_optimizer builds
SCHEDULES = (
    "constant",
    "cosine",
)  # nnisuite.trials.engine.epoch_lr: the learning rate of each epoch
DEVICE = re.compile(r"cpu|cuda(:\d+)?")
MAX_WIDTH = 65_536  # a layer wider than this is a typo, not a model (784 x 65,536 floats: 200 MB)


class ParameterError(ValueError):
    """A parameter with an unknown name or a value of the wrong type or range."""


@dataclasses.dataclass
class TrialParams:
    """Fields every trial shares. Subclasses add the model's and optimiser's."""

    epochs: int = 20
    seed: int = 0
    dataset: str = "digits"
    data_dir: str | None = None
    out: str | None = None
    threads: int | None = None  # torch threads; None: torch's default (all cores)
    device: str | None = None  # None: CUDA when visible, else CPU
    fused: bool | None = None  # nnisuite.trials.fused's fast path; None: wherever it applies

    def check(self) -> None:
        """Range checks shared by every trial, before any work; subclasses extend and call
        super()."""
        from nnisuite.outputs import check_writable
        from nnisuite.trials.data import DATASETS  # numpy only

        if self.epochs < 1:
            raise ParameterError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.seed < 2**32:
            raise ParameterError(f"seed must be in 0..2**32-1, got {self.seed}")
        if self.dataset not in DATASETS:
            raise ParameterError(f"dataset {self.dataset!r} unknown; choose one of {DATASETS}")
        if self.threads is not None and self.threads < 1:
            raise ParameterError(f"threads must be >= 1, got {self.threads}")
        if self.device is not None and not DEVICE.fullmatch(self.device):
            raise ParameterError(f"device {self.device!r} unknown; use cpu, cuda or cuda:N")
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise ParameterError(f"data_dir {self.data_dir}: no such folder")
        if self.out is not None:
            problem = (
                "--out: an empty path: name a folder"
                if not str(self.out).strip()
                else check_writable(Path(self.out), "--out")
            )
            if problem:
                raise ParameterError(problem)


@dataclasses.dataclass
class TrainingParams(TrialParams):
    """The optimiser's fields, shared by the trials that train with nnisuite.trials.engine."""

    lr: float = 0.001
    batch_size: int = 64
    optimizer: str = "sgd"
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0  # L2 penalty, as torch.optim's weight_decay (biases included)
    schedule: str = "constant"  # or "cosine": lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2
    restore_best: bool = False  # end with the weights of the best validation epoch
    test_each_epoch: bool = False  # also test every epoch (nnisuite.benchmarks.tabular's tables)

    def check(self) -> None:
        super().check()
        if not self.lr > 0:
            raise ParameterError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ParameterError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError(
                f"optimizer {self.optimizer!r} unknown; choose one of {', '.join(OPTIMIZERS)}"
            )
        if self.momentum < 0:
            raise ParameterError(f"momentum must be >= 0, got {self.momentum}")
        if self.weight_decay < 0:
            raise ParameterError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise ParameterError(
                f"schedule {self.schedule!r} unknown; choose one of {', '.join(SCHEDULES)}"
            )
        if self.momentum and self.optimizer != "sgd":
            raise ParameterError(
                f"momentum {self.momentum} is SGD's; optimizer {self.optimizer!r} takes none"
            )


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse turns the ValueError into its one line)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def field_types(cls) -> dict[str, type]:
    """name -> the scalar type of each field (int, float, str, bool), Optional unwrapped."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        out[f.name] = args[0] if args else hint
    return out


def tunable_names(cls) -> list[str]:
    """The names a search space may set, sorted."""
    return sorted(name for name in field_types(cls) if name not in CLI_ONLY)


def coerce(name: str, value, target: type):
    """Convert an NNI / CLI value to the field's type, refusing lossy conversions."""
    if value is None:
        return None
    if target is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes"):
            return True
        if str(value).lower() in ("0", "false", "no"):
            return False
    elif target is int:
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            return value
        elif isinstance(value, float) and value.is_integer():
            return int(value)
        elif isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif target is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        elif isinstance(value, str):
            try:
                return coerce(name, float(value), float)
            except ValueError:
                pass
    elif target is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ParameterError(f"parameter {name!r}: {value!r} is not a valid {target.__name__}")


def build_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, kind in field_types(cls).items():
        flag = "--" + name.replace("_", "-")
        default = defaults[name]
        default = "required" if default is dataclasses.MISSING else default
        if kind is bool:  # --fused / --no-fused
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"default: {'automatic' if default is None else default}",
            )
            continue
        parser.add_argument(
            flag,
            dest=name,
            type=str,  # coerced below, with the same rules as NNI's values
            default=None,
            metavar=kind.__name__.upper(),
            help=f"default: {default}",
        )
    return parser


def resolve_params(
    cls,
    argv: Sequence[str] | None = None,
    nni_params: Mapping | None = None,
    prog: str = "trial",
    description: str = "",
):
    """defaults <- CLI flags <- NNI parameters; then the dataclass's range check."""
    types = field_types(cls)
    values = {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(cls, prog, description).parse_args(argv)
    for name, raw in vars(args).items():
        if raw is not None:
            values[name] = coerce(name, raw, types[name])
    accepted = tunable_names(cls)
    for name, value in (nni_params or {}).items():
        if name not in accepted:
            hint = " (set it on the trial command line instead)" if name in CLI_ONLY else ""
            raise ParameterError(
                f"unknown parameter {name!r} from NNI{hint}; this trial accepts: "
                + ", ".join(accepted)
            )
        values[name] = coerce(name, value, types[name])
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
    if missing:
        raise ParameterError(
            f"required parameter(s) {', '.join(missing)} set by neither the "
            "search space nor the command line"
        )
    tuned = set(nni_params or {})
    if (
        values.get("momentum")
        and values.get("optimizer", "sgd") != "sgd"
        and tuned
        & {
            "momentum",
            "optimizer",
        }
    ):
        # a space that tunes both: momentum means nothing to Adam; record what was used
        print(f"{prog}: momentum unused by {values['optimizer']}: recorded as 0", file=sys.stderr)
        values["momentum"] = 0.0
    params = cls(**values)
    params.check()
    return params
