"""Records -> tables: one row per trial, intermediate results in long format, the summary.

trials = trials_table(exp)          # pandas DataFrame, the columns of trials.csv
steps = intermediate_table(exp)     # trial_id, step, one column per intermediate key
text = summary_markdown(exp, trials, importance)

The rules every table follows:
- "best" follows the experiment's optimize mode (nnisuite.analysis.direction);
- a trial's final result counts (tables, best, comparisons, statistics, the Optuna study as
  COMPLETE) when it reported one, whatever its status: NNI's tuner received it too;
- a key the trial reported that has the name of a column nnisuite writes (`status`,
  `duration_s`, a parameter, `trial_id`, `step`, ...) is kept as `metric.<key>` (a parameter
  so named as `param.<name>`; the prefix repeats while the name is still taken, so `status`
  beside `metric.status` is `metric.metric.status`): a user's values never overwrite or drop
  NNI's or each other;
- every value as NNI stored it: integers stay integers beside blanks and floats (`3`, `1000`,
  `0.5`, not `3.0`), floats keep their digits;
- a parameter column that mixes strings with other values (`"1"` and `1`) is written as JSON
  text (`"1"` and `1`, `true`), so that each value can be told apart;
- parameter columns in the search space's order (nested ones as `outer.inner`).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd

from nnisuite.analysis.direction import best_first, direction, scored, usable
from nnisuite.analysis.store import Experiment, flatten_parameters

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
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def space_order(space: dict, prefix: str = "") -> list[str]:
    """Flattened parameter names in the search space's order (a nested choice: its `_name`,
    then its branches' parameters in the order they are written)."""
    names: list[str] = []
    for key, spec in (space or {}).items():
        name = f"{prefix}{key}"
        values = spec.get("_value") if isinstance(spec, dict) else None
        if spec.get("_type") == "choice" and any(isinstance(v, dict) for v in values or []):
            names.append(f"{name}._name")
            for branch in values:
                if isinstance(branch, dict):
                    inner = {
                        k: v for k, v in branch.items() if k != "_name" and isinstance(v, dict)
                    }
                    names += [n for n in space_order(inner, f"{name}.") if n not in names]
        else:
            names.append(name)
    return names


def parameter_columns(exp: Experiment) -> dict[str, str]:
    """column -> flattened parameter name, in the search space's order (names it does not
    list after, as the trials first carry them). A parameter named like a column nnisuite
    writes (`status`, `default`, ...) gets the column `param.<name>` (`param.param.<name>`
    where the space also has a `param.<name>`: no two parameters share a column)."""
    names = space_order(exp.config.get("searchSpace") or {})
    carried: dict[str, None] = {}  # every name a trial carries, in first-seen order
    for trial in exp.trials:
        carried.update(dict.fromkeys(flatten_parameters(trial.parameters)))
    names += [n for n in carried if n not in names]
    top = {n.split(".")[0] for n in carried}
    # nested names no trial took stay out; top-level ones stay (nothing started yet)
    names = [n for n in names if n in carried or ("." not in n and n not in top) or not carried]
    reserved = set(LEADING) | set(TRAILING) | {"default", "host"}
    column_of = own_columns(names, reserved, PARAM_PREFIX)
    return {column_of[n]: n for n in names}


def parameter_names(exp: Experiment) -> list[str]:
    """The hyperparameter columns of trials.csv (parameter_columns)."""
    return list(parameter_columns(exp))


PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."


def own_columns(names, taken, prefix: str) -> dict[str, str]:
    """name -> its column: its own name where free, else `prefix` added until it is (a key
    `status` beside a key `metric.status` gets `metric.metric.status`): names keep their own
    columns first, so no two names share one and no value is dropped."""
    taken = set(taken)
    columns = {n: n for n in names if n not in taken}
    taken |= set(columns)
    for name in names:
        if name not in columns:
            column = f"{prefix}{name}"
            while column in taken:
                column = f"{prefix}{column}"
            columns[name] = column
            taken.add(column)
    return {n: columns[n] for n in names}


def mixed(values) -> bool:
    """Strings beside other values: a CSV could not tell "1" from 1."""
    kinds = {isinstance(v, str) for v in values if v is not None}
    return len(kinds) > 1


def as_json(value):
    return None if value is None else json.dumps(value, ensure_ascii=False)


def trials_table(exp: Experiment) -> pd.DataFrame:
    columns = parameter_columns(exp)
    params = list(columns)
    mode = direction(exp.config)
    # a remote study's trials say which machine ran them (NNI's logPath): column `host`
    leading = LEADING + (["host"] if any(t.host for t in exp.trials) else [])
    taken = set(leading) | set(params) | set(TRAILING) | {"default"}
    final_keys: list[str] = []
    for trial in exp.trials:
        final_keys += [k for k in trial.final if k != "default" and k not in final_keys]
    columns_of = own_columns(final_keys, taken, METRIC_PREFIX)
    rows = []
    for t in exp.trials:
        flat = flatten_parameters(t.parameters)
        defaults = [m["default"] for m in t.intermediates if usable(m.get("default"))]
        row = {"trial_id": t.trial_id, "sequence": t.sequence, "status": t.status, "host": t.host}
        row |= {column: flat.get(name) for column, name in columns.items()}
        row["default"] = t.final.get("default")
        row |= {columns_of[k]: t.final.get(k) for k in final_keys}
        row |= {
            "intermediate_count": len(t.intermediates),
            "best_intermediate": (
                (min(defaults) if mode == "minimize" else max(defaults)) if defaults else None
            ),
            "start_time": iso(t.start_time),
            "end_time": iso(t.end_time),
            "duration_s": round(t.duration_s, 3) if t.duration_s is not None else None,
            "restarts": t.restarts,
        }
        rows.append(row)
    for p in params:
        if mixed(row[p] for row in rows):
            for row in rows:
                row[p] = as_json(row[p])
    columns = leading + params + ["default"] + [columns_of[k] for k in final_keys] + TRAILING
    return typed_frame(rows, columns)


def typed_column(values: list) -> pd.Series:
    """One column with each value as NNI stored it: integers stay integers beside blanks
    (pandas' nullable Int64) and beside floats (an object column: 1000 and 0.5, not 1000.0);
    a reported NaN is the text NaN (a blank is a value never reported); a column of floats
    (inf included) is float; anything else is kept as it is."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, float) and math.isnan(v) for v in present):
        # a NaN the trial reported is shown as NNI stored it, apart from a blank (nothing)
        nan = [("NaN" if isinstance(v, float) and math.isnan(v) else v) for v in values]
        return pd.Series(nan, dtype=object)
    ints = [isinstance(v, int) and not isinstance(v, bool) for v in present]
    if present and all(ints) and all(abs(v) < 2**63 for v in present):
        return pd.Series(values, dtype="Int64" if len(present) < len(values) else "int64")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if numbers and not any(ints):
        return pd.Series(values, dtype=float)
    return pd.Series(values, dtype=object)


def typed_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: typed_column([row.get(c) for row in rows]) for c in columns})


def intermediate_table(exp: Experiment) -> pd.DataFrame:
    """trial_id, step, then each reported key (metric.trial_id / metric.step where the trial
    reported keys of those names)."""
    keys: list[str] = []
    for t in exp.trials:
        for m in t.intermediates:
            keys += [k for k in m if k != "step" and k not in keys]
    if not keys and not any(t.intermediates for t in exp.trials):
        return pd.DataFrame(columns=["trial_id", "step", "default"])
    columns_of = own_columns(keys, ("trial_id", "step"), METRIC_PREFIX)
    rows = [
        {"trial_id": t.trial_id, "step": m["step"]}
        | {columns_of[k]: v for k, v in m.items() if k != "step"}
        for t in exp.trials
        for m in t.intermediates
    ]
    return typed_frame(rows, ["trial_id", "step", *columns_of.values()])


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in trials["status"].value_counts().sort_index().items()}


def ranked(trials: pd.DataFrame, mode: str = "maximize") -> pd.DataFrame:
    """Trials sorted by `default`, best first (nnisuite.analysis.direction); no final result
    last."""
    return best_first(trials, mode)


def algorithm(config: dict) -> str:
    for key in ("tuner", "advisor"):
        if config.get(key):
            return config[key].get("name") or config[key].get("className", "?")
    if config.get("experimentType") == "nas":
        strategy = config.get("strategy") or {}
        return strategy.get("name", "NAS strategy") if isinstance(strategy, dict) else "NAS"
    return "?"


def fmt(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15 and abs(value) >= 1:
            return str(int(value))
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.4g}"
        if abs(value) < 1:
            return f"{value:.4f}"
        return f"{value:.4f}".rstrip("0").rstrip(".")  # 1.213 and 1.22 stay apart
    return str(value)


def cell(text: str) -> str:
    """A markdown table cell: a | or a line break inside would end it."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(no rows)_"
    header = "| " + " | ".join(cell(str(c)) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(cell(fmt(v)) for v in row) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join([header, sep, *body])


def reports_accuracy(config: dict | None, keys) -> bool:
    """Whether `default` is a validation accuracy: nnisuite's trials (trials.*, NAS) report it
    there, with `test_accuracy` (one of `keys`, the reported keys) beside it."""
    config = config or {}
    ours = "trials." in str(config.get("trialCommand", "")) or config.get("experimentType") == "nas"
    return ours or "test_accuracy" in keys


def metric_label(trials: pd.DataFrame, config: dict | None = None) -> str:
    """What `default` means (reports_accuracy); another trial's `default` is whatever it
    reported."""
    return "validation accuracy" if reports_accuracy(config, trials.columns) else "default metric"


def report_columns(trials: pd.DataFrame, params: list[str]) -> list[str]:
    keep = ["trial_id", "status", *params, "default", "test_accuracy", "epochs", "duration_s"]
    keep = list(dict.fromkeys(keep))
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


def repeated_configurations(exp: Experiment) -> list[tuple[str, str]]:
    """(trial, the earlier trial whose parameters it repeats) in trial order; a trial NNI ran
    again after a resume (same id) is not a repeat. NAS trials are left out (their records
    carry the sampled architecture, which may repeat on purpose)."""
    if exp.config.get("experimentType") == "nas":
        return []
    first: dict[str, str] = {}
    found = []
    for trial in exp.trials:
        if not trial.parameters:
            continue
        key = json.dumps(trial.parameters, sort_keys=True, default=str)
        if key in first:
            found.append((trial.trial_id, first[key]))
        else:
            first[key] = trial.trial_id
    return found


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
    if "host" in trials.columns and len(trials):
        ran = trials.groupby("host", dropna=False).size()
        notes.append(
            "- trials per host (column `host`, from NNI's record): "
            + ", ".join(f"{host} {n}" for host, n in ran.items())
        )
    repeated = repeated_configurations(exp)
    if repeated:
        shown = ", ".join(f"{later} ran {earlier}'s" for later, earlier in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        notes.append(
            f"- {len(repeated)} trial(s) ran a configuration an earlier trial had run ({shown}"
            f"{more}): NNI's own replay after `nnictl resume` does this, or a tuner that drew "
            "it again (GridSearch never does)"
        )
    if exp.renumbered:
        notes.append(
            "- `sequence` renumbered in submission order: NNI 3.0 repeated sequence numbers "
            "after a resume"
        )
    return notes


def summary_markdown(exp: Experiment, trials: pd.DataFrame, importance_md: str = "") -> str:
    cfg = exp.config
    columns = parameter_columns(exp)
    params = list(columns)
    mode = direction(cfg)
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
        f"- `default` is the {label}; the tuner's optimize mode: {mode} (best first below)",
        "",
        "## Search space",
        "",
        "| parameter | _type | _value |",
        "|---|---|---|",
        *[
            f"| {name} | {spec.get('_type', '')} | "
            f"{json.dumps(spec.get('_value'), ensure_ascii=False)} |"
            for name, spec in (cfg.get("searchSpace") or {}).items()
            if isinstance(spec, dict)
        ],
        "",
        "## Trials, best first",
        "",
    ]
    finished = trials[scored(trials)] if not trials.empty else trials
    if finished.empty:
        lines.append("No trial has a final result yet: the tables are empty.")
    else:
        table = ranked(trials, mode)[report_columns(trials, params)]
        lines.append(markdown_table(table.rename(columns={"default": f"{label} (default)"})))
        best = ranked(finished, mode).iloc[0]
        trial = next(t for t in exp.trials if t.trial_id == best["trial_id"])
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
            json.dumps(trial.parameters, indent=4, ensure_ascii=False, default=str),
            "```",
        ]
    if importance_md:
        lines += ["", importance_md]
    return "\n".join(lines) + "\n"
