"""Where things are: the repository root and its shipped files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
SEARCH_SPACES = REPO / "search_spaces"
DIGITS_YAML = EXPERIMENTS / "mlp_tpe_digits.yaml"
