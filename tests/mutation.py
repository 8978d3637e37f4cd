"""Mutation testing of nnisuite (mutmut) in the layout it needs: the package as a wheel has it.

    .venv/bin/python -m tests.mutation                       # every module [tool.mutmut] names
    .venv/bin/python -m tests.mutation "nnisuite.analysis.pareto*" ...   # some of them
    .venv/bin/python -m tests.mutation --results             # per module: killed / survived

mutmut names a module from its file's path under ./ or src/ (`analysis/direction.py` is
`analysis.direction`) and matches the names the tests import: every test imports
`nnisuite.analysis.direction`, so in the checkout no mutant is ever seen run ("tests recorded
trampoline hits but none match any mutant key"). This builds `mutants-stage/` (ignored by git):
`src/nnisuite/` holds the package as the wheel lays it out (nnisuite/__init__.py with analysis/,
launcher/, ... and the data folders inside it), beside copies of tests/, the data folders and
pyproject.toml with [tool.mutmut]'s paths rewritten to src/nnisuite/...; then runs mutmut there.
Tests that start other processes (`python -m nnisuite...`) run the checkout's unmutated code:
mutmut sees only what runs in the test process (pyproject's [tool.mutmut] comment says which
modules that leaves to the fault tests).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "mutants-stage"
DATA = ["experiments", "search_spaces"]


def packages() -> list[str]:
    """The folders pyproject maps under nnisuite (package-dir)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    mapped = config["tool"]["setuptools"]["package-dir"]
    return sorted({v.split("/")[0] for k, v in mapped.items() if k.startswith("nnisuite.")})


def ignored(folder, names):
    return [n for n in names if n in ("__pycache__",) or n.endswith(".pyc")]


def stage() -> Path:
    """mutants-stage/ afresh; mutmut's own mutants/ inside it is kept between runs only when the
    sources did not change (mutmut compares modification times)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    src = STAGE / "src" / "nnisuite"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(REPO / "nnisuite", src, ignore=ignored)
    for name in dict.fromkeys(packages() + DATA):
        if (REPO / name).is_dir() and name != "nnisuite":
            shutil.copytree(REPO / name, src / name, ignore=ignored)
    for name in ["tests", *DATA]:
        shutil.rmtree(STAGE / name, ignore_errors=True)
        shutil.copytree(REPO / name, STAGE / name, ignore=ignored)
    text = (REPO / "pyproject.toml").read_text()
    only = [f"src/nnisuite/{p}" for p in config["only_mutate"]]
    block = (
        "[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {only!r}\n"
        f"also_copy = {['tests', *DATA, 'pyproject.toml']!r}\n"
        f"pytest_add_cli_args = {config['pytest_add_cli_args']!r}\n"
        "pytest_add_cli_args_test_selection = "
        f"{config['pytest_add_cli_args_test_selection']!r}\n"
    )
    text = re.sub(
        r"^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", lambda _: block + "\n", text, flags=re.S | re.M
    )
    (STAGE / "pyproject.toml").write_text(text)
    return STAGE


def results() -> int:
    """Killed / survived per module from mutmut's results."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=STAGE,
        capture_output=True,
        text=True,
    )
    per: dict[str, dict[str, int]] = {}
    survivors: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if ":" not in line:
            continue
        name, status = (part.strip() for part in line.rsplit(":", 1))
        module = re.sub(r"\.x[ǁ_].*$", "", name)
        per.setdefault(module, {})
        per[module][status] = per[module].get(status, 0) + 1
        if status == "survived":
            survivors.setdefault(module, []).append(name)
    for module, counts in sorted(per.items()):
        killed = counts.get("killed", 0)
        total = sum(counts.values())
        rest = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k != "killed")
        print(f"{module}: {killed}/{total} killed ({100 * killed / max(total, 1):.0f}%); {rest}")
    for module, names in sorted(survivors.items()):
        print(f"\nsurvived in {module}:")
        print("\n".join(f"  {n}" for n in names))
    return done.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.mutation", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("mutants", nargs="*", help="mutant name globs (default: all)")
    parser.add_argument("--results", action="store_true", help="only print the last results")
    parser.add_argument("--max-children", type=int, default=2, help="mutmut's parallel runs")
    args = parser.parse_args(argv)
    if args.results:
        return results()
    stage()
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
    code = subprocess.run([*command, *args.mutants], cwd=STAGE).returncode
    return results() if code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
