"""An NNI experiment as an Optuna study: Optuna's importance evaluators, plots and dashboard for
any NNI experiment, running or stopped, ours or not.

    python -m nnisuite.analysis.optuna EXPERIMENT --storage sqlite:///runs/optuna/study.db \
        [--study-name N]
    python -m nnisuite.analysis.optuna EXPERIMENT --storage sqlite:///DIR/study.db --dashboard \
        [--port P]

EXPERIMENT as nnisuite.analysis.export takes it: an id (with --experiment-dir), an nni.sqlite, or a
manager's URL. Each NNI trial becomes one Optuna trial: its parameters with distributions from
the experiment's search space (choice -> categorical, held as JSON text when two choices are
equal to Python across types, like true and 1; uniform / loguniform -> float, randint and
integer quniform -> int, quniform -> float, stepped where NNI's values are the step's grid;
nested choices and NAS choices -> categorical over what the trials took; any other _type is an
error naming it), the final `default` as the value (for an experiment that optimized several
keys, nnisuite.study.optuna_tuner's `objectives`: every one, so the dashboard draws the Pareto
front; each objective named, e.g. "validation accuracy", "parameters"), the intermediate
`default`s as
intermediate values, the other final keys as user attributes, state COMPLETE (a final result,
whatever NNI's status), PRUNED (EARLY_STOPPED), FAIL (failed, timed out, interrupted, no final
result) or RUNNING, the
trial's start and end times, and the direction of the tuner's optimize_mode (its constructor's
default when the file sets none; maximize for NAS).

Running it again on the same storage replaces the study made from that experiment (it says
so); a study of the same name made otherwise is refused. Bad input (an unknown id, a sqlite file
that is not NNI's, a storage URL Optuna cannot open, a search-space type Optuna cannot express)
is one line and exit 2, with nothing written. --dashboard serves optuna-dashboard on 127.0.0.1
as a child process until Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import subprocess
import sys
import time
import warnings

from nnisuite.analysis.direction import Objectives
from nnisuite.analysis.direction import direction as optimize_mode
from nnisuite.analysis.direction import objectives as experiment_objectives
from nnisuite.analysis.store import (
    Experiment,
    ExportError,
    add_source_arguments,
    flatten_parameters,
    load_experiment,
)
from nnisuite.analysis.tables import fmt
from nnisuite.flags import Parser
from nnisuite.models.costs import COSTS
from nnisuite.models.costs import label as cost_label
from nnisuite.outputs import save_figure

# The bridge calls Optuna's experimental APIs on purpose (metric names, PED-ANOVA, the matplotlib
# plots): their ExperimentalWarning says nothing to a user of `nnisuite export` / `optuna`.
warnings.filterwarnings("ignore", message=r".* is experimental \(supported from v")

NNI_EXPERIMENT = "nni_experiment"  # study user attribute: the experiment it was made from
STATES = {"SUCCEEDED": "COMPLETE", "EARLY_STOPPED": "PRUNED"}
ACTIVE = {"WAITING", "RUNNING", "UNKNOWN"}
MIN_TRIALS = 10  # fewer: a warning beside the importances
MAX_TRIALS = 1000  # more: PED-ANOVA and the plots on a seeded sample
# fANOVA's cost grows with trials x trees: on the synthetic 5,000-trial benchmark (2 busy
# cores) Optuna's default 64 trees on 1,000 trials took 12.8 s, 32 trees on 500 took 2.2 s and
# ranked the parameters the same, each importance within 0.02 of the default's
FANOVA_TRIALS = 500
FANOVA_TREES = 32
SEED = 0


class BridgeError(ValueError):
    """An experiment that cannot become an Optuna study; the message says why."""


def direction(exp: Experiment) -> str:
    """maximize / minimize (nnisuite.analysis.direction)."""
    return optimize_mode(exp.config)


def is_nested_choice(spec) -> bool:
    return (
        isinstance(spec, dict)
        and spec.get("_type") == "choice"
        and any(isinstance(v, dict) for v in spec.get("_value") or [])
    )


def distributions(exp: Experiment, trials) -> tuple[dict, set[str]]:
    """(name -> Optuna distribution, names whose values are held as JSON text), from the
    search space; NAS choices and the branches of nested choices as categorical over what the
    trials took."""
    from optuna.distributions import CategoricalDistribution

    from nnisuite.config.search_space import (
        InexpressibleError,
        ambiguous,
        choice_label,
        optuna_distribution,
    )

    space = exp.config.get("searchSpace") or {}
    out, labelled = {}, set()
    for name, spec in space.items():
        if isinstance(spec, dict) and "_type" in spec and not is_nested_choice(spec):
            try:
                out[name] = optuna_distribution(name, spec)
            except InexpressibleError as exc:
                raise BridgeError(str(exc)) from None
            if spec["_type"] == "choice" and ambiguous(spec["_value"]):
                labelled.add(name)
    seen: dict[str, list] = {}
    for t in trials:
        for name, value in flatten_parameters(t.parameters).items():
            if name not in out:
                found = seen.setdefault(name, [])
                if not any(type(v) is type(value) and v == value for v in found):
                    found.append(value)
    for name, values in seen.items():  # NAS samples, nested choices: what the trials took
        scalar = [v for v in values if v is None or isinstance(v, (bool, int, float, str))]
        if len(scalar) == len(values):
            if ambiguous(values):
                labelled.add(name)
                values = [choice_label(v) for v in values]
            out[name] = CategoricalDistribution(sorted(values, key=lambda v: (str(type(v)), v)))
    return out, labelled


def when(ts: float | None):
    return dt.datetime.fromtimestamp(ts) if ts else None


def frozen_trials(
    exp: Experiment, dists: dict, labelled: set[str], objectives: Objectives
) -> tuple[list, list[str]]:
    """(FrozenTrials, notes). A trial that reported a final result (every objective) is
    COMPLETE whatever its status (nnisuite.analysis.tables' rule: NNI's tuner got that result
    too)."""
    from optuna.trial import FrozenTrial, TrialState

    from nnisuite.config.search_space import choice_label

    out, notes = [], []
    for number, t in enumerate(exp.trials):
        flat = flatten_parameters(t.parameters)
        params = {
            k: (choice_label(v) if k in labelled else v) for k, v in flat.items() if k in dists
        }
        values = objectives.values(t.final)
        has_value = values is not None
        if t.status in ACTIVE:
            state = TrialState.RUNNING
        elif has_value:
            state = TrialState.COMPLETE
        elif t.status == "SUCCEEDED":
            state = TrialState.FAIL  # ended without a final result
        else:
            state = TrialState[STATES.get(t.status, "FAIL")]
        for name, value in list(params.items()):
            if not dists[name]._contains(dists[name].to_internal_repr(value)):
                notes.append(f"trial {t.trial_id}: {name}={value!r} is outside its distribution")
                params.pop(name)
        intermediate = {}
        for m in t.intermediates:
            value = m.get("default")
            if isinstance(value, (int, float)) and math.isfinite(value):
                intermediate[int(m.get("step", len(intermediate)))] = float(value)
        attrs = {
            k: v
            for k, v in t.final.items()
            if k != "default" and isinstance(v, (bool, int, float, str)) and v == v
        }
        attrs |= {"nni_trial_id": t.trial_id, "nni_status": t.status, "nni_sequence": t.sequence}
        running = state == TrialState.RUNNING
        start = when(t.start_time) or (dt.datetime.now() if running else None)
        end = None if running else when(t.end_time)
        if not running and end is None:
            # the manager stopped before NNI stored an end (killed, interrupted): Optuna
            # wants one for every finished trial, so the start stands in, a lower bound
            start = start or when((exp.profile.get("startTime") or 0) / 1000) or dt.datetime.now()
            end = start
            notes.append(f"trial {t.trial_id} ({t.status}): no end time stored; its start used")
        out.append(
            FrozenTrial(
                number=number,
                state=state,
                value=None,
                values=values if state == TrialState.COMPLETE else None,
                datetime_start=start,
                datetime_complete=end,
                params=params,
                distributions={k: dists[k] for k in params},
                user_attrs=attrs,
                system_attrs={},
                intermediate_values=intermediate,
                trial_id=number,
            )
        )
    return out, notes


def open_storage(url: str):
    """Optuna's storage for `url`, or BridgeError (one line) when it cannot be opened."""
    import optuna

    try:
        return optuna.storages.get_storage(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy / driver errors of any kind
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BridgeError(f"Optuna cannot open storage {url!r}: {first}") from None


def metric_names(exp: Experiment, objectives: Objectives) -> list[str]:
    """What each objective is, for Optuna's dashboard ("Objective 0" without them)."""
    from nnisuite.analysis.tables import reports_accuracy

    accuracy = reports_accuracy(exp.config, {k for t in exp.trials for k in t.final})
    names = []
    for key in objectives.keys:
        if key == "default":
            names.append("validation accuracy" if accuracy else "default")
        else:
            names.append(cost_label(key) if key in COSTS else key)
    return names


def to_study(exp: Experiment, storage=None, study_name: str | None = None, objectives=None):
    """The Optuna study of `exp` in `storage` (a URL, a storage, or None: in memory). Returns
    (study, notes). Replaces a study of the same name made from the same experiment.
    `objectives` (nnisuite.analysis.direction.Objectives): what the study's values are; None:
    `default` alone (what the importance evaluators and plots take); the command line passes what
    the experiment optimized (nnisuite.analysis.direction.objectives: several for a multi-objective
    one)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = objectives or Objectives(["default"], [direction(exp)])
    dists, labelled = distributions(exp, exp.trials)
    trials, notes = frozen_trials(
        exp, dists, labelled, objectives
    )  # everything checked before anything is written
    if isinstance(storage, str):
        storage = open_storage(storage)
    storage = storage or optuna.storages.InMemoryStorage()
    name = study_name or f"nni-{exp.id}"
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        made_from = existing.user_attrs.get(NNI_EXPERIMENT)
        if made_from != exp.id:
            raise BridgeError(
                f"storage already has a study {name!r} not made from NNI experiment {exp.id} "
                "(pick another --study-name)"
            )
        notes.append(f"replaced study {name!r} ({len(existing.trials)} trials) by a fresh copy")
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(study_name=name, storage=storage, directions=objectives.directions)
    try:
        study.set_metric_names(metric_names(exp, objectives))
        study.set_user_attr(NNI_EXPERIMENT, exp.id)
        study.set_user_attr("nni_source", exp.source)
        study.set_user_attr("nni_search_space", exp.config.get("searchSpace") or {})
        study.add_trials(trials)
    except BaseException:
        optuna.delete_study(study_name=name, storage=storage)  # nothing half-written
        raise
    return study, notes


# ---------------------------------------------------------------- importance and plots

IMPORTANCE_METHODS = {
    "fanova": f"fANOVA (optuna.importance.FanovaImportanceEvaluator, {FANOVA_TREES} trees, seed 0)",
    "ped_anova": "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator, top 10% against all)",
}


def sampled(study, max_trials: int = MAX_TRIALS, seed: int = SEED):
    """The study itself, or an in-memory copy with a seeded sample of its complete trials."""
    import numpy as np
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) <= max_trials:
        return study, len(complete), len(complete)
    pick = np.random.default_rng(seed).choice(len(complete), max_trials, replace=False)
    copy = optuna.create_study(direction=study.direction)
    copy.add_trials([complete[i] for i in sorted(pick)])
    return copy, max_trials, len(complete)


def importances(study) -> dict:
    """{method: {parameter: importance}} by fANOVA and PED-ANOVA, on at most MAX_TRIALS."""
    import warnings

    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    data, used, total = sampled(study)
    fanova_data, fanova_used, _ = sampled(study, FANOVA_TRIALS)
    evaluators = {
        "fanova": (fanova_data, FanovaImportanceEvaluator(seed=SEED, n_trees=FANOVA_TREES)),
        "ped_anova": (data, PedAnovaImportanceEvaluator()),
    }
    out = {"_used": used, "_total": total, "_fanova_used": fanova_used}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks PED-ANOVA experimental
        for method, (trials, evaluator) in evaluators.items():
            try:
                found = dict(get_param_importances(trials, evaluator=evaluator))
            except (RuntimeError, ValueError) as exc:  # too few trials, nothing varies
                out[method] = {"_error": str(exc).splitlines()[0]}
                continue
            if not all(math.isfinite(v) for v in found.values()):
                # fANOVA's variances of values as large as 1e300 overflow: no ranking at all
                top = max((abs(v) for t in trials.trials for v in t.values or []), default=0.0)
                found = {"_error": f"its figures are not finite (values up to {top:.4g})"}
            out[method] = found
    return out


def importance_markdown(result: dict, forest=None) -> str:
    """The Optuna importances beside nnisuite's random-forest permutation importance."""
    used, total = result.get("_used", 0), result.get("_total", 0)
    lines = ["## Importance by Optuna's evaluators", ""]
    for method, text in IMPORTANCE_METHODS.items():
        lines.append(f"- {method}: {text}; normalised to sum to 1")
    if forest is not None:
        lines.append("- random forest: the permutation importance above (a drop in R^2)")
    if used < total:
        lines.append(f"- fit on a seeded sample of {used} of {total} complete trials")
    fanova_used = result.get("_fanova_used", used)
    if fanova_used < used:
        lines.append(f"- fANOVA on a seeded sample of {fanova_used} of the {total} complete trials")
    if used < MIN_TRIALS:
        lines += [
            "",
            f"**Warning: only {used} complete trials (fewer than {MIN_TRIALS}); these "
            "figures cannot tell parameters apart reliably.**",
        ]
    names = []
    for method in IMPORTANCE_METHODS:
        names += [n for n in result.get(method, {}) if not n.startswith("_") and n not in names]
    header = (
        "| parameter | "
        + " | ".join(IMPORTANCE_METHODS)
        + (" | random forest |" if forest is not None else " |")
    )
    lines += ["", header, "|---" * (len(IMPORTANCE_METHODS) + 1 + (forest is not None)) + "|"]
    rf = dict(zip(forest["parameter"], forest["importance"])) if forest is not None else {}
    for name in names:
        cells = [
            f"{result[m][name]:.3f}" if name in result.get(m, {}) else "-"
            for m in IMPORTANCE_METHODS
        ]
        if forest is not None:
            cells.append(f"{rf[name]:.3f}" if name in rf else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for method in IMPORTANCE_METHODS:
        if "_error" in result.get(method, {}):
            lines.append(f"\n{method} not computed: {result[method]['_error']}")
    tops = {
        m: max(
            (n for n in result.get(m, {}) if not n.startswith("_")), key=result[m].get, default=None
        )
        for m in IMPORTANCE_METHODS
    }
    if forest is not None and len(forest):
        tops["random forest"] = forest.iloc[0]["parameter"]
    distinct = {v for v in tops.values() if v}
    if len(distinct) > 1:
        lines.append(
            "\nThe methods disagree on the most important parameter: "
            + ", ".join(f"{m} says {v}" for m, v in tops.items() if v)
            + "."
        )
    elif distinct:
        lines.append(f"\nAll methods rank {distinct.pop()} first.")
    return "\n".join(lines)


def plots(study, out, top: list[str]) -> list:
    """Optuna's matplotlib plots of the study as PNGs: history, parallel coordinate, slice,
    contour of the two most important parameters, EDF."""
    import warnings
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ov

    out = Path(out)
    written = []
    makers = {
        "optuna_history.png": lambda: ov.plot_optimization_history(study),
        "optuna_parallel_coordinate.png": lambda: ov.plot_parallel_coordinate(study),
        "optuna_slice.png": lambda: ov.plot_slice(study),
        "optuna_edf.png": lambda: ov.plot_edf(study),
    }
    if len(top) >= 2:
        makers["optuna_contour.png"] = lambda: ov.plot_contour(study, params=top[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, make in makers.items():
            try:
                axes = make()
            except (ValueError, RuntimeError):  # too few trials for that plot
                continue
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            if name == "optuna_parallel_coordinate.png":  # slanted names below the axes
                figure.set_size_inches(8, 5)
                figure.subplots_adjust(bottom=0.2, left=0.1, right=0.82)
            # fixed margins, not bbox_inches="tight" (which draws each figure twice: +0.9 s)
            save_figure(figure, out / name, dpi=90)
            plt.close(figure)
            written.append(out / name)
    return written


def edf_plot(groups: dict[str, list[Experiment]], path) -> object | None:
    """One EDF plot of several experiments (or groups of runs, pooled): the share of trials
    whose value is at most x. None when Optuna cannot draw it."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ov

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = []
    for name, exps in groups.items():
        pooled = optuna.create_study(study_name=name, direction=direction(exps[0]))
        for exp in exps:
            study, _ = to_study(exp)
            pooled.add_trials(sampled(study)[0].trials)
        studies.append(pooled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            axes = ov.plot_edf(studies)
        except (ValueError, RuntimeError):
            return None
    save_figure(axes.figure, path, dpi=90, bbox_inches="tight")
    plt.close(axes.figure)
    return path


# ---------------------------------------------------------------- the dashboard


def serve_dashboard(storage_url: str, port: int, host: str = "127.0.0.1") -> int:
    """optuna-dashboard on host:port (this machine only by default) as a child process, until
    Ctrl-C."""
    import os
    import shutil
    import signal

    exe = shutil.which("optuna-dashboard", path=os.path.dirname(sys.executable))
    if exe is None:
        print(
            "error: optuna-dashboard is not installed: pip install -e '.[optuna]'", file=sys.stderr
        )
        return 2
    proc = subprocess.Popen([exe, storage_url, "--host", host, "--port", str(port)])
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"note: the dashboard listens on {host}: whoever reaches port {port} there can read "
            "and change the study (no authentication)",
            file=sys.stderr,
        )
    print(f"optuna-dashboard: http://{host}:{port} (Ctrl-C stops it)", flush=True)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m nnisuite.analysis.optuna",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(p)
    p.add_argument("--storage", required=True, help="Optuna storage URL (sqlite:///DIR/study.db)")
    p.add_argument("--study-name", help="default: nni-<experiment id>")
    p.add_argument("--dashboard", action="store_true", help="then serve optuna-dashboard on it")
    p.add_argument("--port", type=int, help="dashboard port (default 8081; with --dashboard)")
    p.add_argument(
        "--host",
        help="dashboard address (default 127.0.0.1: this machine only; 0.0.0.0 exposes it; "
        "with --dashboard)",
    )
    return p


def dashboard_problem(args) -> str | None:
    """What stops the dashboard from serving, found before the study is written: flags given
    without --dashboard, an in-memory storage (the dashboard is another process), a host that
    is not this machine's, a port that is taken."""
    import socket

    from nnisuite.nni_patches.binding import check_host

    if not args.dashboard:
        given = [f for f, v in (("--port", args.port), ("--host", args.host)) if v is not None]
        return (
            f"{' and '.join(given)} set the dashboard's address: add --dashboard" if given else None
        )
    args.port = 8081 if args.port is None else args.port
    args.host = "127.0.0.1" if args.host is None else args.host
    if not 0 < args.port < 65536:
        return f"--port {args.port}: not a port (1..65535)"
    if ":memory:" in args.storage or args.storage.rstrip("/") == "sqlite:":
        return f"--storage {args.storage}: in memory, the dashboard (another process) sees nothing"
    problem = check_host(args.host.strip() or "(empty)")
    if problem:
        return problem
    if ":" in args.host:  # optuna-dashboard's server (wsgiref's) binds IPv4 sockets only
        return f"--host {args.host}: optuna-dashboard listens on IPv4 only (127.0.0.1, 0.0.0.0)"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            return f"--host {args.host} --port {args.port}: cannot listen there ({exc.strerror})"
    return None


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = dashboard_problem(args)
    if problem:
        parser.error(problem)
    if args.study_name is not None and not args.study_name.strip():
        parser.error("--study-name must not be empty")
    try:
        exp = load_experiment(args.experiment, args.experiment_dir)
        t0 = time.perf_counter()
        study, notes = to_study(
            exp, args.storage, args.study_name, experiment_objectives(exp.config)
        )
    except (ExportError, BridgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    best = ""
    if len(study.directions) > 1:
        front = len(study.best_trials)
        how = ", ".join(
            f"{n} ({d.name.lower()})" for n, d in zip(study.metric_names, study.directions)
        )
        best = f"; {front} trial(s) on the Pareto front"
    else:
        how = f"{study.metric_names[0]}, {study.direction.name.lower()}"
        try:
            best = f"; best value {fmt(study.best_value)} (trial {study.best_trial.number})"
        except ValueError:
            pass
    print(
        f"study {study.study_name!r} in {args.storage}: {len(study.trials)} trials "
        f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
        f"{how}{best} ({time.perf_counter() - t0:.1f} s)"
    )
    if args.dashboard:
        return serve_dashboard(args.storage, args.port, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
