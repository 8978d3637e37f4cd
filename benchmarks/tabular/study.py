"""`python -m nnisuite.benchmarks.tabular run`: a study of studies (nnisuite.study.repeat's plan
files) on a table, every run simulated (nnisuite.benchmarks.tabular.simulator); the same runs.csv,
comparison.csv, pairwise.csv, comparison.md and plots as nnisuite.study.repeat
(nnisuite.analysis.compare), with simulated wall seconds, and trials.csv.gz (every simulated trial
of every run).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import multiprocessing
import time
from pathlib import Path

from nnisuite.benchmarks.tabular.simulator import Simulation, SimulationError
from nnisuite.benchmarks.tabular.table import Table

TRIALS_FILE = "trials.csv.gz"


def one_run(task) -> dict:
    """A (variant, seed) run simulated: its nnisuite.analysis.compare.Run fields and its trials."""
    plan, table, variant, seed, trial_seed, max_seconds = task
    from nnisuite.analysis.direction import direction
    from nnisuite.config.plan import run_config

    config = run_config(plan, variant, seed, None, plan.get("dataset"))
    started = time.perf_counter()
    tag = f"{variant}-s{seed}"
    sim = Simulation(
        config,
        Path(plan["base"]),
        table,
        seed,
        tag=tag,
        trial_seed=trial_seed,
        max_seconds=max_seconds,
    )
    result = sim.run()
    done = [t for t in result.trials if t.final is not None]
    trials = [
        {
            "variant": variant,
            "seed": seed,
            "sequence": t.sequence,
            "status": t.status,
            **{f"param.{k}": v for k, v in t.parameters.items()},
            **{f"cell.{k}": v for k, v in zip(table.parameters, t.cell)},
            "table_seed": t.seed,
            "epochs": t.epochs,
            "intermediates": t.reported,
            "default": (t.final or {}).get("default"),
            "test_accuracy": (t.final or {}).get("test_accuracy"),
            "start_s": round(t.start, 3),
            "end_s": round(t.end, 3) if t.end is not None else None,
        }
        for t in result.trials
    ]
    return {
        "run": {
            "variant": variant,
            "seed": seed,
            "experiment_id": f"sim-{variant}-s{seed}",
            "finals": [t.final["default"] for t in done],
            "tests": [t.final["test_accuracy"] for t in done],
            "end_s": [t.end for t in done],
            "wall_s": result.wall_s,
            "trials": len(result.trials),
            "mode": direction(config),
        },
        "trials": trials,
        "snapped": result.snapped,
        "cpu_s": time.perf_counter() - started,
    }


def simulate(
    plan_path: str | Path,
    table_dir: str | Path,
    seeds: int,
    out: str | Path,
    variants: list[str] | None = None,
    workers: int = 2,
    plots: bool = True,
    trial_seed: str = "draw",
    max_trials: int | None = None,
    max_seconds: float | None = None,
    dataset: str | None = None,
    epochs: int | None = None,
) -> str:
    """Every (variant, seed) run simulated; the comparison written to `out`; its markdown.
    max_seconds: every run stops at that simulated second (equal wall-clock); dataset: the
    trials' --dataset instead of the plan's (a digits plan on the Fashion-MNIST table); epochs:
    every trial's epochs instead of the plan's (at most the table's)."""
    import nni.__main__  # noqa: F401 - NNI sets its loggers up on import: quiet them after
    import pandas as pd

    from nnisuite.analysis.compare import Run, aggregate
    from nnisuite.config.plan import is_nas, load_plan, override_plan, run_config

    logging.getLogger("nni").setLevel(logging.WARNING)  # the tuners' per-run info lines
    plan = override_plan(
        load_plan(plan_path), max_trials=max_trials, dataset=dataset, epochs=epochs
    )
    if is_nas(plan):
        raise SimulationError(f"{plan_path}: a NAS plan; the table is of the 3.17 HPO space")
    table = Table.load(Path(table_dir))  # each Simulation checks its trials' --dataset
    names = variants or list(plan["variants"])
    unknown = sorted(set(names) - set(plan["variants"]))
    if unknown:
        raise SimulationError(f"no variant {unknown} in {plan_path}")
    tasks = [(plan, table, v, s, trial_seed, max_seconds) for v in names for s in range(seeds)]
    for task in tasks[:: max(1, seeds)]:  # every variant's first run, here: errors early
        Simulation(
            run_config(plan, task[2], 0, None, plan.get("dataset")),
            Path(plan["base"]),
            table,
            0 if trial_seed == "draw" else table.seeds[0],
            trial_seed=trial_seed,
        )
    started = time.monotonic()
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(one_run, tasks, chunksize=1)
    else:
        results = [one_run(t) for t in tasks]
    elapsed = time.monotonic() - started
    runs = [Run(**r["run"]) for r in results]
    budget = max(r.trials for r in runs)
    out = Path(out)
    snapped = sum(r["snapped"] for r in results)
    trials = sum(r.trials for r in runs)
    from nnisuite.study.repeat import ran_what

    name = (plan.get("title") or Path(plan_path).stem).rsplit(": ", 1)[0]
    if dataset:  # the plan's title names its own dataset
        name = f"{Path(plan_path).stem}'s variants, trials on {dataset}"
    title = (
        f"{name}: {len(names)} variants, {ran_what(plan, names, seeds)}; simulated on the "
        f"{table.meta['dataset']} table ({table.meta['cells']} cells, sha256 "
        f"{table.meta['sha256'][:12]})"
    )
    text = aggregate(runs, budget, out, title=title, plots=plots)
    frame = pd.DataFrame([t for r in results for t in r["trials"]])
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(frame.to_csv(index=False).encode())
    (out / TRIALS_FILE).write_bytes(buffer.getvalue())
    note = (
        f"\n\nSimulated: {len(runs)} runs, {trials} trials in {elapsed:.1f} s of wall time "
        f"({workers} worker(s)); {snapped} trial(s) had a value moved to the grid's nearest "
        f"(nnisuite.benchmarks.tabular.simulator). Wall seconds are simulated: the table's "
        "start-up "
        f"and epoch seconds, NNI's 0.5 s poll.\n"
    )
    (out / "comparison.md").write_text(text + note)
    (out / "simulated.json").write_text(
        json.dumps(
            {
                "plan": str(plan_path),
                "table": str(table_dir),
                "table_sha256": table.meta["sha256"],
                "seeds": seeds,
                "variants": names,
                "runs": len(runs),
                "trials": trials,
                "snapped_trials": snapped,
                "wall_s": round(elapsed, 2),
                "workers": workers,
            },
            indent=1,
        )
        + "\n"
    )
    return text + note


SIZES = (3, 5, 10, 15, 20, 30, 50)


def seeds_to_see(
    runs: Path, variants: list[str], out: Path, metric: str = "final_best", draws: int = 2000
) -> str:
    """How many seeds a study needs to see two variants of `runs` (a folder with runs.csv:
    nnisuite.study.repeat's or this simulator's) apart: seeds.csv and seeds.md in `out`, the
    markdown returned."""
    import pandas as pd

    from nnisuite.analysis.statistics import detection_rates

    try:
        table = pd.read_csv(Path(runs) / "runs.csv")
    except (OSError, ValueError) as exc:
        raise SimulationError(f"{runs}: no runs.csv to read ({exc})") from None
    if metric not in table.columns:
        raise SimulationError(f"--metric {metric!r}: runs.csv has no such column")
    values = [table.loc[table["variant"] == v, metric].dropna().to_numpy() for v in variants]
    for name, found in zip(variants, values):
        if len(found) < 2:
            raise SimulationError(f"variant {name!r}: {len(found)} run(s) in runs.csv, need 2+")
    sizes = [n for n in SIZES if n <= max(len(v) for v in values)]
    rates = detection_rates(values[0], values[1], sizes, draws=draws)
    a, b = variants
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame({"seeds": sizes, "detected": rates})
    rows.to_csv(out / "seeds.csv", index=False)
    lines = [
        f"How often a study of n seeds per variant sees {a} and {b} apart on {metric} "
        f"(two-sided Mann-Whitney p < 0.05), over {draws} seeded resamplings of the "
        f"{len(values[0])} and {len(values[1])} runs in {runs}/runs.csv "
        f"(mean {values[0].mean():.4f} and {values[1].mean():.4f}):",
        "",
        "| seeds per variant | seen apart |",
        "|---|---|",
        *[f"| {n} | {rate:.0%} |" for n, rate in zip(sizes, rates)],
    ]
    text = "\n".join(lines) + "\n"
    (out / "seeds.md").write_text(text)
    return text
