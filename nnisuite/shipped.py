"""The studies, search spaces and tabular benchmarks nnisuite ships, found by name wherever it is
installed (a source checkout or a wheel: both hold experiments/, search_spaces/ and
benchmarks/tables/ under nnisuite.DATA).

    find_study("mlp_tpe_digits")    # .../experiments/mlp_tpe_digits.yaml (a path is kept as given)
    find_table("digits")            # .../benchmarks/tables/digits
    print(listing())                # `nnisuite run --list`

A name is looked up only when no file or folder of that name exists where the command runs: a
user's own `mlp_tpe_digits.yaml` beside them is theirs.
"""

from __future__ import annotations

from pathlib import Path

from nnisuite import DATA

EXPERIMENTS = DATA / "experiments"
SEARCH_SPACES = DATA / "search_spaces"
TABLES = DATA / "benchmarks" / "tables"


def kind(path: Path) -> str:
    """experiment (nnictl's format), plan (a study of studies: `nnisuite repeat`) or nas
    (`nnisuite nas --config`), as validation tells them apart."""
    from nnisuite.config.experiment import load_yaml
    from nnisuite.config.nas_settings import is_nas_settings
    from nnisuite.config.plan import is_plan

    raw = load_yaml(path)
    return "plan" if is_plan(raw) else "nas" if is_nas_settings(raw) else "experiment"


def studies() -> dict[str, tuple[str, str]]:
    """name -> (kind, the file's first comment line) for every shipped experiment file."""
    out = {}
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        first = path.read_text().splitlines()[0] if path.stat().st_size else ""
        out[path.stem] = (kind(path), first.lstrip("# ").strip())
    return out


def named(text: str, folder: Path, suffix: str = "") -> Path | None:
    """folder/NAME(+suffix) when `text` is a bare name (no folder part) that is not a file or
    folder where the command runs, and the shipped one exists; else None."""
    if not text or Path(text).exists() or Path(text).name != text or text in (".", ".."):
        return None
    candidate = folder / (text if text.endswith(suffix) else text + suffix)
    return candidate if candidate.exists() else None


def find_study(text: str) -> str:
    """A study argument as a path: the file given, else the shipped study of that name."""
    found = named(text, EXPERIMENTS, ".yaml")
    return str(found) if found is not None else text


def find_table(text: str) -> str:
    """A --table argument as a path: the folder given, else the shipped table of that name."""
    found = named(text, TABLES)
    return str(found) if found is not None else text


def listing() -> str:
    """The shipped studies, one line each, with the command that runs each kind."""
    command = {
        "experiment": "nnisuite run",
        "plan": "nnisuite repeat",
        "nas": "nnisuite nas --config",
    }
    rows = studies()
    width = max(map(len, rows), default=0) + 2
    lines = [f"shipped studies ({EXPERIMENTS}):"]
    for name, (what, about) in rows.items():
        about = about if len(about) <= 70 else about[:67] + "..."
        lines.append(f"  {name:<{width}}{command[what]:<22}{about}")
    tables = sorted(p.name for p in TABLES.iterdir() if (p / "table.json").is_file())
    lines.append(f"\ntabular benchmarks (--table NAME of `nnisuite bench tabular run`): {tables}")
    return "\n".join(lines)
