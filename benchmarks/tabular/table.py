"""The table of a tabulated benchmark: the 3.17 space on a grid, every configuration trained by
nnisuite's own MLP trial through a real NNI experiment, per epoch.

    space = grid_space(load_space_file(), lr_values=8, seeds=3)     # NNI choices only
    build(Build(dataset="digits", out=Path("benchmarks/tables/digits")))
    table = Table.load(Path("benchmarks/tables/digits"))
    table.curve({"features1": 128, "features2": 256, "lr": 0.0139, "batch_size": 32}, seed=1)

The grid: every `choice` value of the space, a `loguniform` parameter (lr) on a geometric grid of
`lr_values` values from its low to its high end, a `uniform` one on a linear grid, and the trial's
`seed` as one more choice. One NNI trial per cell (configuration and seed), with
`--test-each-epoch` so that the test set is measured every epoch too (outside the timed epoch);
nnisuite.benchmarks.tabular.build runs them, resumably.

Files in the folder: `table.csv.gz` (one row per configuration, seed and epoch: the parameters,
`seed`, `epoch`, `val_accuracy`, `val_loss`, `test_accuracy`, `test_loss`, `epoch_s`, and per
configuration and seed `startup_s`: NNI's duration of the trial minus its epochs' seconds, what a
trial costs besides training), `table.json` (how it was made: the grid, the command, the
experiment, the machine, the manager's gap between trials, and the table file's sha256), and
`build.json` (the experiments that ran it) and `grid.yaml` / `cells.json` (the last one's
experiment file and the cells it was given).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from nnisuite import DATA

SPACE_FILE = DATA / "search_spaces" / "mlp_tpe.yaml"  # the log's 3.17 space
TABLE_FILE, META_FILE, GRID_FILE = "table.csv.gz", "table.json", "grid.yaml"
METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "epoch_s")
SEED = "seed"  # the trial's training seed, one more choice of the grid


class TableError(ValueError):
    """A table that cannot be built or read; the message says why."""


def load_space_file(path: Path = SPACE_FILE) -> dict:
    import yaml

    from nnisuite.config.experiment import SAFE_LOADER

    return yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 - the safe loader


def grid_values(spec: dict, lr_values: int) -> list:
    """The values a parameter takes on the grid (TableError for a type a grid cannot hold)."""
    kind, value = spec.get("_type"), spec.get("_value")
    if kind == "choice":
        return list(value)
    if kind in ("loguniform", "uniform"):
        lo, hi = float(value[0]), float(value[1])
        if lr_values < 2:
            raise TableError(f"at least 2 grid values are needed, got {lr_values}")
        if kind == "loguniform":
            points = [
                math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (lr_values - 1))
                for i in range(lr_values)
            ]
        else:
            points = [lo + i * (hi - lo) / (lr_values - 1) for i in range(lr_values)]
        return [float(f"{p:.4g}") for p in points]
    raise TableError(f"a {kind!r} parameter cannot be put on a grid (choice, uniform, loguniform)")


def grid_space(space: dict, lr_values: int = 8, seeds: int = 3, choices: int | None = None) -> dict:
    """The space as NNI choices (see the module's docstring); `choices`: keep only the first
    that many values of each `choice` parameter (a reduced grid, for tests)."""
    grid = {}
    for name, spec in space.items():
        values = grid_values(spec, lr_values)
        if choices and spec.get("_type") == "choice":
            values = values[:choices]
        grid[name] = {"_type": "choice", "_value": values}
    if SEED in grid:
        raise TableError(f"the space already has a parameter named {SEED!r}")
    grid[SEED] = {"_type": "choice", "_value": list(range(seeds))}
    return grid


def grid_size(grid: dict) -> int:
    return math.prod(len(spec["_value"]) for spec in grid.values())


def snap(value, values: list):
    """The grid value nearest `value` (on a log scale when all are positive numbers)."""
    if value in values:
        return value
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise TableError(f"{value!r} is not one of the grid's values {values}")
    if all(v > 0 for v in values) and value > 0:
        return min(values, key=lambda v: abs(math.log(v) - math.log(value)))
    return min(values, key=lambda v: abs(v - value))


@dataclass
class Table:
    """A built table in memory: `rows[(config key, seed)]` is the per-epoch list of metric
    dicts; `startup[(config key, seed)]` the seconds besides training."""

    meta: dict
    rows: dict
    startup: dict

    @property
    def parameters(self) -> list[str]:
        return [p for p in self.meta["grid"] if p != SEED]

    @property
    def seeds(self) -> list[int]:
        return list(self.meta["grid"][SEED]["_value"])

    @property
    def epochs(self) -> int:
        return int(self.meta["epochs"])

    def key(self, params: dict) -> tuple:
        """The grid cell of `params` (each value snapped to the grid)."""
        return tuple(snap(params[p], self.meta["grid"][p]["_value"]) for p in self.parameters)

    def curve(self, params: dict, seed: int) -> list[dict]:
        return self.rows[(self.key(params), seed)]

    @classmethod
    def load(cls, folder: Path) -> Table:
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_FILE).read_text())
            data = (folder / TABLE_FILE).read_bytes()
        except (OSError, ValueError) as exc:
            raise TableError(f"{folder}: not a built table ({exc})") from None
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise TableError(f"{folder / TABLE_FILE}: its sha256 is not the one {META_FILE} says")
        import pandas as pd

        frame = pd.read_csv(io.BytesIO(gzip.decompress(data)))
        names = [p for p in meta["grid"] if p != SEED]
        # column lists (Python ints and floats, as the YAML's), one pass over the rows: a
        # groupby with a frame per cell took 2.7 s for the digits table, this 0.1 s
        cells = zip(*(frame[p].tolist() for p in names))
        seeds, epochs = frame[SEED].tolist(), frame["epoch"].tolist()
        starts = frame["startup_s"].tolist()
        values = zip(*(frame[m].tolist() for m in METRICS))
        found: dict = {}  # (cell, seed) -> [(epoch, startup_s, metrics)], first seen first
        for cell, seed, epoch, start, row in zip(cells, seeds, epochs, starts, values):
            found.setdefault((cell, int(seed)), []).append((epoch, start, row))
        rows, startup = {}, {}
        for key, curve in found.items():
            curve.sort(key=lambda entry: entry[0])
            rows[key] = [dict(zip(METRICS, row)) for _, _, row in curve]
            startup[key] = float(curve[0][1])
        return cls(meta, rows, startup)


@dataclass
class Build:
    dataset: str
    out: Path
    lr_values: int = 8
    seeds: int = 3
    epochs: int = 10
    concurrency: int = 2
    choices: int | None = None
    experiment_dir: str | None = None
    retrain: list | None = None  # cells to train again (their new rows replace the old)

    def command(self) -> str:
        flags = (
            ("dataset", self.dataset),
            ("lr-values", self.lr_values),
            ("seeds", self.seeds),
            ("epochs", self.epochs),
            ("concurrency", self.concurrency),
            ("choices", self.choices),
        )
        given = " ".join(f"--{k} {v}" for k, v in flags if v is not None)
        return f"python -m nnisuite.benchmarks.tabular build {given} --out {self.out}"

    def grid(self) -> dict:
        return grid_space(load_space_file(), self.lr_values, self.seeds, self.choices)


def cells(grid: dict) -> list[dict]:
    """Every cell of the grid (parameters and seed), in the grid's order."""
    import itertools

    names = list(grid)
    return [dict(zip(names, c)) for c in itertools.product(*(grid[p]["_value"] for p in names))]


def cell_key(params: dict, grid: dict) -> tuple:
    return tuple(params.get(p) for p in grid)


def rows_of(exps, grid: dict, carried: list[dict] = ()) -> tuple[list[dict], list[dict]]:
    """The table's rows from the NNI experiments of the grid (their SUCCEEDED trials; the last
    one of a cell counts) and from `carried` (the rows of an earlier table the build extends;
    an experiment's trial of the same cell wins), and the cells still missing."""
    done: dict[tuple, list[dict]] = {}
    for row in carried:
        done.setdefault(cell_key(row, grid), []).append(row)
    for exp in exps:
        for trial in sorted(exp.trials, key=lambda t: t.end_time or 0):
            if trial.status != "SUCCEEDED" or not trial.intermediates:
                continue
            key = cell_key(trial.parameters, grid)
            epochs = trial.intermediates
            trained = sum(float(e["epoch_seconds"]) for e in epochs)
            startup = max(0.0, (trial.duration_s or trained) - trained)
            done[key] = [
                {
                    **dict(zip(grid, key)),
                    "epoch": i + 1,
                    "val_accuracy": float(e["default"]),
                    "val_loss": float(e["val_loss"]),
                    "test_accuracy": float(e["test_accuracy"]),
                    "test_loss": float(e["test_loss"]),
                    "epoch_s": float(e["epoch_seconds"]),
                    "startup_s": round(startup, 4),
                }
                for i, e in enumerate(epochs)
            ]
    every = cells(grid)
    rows = [row for c in every if cell_key(c, grid) in done for row in done[cell_key(c, grid)]]
    return rows, [c for c in every if cell_key(c, grid) not in done]


def dispatch_gap(exps, concurrency: int) -> float:
    """The median time from a trial's end to the start of the trial that took its place (the
    manager's polling and the trial's launch), from the build's own trials."""
    gaps = []
    for exp in exps:
        spans = sorted(
            (t.start_time, t.end_time) for t in exp.trials if t.start_time and t.end_time
        )
        ends = sorted(end for _, end in spans)
        for start, _ in spans[concurrency:]:
            before = [e for e in ends if e <= start]
            if before:
                gaps.append(start - before[-1])
    return statistics.median(gaps) if gaps else 0.0


def table_rows(table: Table) -> list[dict]:
    """A loaded table's rows as rows_of makes them (the grid's order, then the epoch's)."""
    return [
        {
            **dict(zip(table.parameters, cell)),
            SEED: seed,
            "epoch": epoch,
            **metrics,
            "startup_s": table.startup[(cell, seed)],
        }
        for (cell, seed), curve in table.rows.items()
        for epoch, metrics in enumerate(curve, start=1)
    ]


def current_command(command: str) -> str:
    """A recorded trial command in today's module names: tables built before nnisuite had one
    import name recorded `python3 -m launcher trials.mlp ...` for the same trial."""
    import re

    command = re.sub(r"(-m )launcher(?= )", r"\1nnisuite.launcher", command)
    return re.sub(r"(?<= )trials\.", "nnisuite.trials.", command)


def extends(table: Table, grid: dict, dataset: str, epochs: int, command: str) -> bool:
    """Whether `grid` holds every cell of `table` with the same trials: the same dataset, epochs
    and trial command, the same parameters, each with all of the table's values and maybe more
    (more seeds, lr values or choices)."""
    meta = table.meta
    recorded = current_command(meta["trial_command"])
    if (meta["dataset"], int(meta["epochs"]), recorded) != (
        dataset,
        epochs,
        current_command(command),
    ):
        return False
    return set(meta["grid"]) == set(grid) and all(
        set(spec["_value"]) <= set(grid[name]["_value"]) for name, spec in meta["grid"].items()
    )


def write_table(
    exps, build: Build, grid: dict, command: str, carried: list[dict] = (), earlier=None
) -> dict:
    """table.csv.gz and table.json from the build's experiments (and the `carried` rows of the
    `earlier` table's metadata it extends); returns the metadata."""
    import pandas as pd

    from nnisuite.benchmarks.machine import cpu_name

    rows, missing = rows_of(exps, grid, carried)
    if missing:
        raise TableError(
            f"{len(missing)} of {grid_size(grid)} grid cells have no finished trial "
            f"(first: {missing[0]}): run the same build again to continue"
        )
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(pd.DataFrame(rows).to_csv(index=False, float_format="%.6g").encode())
    data = buffer.getvalue()
    (build.out / TABLE_FILE).write_bytes(data)
    meta = {
        "dataset": build.dataset,
        "epochs": build.epochs,
        "grid": grid,
        "cells": grid_size(grid),
        "trial_command": command,
        "concurrency": build.concurrency,
        "experiments": [e.id for e in exps],
        "machine": cpu_name(),
        "dispatch_gap_s": round(
            dispatch_gap(exps, build.concurrency) or (earlier or {}).get("dispatch_gap_s", 0.0), 3
        ),
        "made_by": build.command(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if earlier:  # the cells no experiment above trained are the earlier table's
        meta["extends"] = earlier
    (build.out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta
