"""A problem found in an experiment or NAS settings file: where, what, and the fix.

Problem("exp.yaml", "trialConcurrency", "must be a positive integer, got -1", "set it >= 1")
str(problem)  # "exp.yaml: trialConcurrency: must be ... Fix: set it >= 1"
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Problem:
    file: str
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}. Fix: {self.fix}"
