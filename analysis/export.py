"""Export an NNI experiment (running or stopped) to CSV / markdown tables, plots, importance.

    python -m nnisuite.analysis.export EXPERIMENT --out DIR [--experiment-dir DIR]

EXPERIMENT: an experiment id (under ~/nni-experiments or --experiment-dir), a path to an
`nni.sqlite`, or a running manager's URL (http://127.0.0.1:8080). Writes into DIR:
trials.csv, intermediate.csv, summary.md, pareto.csv and pareto_<cost>.png (the trials on
the front of `default` against each cost the trials report: nnisuite.analysis.pareto),
importance.csv (random-forest permutation
importance), importance_optuna.csv (fANOVA and PED-ANOVA through nnisuite.analysis.optuna, from 3
finished trials on, unless --no-optuna), the plots of nnisuite.analysis.plots and Optuna's
(optuna_*.png, from 3 finished trials on; --no-plots: none).
Expected errors print one line and exit with code 2 (an experiment that cannot be read) or 4 (a
file that cannot be written: disk full, I/O error). The files are written whole or not at all:
into a hidden folder inside DIR, then each renamed over its namesake, so a failed export leaves
DIR's previous export as it was.

Three things take the time: drawing the plots (matplotlib), fitting the random forest
(scikit-learn, whose import alone is ~1 s) and Optuna's evaluators and plots. By default two
forked worker processes do the first and the last while this one fits the forest, on two cores
at once; --serial does all three here, one after the other. The run says which it used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from nnisuite.analysis.atomic import EXIT_WRITE, WriteError, staged
from nnisuite.analysis.direction import MAXIMIZE, direction, scored
from nnisuite.analysis.importance import MIN_FIT, importance, importance_markdown
from nnisuite.analysis.pareto import front_rows, log_choice, trade_offs
from nnisuite.analysis.pareto import markdown as pareto_markdown
from nnisuite.analysis.store import Experiment, ExportError, add_source_arguments, load_experiment
from nnisuite.analysis.tables import (
    intermediate_table,
    metric_label,
    parameter_columns,
    parameter_names,
    summary_markdown,
    trials_table,
)
from nnisuite.flags import Parser
from nnisuite.outputs import folder_flag
from nnisuite.signals import stops_held


@dataclass
class ExportResult:
    experiment: Experiment
    trials: object  # pandas DataFrame
    summary: str
    files: list[Path]


class Forked:
    """`fn()` run in a forked child process (it sees this process's data without copying or
    pickling); result() waits for it and returns its JSON-able value, cancel() ends it."""

    def __init__(self, fn):
        sys.stdout.flush()
        sys.stderr.flush()
        read, write = os.pipe()
        self.pid, self.read = None, read
        try:
            with stops_held() as held:  # a Ctrl-C during the fork: raised once, at its end
                self.pid = os.fork()
                if self.pid == 0:
                    child(fn, held, read, write)  # never returns
                os.close(write)
        except BaseException:
            if self.pid is None:  # the fork itself failed
                os.close(read)
                os.close(write)
            self.cancel()
            raise

    def result(self):
        with os.fdopen(self.read) as f:
            text = f.read()
        os.waitpid(self.pid, 0)
        self.pid = None
        payload = json.loads(text) if text else {}
        if "oserror" in payload:
            raise OSError(*payload["oserror"])
        if "error" in payload or "ok" not in payload:
            raise RuntimeError(f"a forked export worker failed:\n{payload.get('error', '')}")
        return payload["ok"]

    def cancel(self) -> None:
        """Ends the worker (an interrupted export): killed and reaped, never left behind."""
        if not self.pid:  # none, or this is the child itself
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.pid = None
        with contextlib.suppress(OSError):
            os.close(self.read)


def child(fn, held, read: int, write: int) -> None:
    """A forked worker: run `fn`, report to the parent, exit without the parent's cleanup."""
    try:
        os.close(read)
        held.restore()  # the parent's signal mask and handlers
        payload = {"ok": fn()}
    except OSError as exc:  # a full disk: the parent raises it as such
        payload = {"oserror": [exc.errno, exc.strerror, exc.filename]}
    except BaseException:  # noqa: BLE001 - handed to the parent
        payload = {"error": traceback.format_exc()}
    try:
        with os.fdopen(write, "w") as f:
            json.dump(payload, f, default=str)
    finally:
        os._exit(0)


def make_folder(out) -> Path:
    """`out`, created if need be; ExportError (one line) when it cannot be."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot be a folder ({exc.strerror})") from None
    return out


def draw(
    exp: Experiment, trials, params: list[str], out: Path, plots: bool, fronts=(), chosen=()
) -> list[str]:
    """intermediate.csv and the plots (matplotlib is imported here, in the worker)."""
    steps = intermediate_table(exp)
    steps.to_csv(out / "intermediate.csv", index=False)
    written = [out / "intermediate.csv"]
    if plots and not trials.empty:
        from nnisuite.analysis.plots import plot_experiment, plot_front

        label = metric_label(trials, exp.config)
        written += plot_experiment(trials, steps, params, out, label, direction(exp.config))
        for front in fronts:
            marked = [i in chosen for i in front.trial_ids]
            written.append(plot_front(front, label, marked, out))
    return [str(p) for p in written]


def optuna_analysis(exp: Experiment, out: Path, plots: bool) -> dict:
    """fANOVA and PED-ANOVA importance of the experiment as an Optuna study, and Optuna's
    plots of it (on a seeded sample of at most nnisuite.analysis.optuna.MAX_TRIALS trials)."""
    try:
        from nnisuite.analysis import optuna as bridge
    except ImportError:
        return {"skipped": "Optuna is not installed (pip install -e '.[optuna]')"}
    try:
        study, _ = bridge.to_study(exp)
        result = bridge.importances(study)
    except (bridge.BridgeError, ImportError) as exc:
        return {"skipped": f"no Optuna study: {exc}"}
    except OSError:
        raise  # a full disk is the export's failure, not an extra's
    except Exception as exc:  # noqa: BLE001 - an extra must not cost the user the export
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"warning: Optuna's analysis failed ({type(exc).__name__}: {first})", file=sys.stderr)
        return {"skipped": f"failed ({type(exc).__name__}: {first})"}
    names = sorted(
        (k for k, v in result.get("fanova", {}).items() if not k.startswith("_")),
        key=lambda k: -result["fanova"][k],
    )
    files = []
    if plots:
        data, _, _ = bridge.sampled(study)
        files = [str(p) for p in bridge.plots(data, out, names)]
    rows = [
        {"parameter": n, "method": m, "importance": v}
        for m in bridge.IMPORTANCE_METHODS
        for n, v in result.get(m, {}).items()
        if not n.startswith("_")
    ]
    if rows:
        import pandas as pd

        pd.DataFrame(rows).to_csv(out / "importance_optuna.csv", index=False)
        files.append(str(out / "importance_optuna.csv"))
    return {"importances": result, "files": files}


NO_FOREST = (
    "## Parameter importance\n\nNot computed (not asked for: nnisuite.analysis.export and "
    "nnisuite.study.run "
    "were given --no-importance, or nnisuite.study.repeat no --importance)."
)


def export(
    exp: Experiment,
    out: str | Path,
    plots: bool = True,
    parallel: bool = True,
    optuna: bool = True,
    forest: bool = True,
) -> ExportResult:
    """Tables, summary, importance (random forest here unless forest=False; fANOVA and PED-ANOVA
    through Optuna unless optuna=False), and unless plots=False the plots of `exp` into `out`.
    `parallel`: the plots and the Optuna part each in a forked worker while this process fits
    the forest.
    Written whole or not at all (nnisuite.outputs.staged): WriteError when a file cannot be
    written, and the files already in `out` stay as they were."""
    out = make_folder(out)
    with staged(out, owner="export") as stage:  # replaces an earlier export there, whole
        result = write_export(exp, stage, plots, parallel, optuna, forest)
    result.files = [out / Path(p).name for p in result.files]
    return result


def write_export(
    exp: Experiment, out: Path, plots: bool, parallel: bool, optuna: bool, forest: bool = True
):
    """export() into the staging folder `out`."""
    trials = trials_table(exp)
    params = parameter_names(exp)
    trials.to_csv(out / "trials.csv", index=False)
    n_finished = int(scored(trials).sum()) if not trials.empty else 0
    fronts = trade_offs(exp.trials, direction(exp.config) == MAXIMIZE)
    chosen = {t.trial_id for t in exp.trials if log_choice(t.parameters)}
    pareto = front_rows(fronts, trials, params, chosen)
    jobs = {"draw": lambda: draw(exp, trials, params, out, plots, fronts, chosen)}
    if optuna and n_finished >= MIN_FIT:  # fewer: nothing for Optuna's evaluators to rank
        jobs["optuna"] = lambda: optuna_analysis(exp, out, plots)
    fork = parallel and hasattr(os, "fork")
    workers: dict[str, Forked] = {}
    try:
        if fork:
            # the plots start at once; scikit-learn (~1 s to import) is imported here before the
            # Optuna worker forks, so that it and this process's forest share one import
            workers["draw"] = Forked(jobs["draw"])
            if "optuna" in jobs:
                if forest and n_finished >= MIN_FIT:  # the forest will be fit here
                    from sklearn.ensemble import RandomForestRegressor  # noqa: F401

                workers["optuna"] = Forked(jobs["optuna"])
        table, note = importance(trials, params) if n_finished and forest else (None, "")
        files = [out / "trials.csv", out / "summary.md"]
        if fronts:
            pareto.to_csv(out / "pareto.csv", index=False)
            files.append(out / "pareto.csv")
        if table is not None:
            table.to_csv(out / "importance.csv", index=False)
            files.append(out / "importance.csv")
        done = {name: (workers[name].result() if fork else job()) for name, job in jobs.items()}
        sections = importance_markdown(table, n_finished, note) if forest else NO_FOREST
        if optuna and "optuna" not in jobs:
            sections += (
                f"\n\nOptuna's importance evaluators and plots: not computed: {n_finished} "
                f"finished trial(s); at least {MIN_FIT} are needed."
            )
        if "optuna" in done:
            from nnisuite.analysis.optuna import importance_markdown as optuna_markdown

            found = done["optuna"]
            if "skipped" in found:
                sections += f"\n\nOptuna's importance evaluators: {found['skipped']}."
            else:
                # Optuna names parameters as the trials received them; the forest's table names
                # columns (a parameter `status` is the column `param.status`): one name each
                named = parameter_columns(exp)
                forest_named = (
                    None
                    if table is None
                    else table.assign(parameter=[named.get(c, c) for c in table["parameter"]])
                )
                sections += "\n\n" + optuna_markdown(found["importances"], forest_named)
                files += [Path(p) for p in found["files"]]
        if fronts:
            sections = pareto_markdown(fronts, pareto, metric_label(trials, exp.config)) + (
                "\n\n" + sections if sections else ""
            )
        summary = summary_markdown(exp, trials, sections)
        files[1].write_text(summary)
        return ExportResult(exp, trials, summary, files + [Path(p) for p in done["draw"]])
    finally:  # an interrupted export leaves no worker behind
        for worker in workers.values():
            worker.cancel()


def export_experiment(
    experiment: str,
    out: str | Path,
    experiment_dir=None,
    live: bool | None = None,
    plots: bool = True,
    parallel: bool = True,
    optuna: bool = True,
    forest: bool = True,
) -> ExportResult:
    """`live`: whether the experiment's manager still runs (None: NNI's manifest says)."""
    exp = load_experiment(experiment, experiment_dir, live)
    return export(exp, out, plots, parallel, optuna, forest)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m nnisuite.analysis.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser)
    parser.add_argument("--out", type=folder_flag, required=True, help="output folder")
    parser.add_argument("--no-plots", action="store_true", help="tables and summary only")
    parser.add_argument(
        "--no-optuna",
        action="store_true",
        help="skip fANOVA / PED-ANOVA importance and Optuna's plots (needs nnisuite[optuna])",
    )
    parser.add_argument(
        "--no-importance",
        action="store_true",
        help="skip the random-forest importance (importance.csv and its section: scikit-learn's "
        "import and a 200-tree fit, 1-2 s of CPU)",
    )
    parser.add_argument(
        "--serial",
        action="store_true",
        help="draw the plots in this process after the importance fit (default: a forked "
        "worker draws them meanwhile)",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = export_experiment(
            args.experiment,
            args.out,
            args.experiment_dir,
            plots=not args.no_plots,
            parallel=not args.serial,
            optuna=not args.no_optuna,
            forest=not args.no_importance,
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_WRITE
    print(result.summary)
    if scored(result.trials).sum() == 0:
        print("No finished trial yet: the tables are empty.")
    how = " (all in this process)" if args.serial else " (plots, Optuna: worker processes)"
    print(f"wrote {len(result.files)} files to {args.out}{how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
