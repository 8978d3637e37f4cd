"""`python -m nnisuite.benchmarks.tabular build`: train every cell of the grid through real NNI
experiments (nnisuite's runner: validation, the warm launcher, the watchdog, Ctrl-C), then write the
table.

Resumable: OUT/build.json lists the build's experiments; run the same command again and a new
experiment trains only the cells no earlier one finished (nnisuite.benchmarks.tabular.cells_tuner),
and the table is written once every cell has a finished trial. A folder holding another grid's
build is refused, except where the new grid extends the table already there (the same trials,
more seeds, lr values or choices): its rows are kept and only the new cells are trained, and
table.json says which table it extends (`extends`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import yaml

from nnisuite import DATA
from nnisuite.benchmarks.machine import cpu_name
from nnisuite.benchmarks.tabular.table import (
    TABLE_FILE,
    Build,
    Table,
    TableError,
    cell_key,
    cells,
    current_command,
    extends,
    grid_size,
    rows_of,
    table_rows,
    write_table,
)

BUILD_FILE, CELLS_FILE, EXPERIMENT_FILE = "build.json", "cells.json", "grid.yaml"
EXIT_UNFINISHED = 3  # the grid is not complete yet: run the same command again


def trial_command(build: Build) -> str:
    return (
        f"python3 -m nnisuite.launcher nnisuite.trials.mlp --dataset {build.dataset} "
        f"--epochs {build.epochs} "
        "--threads 1 --test-each-epoch"
    )


def experiment_yaml(build: Build, grid: dict, remaining: list[dict]) -> Path:
    """grid.yaml and cells.json for an experiment over the `remaining` cells."""
    cells = build.out / CELLS_FILE
    cells.write_text(json.dumps(remaining) + "\n")
    config = {
        "experimentName": f"tabular_{build.dataset}",
        "searchSpace": grid,
        "trialCommand": trial_command(build),
        "trialCodeDirectory": str(DATA),
        "trialConcurrency": build.concurrency,
        "maxTrialNumber": len(remaining),
        "tuner": {
            "className": "nnisuite.benchmarks.tabular.cells_tuner.CellsTuner",
            "codeDirectory": str(build.out.resolve()),  # any folder: nnisuite is installed
            "classArgs": {"cells_file": str(cells.resolve())},
        },
        "trainingService": {"platform": "local"},
    }
    if build.experiment_dir:
        config["experimentWorkingDirectory"] = str(Path(build.experiment_dir).resolve())
    path = build.out / EXPERIMENT_FILE
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def carried(build: Build, grid: dict) -> tuple[list[dict], Table | None]:
    """The rows of the table already in the folder where `grid` extends it (table.extends),
    and that table; ([], None) where the folder has no table."""
    if not (build.out / TABLE_FILE).is_file():
        return [], None
    table = Table.load(build.out)
    if not extends(table, grid, build.dataset, build.epochs, trial_command(build)):
        raise TableError(
            f"{build.out} holds a table of another grid or trial ({table.meta.get('made_by')}):"
            " give another --out, or a grid that extends it (more --seeds, --lr-values or "
            "--choices, the same --dataset and --epochs)"
        )
    return table_rows(table), table


def record(build: Build, grid: dict, earlier: Table | None) -> dict:
    """build.json: the grid and the experiments so far (a new record when there is none, or
    where the grid extends the `earlier` table in the folder)."""
    path = build.out / BUILD_FILE
    found = json.loads(path.read_text()) if path.is_file() else None
    command = trial_command(build)
    recorded = current_command(found.get("trial_command", command)) if found else None
    if found is not None and (found.get("grid"), recorded) == (
        grid,
        command,
    ):
        return found
    if found is not None and earlier is None:
        raise TableError(
            f"{build.out} holds the build of another grid or trial ({path}): give another "
            "--out, or the same --lr-values / --seeds / --choices / --epochs as before"
        )
    new = {"grid": grid, "trial_command": command, "experiments": []}
    if earlier is not None:
        keep = ("made_by", "cells", "experiments", "machine", "dispatch_gap_s", "sha256")
        new["extends"] = {k: earlier.meta[k] for k in keep if k in earlier.meta}
    return new


def load_all(found: dict) -> list:
    from nnisuite.analysis.store import ExportError, load_experiment

    exps = []
    for exp_id, exp_dir in found["experiments"]:
        with contextlib.suppress(ExportError):  # stopped before NNI recorded anything
            exps.append(load_experiment(exp_id, exp_dir, live=False))
    return exps


def run_cells(yaml_path: Path, build: Build, found: dict) -> int:
    """One NNI experiment over the cells in yaml_path, through nnisuite's runner; recorded in
    build.json as soon as it exists (a Ctrl-C keeps what it finished)."""
    from nnisuite.study.manager import run_study
    from nnisuite.study.run import build_parser, new_study

    argv = [str(yaml_path), "--out", str(build.out / "export")]
    if build.experiment_dir:
        argv += ["--experiment-dir", build.experiment_dir]
    args = build_parser().parse_args(argv)
    study = new_study(args)
    if isinstance(study, int):
        return study
    found["experiments"].append([study.exp.id, str(study.exp_dir)])
    (build.out / BUILD_FILE).write_text(json.dumps(found, indent=1) + "\n")
    return run_study(study, export=lambda *_: None, launcher=args.warm)


def retrain(b: Build, grid: dict, found: dict, kept: list[dict], remaining: list[dict]) -> int:
    """Train b.retrain's cells again in one new experiment; its rows replace theirs (the last
    experiment of a cell wins: rows_of), and the table is written again."""
    if remaining or not (b.out / TABLE_FILE).is_file():
        raise TableError("--retrain: build the whole table first (cells are still missing)")
    every = {cell_key(c, grid) for c in cells(grid)}
    if not isinstance(b.retrain, list) or not b.retrain:
        raise TableError("--retrain: give a non-empty JSON list of cells")
    for cell in b.retrain:
        if not isinstance(cell, dict) or set(cell) != set(grid):
            raise TableError(f"--retrain: {cell!r} is not a cell (keys: {', '.join(grid)})")
        if cell_key(cell, grid) not in every:
            raise TableError(f"--retrain: {cell!r} is not a cell of this table's grid")
    print(f"{len(b.retrain)} of {grid_size(grid)} cells to train again", flush=True)
    code = run_cells(experiment_yaml(b, grid, b.retrain), b, found)
    if code:
        print(f"the retraining stopped (exit {code}): the table is as it was", file=sys.stderr)
        return code
    meta = write_table(load_all(found), b, grid, trial_command(b), kept, found.get("extends"))
    print(f"table: {b.out}/table.csv.gz ({meta['cells']} cells, sha256 {meta['sha256'][:12]}...)")
    return 0


def build(b: Build) -> int:
    b.out.mkdir(parents=True, exist_ok=True)
    grid = b.grid()
    kept, earlier = carried(b, grid)
    found = record(b, grid, earlier)
    _, remaining = rows_of(load_all(found), grid, kept)
    if b.retrain is not None:
        return retrain(b, grid, found, kept, remaining)
    if not remaining and earlier is not None and earlier.meta["grid"] == grid:
        print(f"table: {b.out}/{TABLE_FILE} holds every cell of this grid: nothing to train")
        return 0
    if remaining:
        kept_cells = len({cell_key(row, grid) for row in kept})
        print(
            f"{len(remaining)} of {grid_size(grid)} cells to train "
            f"({len(found['experiments'])} earlier experiment(s) of this build"
            + (f", {kept_cells} cells kept from the table it extends" if kept_cells else "")
            + ")",
            flush=True,
        )
        machine = (found.get("extends") or {}).get("machine")
        if machine and machine != cpu_name():
            print(
                f"note: the table it extends was built on {machine}, this is {cpu_name()}: the "
                "new cells' seconds (the simulated clock) come from another CPU",
                file=sys.stderr,
            )
        code = run_cells(experiment_yaml(b, grid, remaining), b, found)
        _, remaining = rows_of(load_all(found), grid, kept)
        if remaining:
            first = cell_key(remaining[0], grid)
            print(
                f"{len(remaining)} cell(s) still missing (first {first}; exit {code}): run the "
                f"same command again to continue: {b.command()}",
                file=sys.stderr,
            )
            return code or EXIT_UNFINISHED
    meta = write_table(load_all(found), b, grid, trial_command(b), kept, found.get("extends"))
    print(
        f"table: {b.out}/table.csv.gz ({meta['cells']} cells x {meta['epochs']} epochs, "
        f"sha256 {meta['sha256'][:12]}...; median dispatch gap {meta['dispatch_gap_s']} s)"
    )
    return 0
