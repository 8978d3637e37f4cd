"""Where things are: the project root (NNI's trial code directory) and its shipped files."""

from __future__ import annotations

from launcher import REPO

EXPERIMENTS = REPO / "experiments"
SEARCH_SPACES = REPO / "search_spaces"
DIGITS_YAML = EXPERIMENTS / "mlp_tpe_digits.yaml"
