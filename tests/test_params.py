"""nnisuite.trials.params: typed defaults <- CLI flags <- NNI parameters; coercion refuses lossy
values."""

from __future__ import annotations

import math

import pytest

from nnisuite.trials.mlp import MLPParams
from nnisuite.trials.params import ParameterError, build_parser, coerce, resolve_params


@pytest.mark.parametrize(
    "value, target, expected",
    [
        ("3", int, 3),
        (3.0, int, 3),
        (7, int, 7),
        ("0.5", float, 0.5),
        (2, float, 2.0),
        ("yes", bool, True),
        ("0", bool, False),
        (False, bool, False),
        (128, str, "128"),
        (None, int, None),
    ],
)
def test_coerce_accepts(value, target, expected):
    out = coerce("x", value, target)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    "value, target",
    [
        (3.5, int),  # lossy
        (True, int),  # a bool is not a count
        ("3.5", int),
        ("abc", float),
        (math.inf, float),
        (math.nan, float),
        (True, float),
        ("maybe", bool),
        (True, str),
        ([1], str),
    ],
)
def test_coerce_refuses(value, target):
    with pytest.raises(ParameterError, match="'x'"):
        coerce("x", value, target)


def test_precedence_defaults_then_flags_then_nni():
    params = resolve_params(MLPParams, ["--lr", "0.01", "--features1", "64"], {"lr": 0.02})
    assert params.lr == 0.02 and params.features1 == 64 and params.features2 == 256


def test_unknown_and_cli_only_nni_parameters_are_errors():
    with pytest.raises(ParameterError, match="unknown parameter 'feature1'.*features1"):
        resolve_params(MLPParams, [], {"feature1": 512})
    with pytest.raises(ParameterError, match="command line instead"):
        resolve_params(MLPParams, [], {"fused": False})


def test_bool_fields_are_on_off_flags():
    parser = build_parser(MLPParams, "p", "")
    assert parser.parse_args(["--fused"]).fused is True
    assert parser.parse_args(["--no-fused"]).fused is False
    assert parser.parse_args([]).fused is None
    assert resolve_params(MLPParams, ["--no-fused"]).fused is False


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer", "rmsprop"], "optimizer 'rmsprop' unknown"),
        (["--lr", "0"], "lr must be > 0"),
        (["--batch-size", "0"], "batch_size must be >= 1"),
        (["--momentum", "-1"], "momentum must be >= 0"),
        (["--activation", "swish"], "activation 'swish' unknown"),
        (["--epochs", "0"], "epochs must be >= 1"),
    ],
)
def test_range_checks(args, message):
    with pytest.raises(ParameterError, match=message):
        resolve_params(MLPParams, args)
