"""Records -> tables: one row per trial, intermediate results in long format, the summary.

trials = trials_table(exp)          # pandas DataFrame, the columns of trials.csv
steps = intermediate_table(exp)     # trial_id, step, one column per intermediate key
text = summary_markdown(exp, trials, importance)
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from analysis.store import Experiment, flatten_parameters

LEADING = ["trial_id", "sequence", "status"]
TRAILING = [
    "intermediate_count",
    "best_intermediate",
    "start_time",
    "end_time",
    "duration_s",
    "restarts",
]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def parameter_names(exp: Experiment) -> list[str]:
    """Hyperparameter columns in the search space's order, nested choices flattened (a.b)."""
    order = list((exp.config.get("searchSpace") or {}).keys())
    names: list[str] = []
    for trial in exp.trials:
        names += [n for n in flatten_parameters(trial.parameters) if n not in names]

    def rank(name: str) -> int:
        top = name.split(".")[0]
        return order.index(top) if top in order else len(order)

    names.sort(key=rank)
    # keys no trial carries yet (nothing started) still get their column
    names += [k for k in order if k not in names and not any(n.startswith(k + ".") for n in names)]
    return names


def trials_table(exp: Experiment) -> pd.DataFrame:
    params = parameter_names(exp)
    final_keys: list[str] = []
    for trial in exp.trials:
        final_keys += [
            k for k in trial.final if k != "default" and k not in final_keys and k not in params
        ]
    rows = []
    for t in exp.trials:
        flat = flatten_parameters(t.parameters)
        defaults = [
            m["default"] for m in t.intermediates if isinstance(m.get("default"), (int, float))
        ]
        row = {"trial_id": t.trial_id, "sequence": t.sequence, "status": t.status}
        row |= {p: flat.get(p) for p in params}
        row["default"] = t.final.get("default")
        row |= {k: t.final.get(k) for k in final_keys}
        row |= {
            "intermediate_count": len(t.intermediates),
            "best_intermediate": max(defaults) if defaults else None,
            "start_time": iso(t.start_time),
            "end_time": iso(t.end_time),
            "duration_s": round(t.duration_s, 3) if t.duration_s is not None else None,
            "restarts": t.restarts,
        }
        rows.append(row)
    columns = LEADING + params + ["default"] + final_keys + TRAILING
    return pd.DataFrame(rows, columns=columns)


def intermediate_table(exp: Experiment) -> pd.DataFrame:
    rows = [{"trial_id": t.trial_id, **m} for t in exp.trials for m in t.intermediates]
    if not rows:
        return pd.DataFrame(columns=["trial_id", "step", "default"])
    df = pd.DataFrame(rows)
    keys = [c for c in df.columns if c not in ("trial_id", "step")]
    return df[["trial_id", "step", *keys]]


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in trials["status"].value_counts().sort_index().items()}


def ranked(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials sorted by `default`, best first; trials without a final result last."""
    return trials.sort_values("default", ascending=False, na_position="last", kind="stable")


def algorithm(config: dict) -> str:
    for key in ("tuner", "advisor"):
        if config.get(key):
            return config[key].get("name") or config[key].get("className", "?")
    if config.get("experimentType") == "nas":
        strategy = config.get("strategy") or {}
        return strategy.get("name", "NAS strategy") if isinstance(strategy, dict) else "NAS"
    return "?"


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15 and abs(value) >= 1:
            return str(int(value))
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.4g}"
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(no rows)_"
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, sep, *body])


def metric_label(trials: pd.DataFrame, config: dict | None = None) -> str:
    """What `default` means: nnisuite's trials (trials.*, NAS) report validation accuracy
    there, with `test_accuracy` beside it; another trial's `default` is whatever it reported."""
    config = config or {}
    ours = "trials." in str(config.get("trialCommand", "")) or config.get("experimentType") == "nas"
    return "validation accuracy" if ours or "test_accuracy" in trials.columns else "default metric"


def report_columns(trials: pd.DataFrame, params: list[str]) -> list[str]:
    keep = ["trial_id", "status", *params, "default", "test_accuracy", "epochs", "duration_s"]
    if "restarts" in trials.columns and trials["restarts"].fillna(0).astype(int).any():
        keep.append("restarts")
    return [c for c in keep if c in trials.columns]


def timing(exp: Experiment) -> str:
    """Start, end and duration from NNI's profile; after a crash (no end recorded) the last
    trial event stands in for the end."""
    start, end = exp.profile.get("startTime"), exp.profile.get("endTime")
    execution = exp.profile.get("execDuration")
    started = iso(start / 1000) if start else "?"
    if end:
        wall = f"{(end - start) / 1000:.0f} s" if start else "?"
        return (
            f"started {started}; ended {iso(end / 1000)}; wall time {wall} (NNI counted "
            f"{execution} s of running)"
        )
    times = [x for t in exp.trials for x in (t.start_time, t.end_time) if x]
    if not times:
        return f"started {started}; no end recorded"
    last = max(times)
    span = f"{last - start / 1000:.0f} s" if start else "?"
    return f"started {started}; no end recorded; last trial event {iso(last)} ({span} in)"


def status_note(exp: Experiment, counts: dict[str, int], trials: pd.DataFrame) -> list[str]:
    notes = []
    if counts.get("INTERRUPTED"):
        nas = exp.config.get("experimentType") == "nas"
        again = (
            "NNI 3.0 cannot resume a NAS study: run it again" if nas else "a resume runs them again"
        )
        notes.append(
            f"- {counts['INTERRUPTED']} trial(s) INTERRUPTED: running when the experiment "
            f"stopped or crashed (NNI records no end for them); {again}"
        )
    restarted = int(trials["restarts"].fillna(0).astype(int).gt(0).sum()) if len(trials) else 0
    if restarted:
        notes.append(f"- {restarted} trial(s) run again after a resume (column `restarts`)")
    if exp.renumbered:
        notes.append(
            "- `sequence` renumbered in submission order: NNI 3.0 repeated sequence numbers "
            "after a resume"
        )
    return notes


def summary_markdown(exp: Experiment, trials: pd.DataFrame, importance_md: str = "") -> str:
    cfg = exp.config
    params = parameter_names(exp)
    counts = status_counts(trials) if not trials.empty else {}
    label = metric_label(trials, cfg)
    lines = [
        f"# Experiment {exp.id}: {cfg.get('experimentName') or '(unnamed)'}",
        "",
        f"- source: `{exp.source}`",
        f"- tuner / strategy: {algorithm(cfg)}",
        f"- assessor: {(cfg.get('assessor') or {}).get('name', 'none')}",
        f"- trial command: `{cfg.get('trialCommand', '')}`",
        f"- trials: {len(trials)} ("
        + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none")
        + ")",
        *status_note(exp, counts, trials),
        f"- {timing(exp)}",
        f"- `default` is the {label}",
        "",
        "## Search space",
        "",
        "| parameter | _type | _value |",
        "|---|---|---|",
        *[
            f"| {name} | {spec.get('_type', '')} | {json.dumps(spec.get('_value'))} |"
            for name, spec in (cfg.get("searchSpace") or {}).items()
            if isinstance(spec, dict)
        ],
        "",
        "## Trials, best first",
        "",
    ]
    finished = trials[trials["default"].notna()] if not trials.empty else trials
    if finished.empty:
        lines.append("No trial has a final result yet: the tables are empty.")
    else:
        table = ranked(trials)[report_columns(trials, params)]
        lines.append(markdown_table(table.rename(columns={"default": f"{label} (default)"})))
        best = ranked(finished).iloc[0]
        best_params = {p: best[p] for p in params if p in best and pd.notna(best[p])}
        lines += [
            "",
            f"## Best trial: {best['trial_id']} ({label} {fmt(best['default'])}"
            + (
                f", test_accuracy {fmt(best['test_accuracy'])}"
                if "test_accuracy" in best and pd.notna(best["test_accuracy"])
                else ""
            )
            + ")",
            "",
            "```json",
            json.dumps(
                {k: (v.item() if hasattr(v, "item") else v) for k, v in best_params.items()},
                indent=4,
            ),
            "```",
        ]
    if importance_md:
        lines += ["", importance_md]
    return "\n".join(lines) + "\n"
