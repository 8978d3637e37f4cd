"""`python -m nnisuite.benchmarks.tabular agree`: the simulator against reality. A plan run for real
(nnisuite.study.repeat's folder) and simulated (nnisuite.benchmarks.tabular run's folder), variant
by variant: final best and AUC of best-so-far over seeds (mean +- SE, two-sided Mann-Whitney U of
real against simulated), the mean best-so-far curves and their largest gap, the mean wall
seconds; and for the seeds given, whether the simulated run asked for the same parameters in the
same order as the real one (a tuner deterministic given its seed, fed the same values, must).

Files: agreement.md, agreement.csv, sequences.csv (per variant and seed: trials alike from the
first, and in all), best_so_far_real_vs_simulated.png.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

MAXIMIZE = "maximize"


class AgreementError(ValueError):
    pass


def real_runs(folder: Path) -> dict:
    """(variant, seed) -> {"finals": [...], "wall_s", "params": [dict per trial in order]}"""
    import pandas as pd

    found = {}
    for run in sorted((folder / "runs").glob("*/run.json")):
        record = json.loads(run.read_text())
        trials = pd.read_csv(run.parent / "trials.csv").sort_values("sequence")
        names = [c for c in ("features1", "features2", "lr", "batch_size") if c in trials]
        found[(record["variant"], int(record["seed"]))] = {
            "finals": [float(v) for v in record["finals"]],
            "wall_s": record.get("wall_s"),
            "params": [
                {k: _plain(v) for k, v in row.items()} for row in trials[names].to_dict("records")
            ],
        }
    if not found:
        raise AgreementError(f"{folder}: no runs/*/run.json (an nnisuite.study.repeat folder?)")
    return found


def simulated_runs(folder: Path) -> dict:
    import pandas as pd

    path = folder / "trials.csv.gz"
    if not path.is_file():
        raise AgreementError(
            f"{folder}: no trials.csv.gz (a nnisuite.benchmarks.tabular run folder?)"
        )
    trials = pd.read_csv(io.BytesIO(gzip.decompress(path.read_bytes())))
    runs = pd.read_csv(folder / "runs.csv").set_index(["variant", "seed"])
    found = {}
    for (variant, seed), group in trials.groupby(["variant", "seed"]):
        group = group.sort_values("sequence")
        names = [c for c in group.columns if c.startswith("param.")]
        found[(variant, int(seed))] = {
            "finals": [float(v) for v in group["default"].dropna()],
            "wall_s": float(runs.loc[(variant, seed), "wall_s"]),
            "params": [
                {k.removeprefix("param."): _plain(v) for k, v in row.items()}
                for row in group[names].to_dict("records")
            ],
        }
    return found


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    return round(value, 10) if isinstance(value, float) else value


def best_so_far(finals: list[float], budget: int) -> list[float]:
    out, best = [], float("-inf")
    for v in finals[:budget]:
        best = max(best, v)
        out.append(best)
    return out + [out[-1]] * (budget - len(out)) if out else [float("nan")] * budget


def agree(real_dir: Path, sim_dir: Path, out: Path, same_seeds: list[int]) -> str:
    import numpy as np
    import pandas as pd
    from scipy.stats import mannwhitneyu

    from nnisuite.analysis import statistics as S
    from nnisuite.analysis.plots import plt, save

    real, sim = real_runs(real_dir), simulated_runs(sim_dir)
    variants = sorted({v for v, _ in real} & {v for v, _ in sim})
    if not variants:
        raise AgreementError("no variant is in both folders")
    budget = max(len(r["finals"]) for r in real.values())
    rows, sequences = [], []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in variants:
        side = {
            "real": [r for (v, _), r in sorted(real.items()) if v == variant],
            "simulated": [r for (v, _), r in sorted(sim.items()) if v == variant],
        }
        curves = {
            k: np.array([best_so_far(r["finals"], budget) for r in runs])
            for k, runs in side.items()
        }
        best = {k: [max(r["finals"]) for r in runs if r["finals"]] for k, runs in side.items()}
        auc = {k: list(np.nanmean(c, axis=1)) for k, c in curves.items()}
        row = {"variant": variant}
        for k in side:
            row[f"runs_{k}"] = len(side[k])
            row[f"final_best_{k}"], row[f"final_best_{k}_se"] = S.mean_se(best[k])
            row[f"auc_{k}"], row[f"auc_{k}_se"] = S.mean_se(auc[k])
            row[f"wall_s_{k}"] = float(np.mean([r["wall_s"] for r in side[k]]))
        row["p_final_best"] = float(mannwhitneyu(best["real"], best["simulated"]).pvalue)
        row["p_auc"] = float(mannwhitneyu(auc["real"], auc["simulated"]).pvalue)
        means = {k: np.nanmean(c, axis=0) for k, c in curves.items()}
        row["largest_curve_gap"] = float(np.nanmax(np.abs(means["real"] - means["simulated"])))
        rows.append(row)
        x = np.arange(1, budget + 1)
        for k, style in (("real", "-"), ("simulated", "--")):
            ax.plot(x, means[k], style, label=f"{variant} {k} ({len(side[k])} runs)")
        for seed in same_seeds:
            a, b = real.get((variant, seed)), sim.get((variant, seed))
            if a is None or b is None:
                continue
            pairs = list(zip(a["params"], b["params"]))
            alike = [_same(p, q) for p, q in pairs]
            leading = next((i for i, ok in enumerate(alike) if not ok), len(alike))
            sequences.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "trials": len(pairs),
                    "alike_from_the_first": leading,
                    "alike_in_all": sum(alike),
                }
            )
    ax.set(xlabel="trial", ylabel="best validation accuracy so far (mean over seeds)")
    ax.set_title("Real NNI runs (solid) against the simulator (dashed)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    out.mkdir(parents=True, exist_ok=True)
    save(fig, out / "best_so_far_real_vs_simulated.png")
    pd.DataFrame(rows).to_csv(out / "agreement.csv", index=False)
    pd.DataFrame(sequences).to_csv(out / "sequences.csv", index=False)
    text = markdown(rows, sequences, real_dir, sim_dir, budget)
    (out / "agreement.md").write_text(text)
    return text


def _same(p: dict, q: dict) -> bool:
    return all(
        (abs(p[k] - q[k]) <= 1e-9 * max(1.0, abs(p[k])))
        if isinstance(p[k], float) or isinstance(q.get(k), float)
        else p[k] == q.get(k)
        for k in p
    )


def markdown(rows, sequences, real_dir, sim_dir, budget) -> str:
    lines = [
        f"# The simulator against real NNI runs ({budget} trials)",
        "",
        f"Real: `{real_dir}`; simulated: `{sim_dir}`. Mean +- SE over seeds; p: two-sided "
        "Mann-Whitney U of the real runs against the simulated ones (no correction).",
        "",
        "| variant | runs real / sim | final best real | final best sim | p | AUC real | AUC sim "
        "| p | largest gap of mean best-so-far | wall s real / sim |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['runs_real']} / {r['runs_simulated']} "
            f"| {r['final_best_real']:.4f} +- {r['final_best_real_se']:.4f} "
            f"| {r['final_best_simulated']:.4f} +- {r['final_best_simulated_se']:.4f} "
            f"| {r['p_final_best']:.3f} | {r['auc_real']:.4f} +- {r['auc_real_se']:.4f} "
            f"| {r['auc_simulated']:.4f} +- {r['auc_simulated_se']:.4f} | {r['p_auc']:.3f} "
            f"| {r['largest_curve_gap']:.4f} | {r['wall_s_real']:.1f} / "
            f"{r['wall_s_simulated']:.1f} |"
        )
    if sequences:
        lines += [
            "",
            "Same seed, same parameters? Trials whose parameters the simulated run asked for "
            "exactly as the real run did:",
            "",
            "| variant | seed | trials | alike from the first | alike in all |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {s['variant']} | {s['seed']} | {s['trials']} | {s['alike_from_the_first']} "
            f"| {s['alike_in_all']} |"
            for s in sequences
        ]
    return "\n".join(lines) + "\n"
