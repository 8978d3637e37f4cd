"""A problem found in an experiment or NAS settings file: where, what, and the fix.

Problem("exp.yaml", "trialConcurrency", "must be a positive integer, got -1", "set it >= 1")
str(problem)  # "exp.yaml: trialConcurrency: must be ... Fix: set it >= 1"
errors(problems)  # the ones that stop a run (warnings and notes are printed, not fatal)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Problem:
    file: str
    key: str
    message: str
    fix: str
    severity: str = "error"  # "error" stops the run; "warning" and "note" are said, not fatal

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}. Fix: {self.fix}"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def report(problems: list[Problem], stream, prefix: str = "") -> bool:
    """Print each problem as `error: ...`, `warning: ...` or `note: ...`; True when any is an
    error (the caller exits 2)."""
    for problem in problems:
        print(f"{problem.severity}: {prefix}{problem}", file=stream)
    return bool(errors(problems))
