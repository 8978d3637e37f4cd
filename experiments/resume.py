"""Prepare a stopped or crashed HPO experiment for NNI's own resume.

    exp = prepare_resume("m128kybw", "runs/nni")   # an nni Experiment; run_study starts it

What NNI 3.0's manager does on resume (nni_node/core/nnimanager.js, resumeExperiment): it reads
the experiment's config from its database, sends every finished result to the new tuner
(IMPORT_DATA; TPE logs "Replayed N FINISHED trials"), and submits again, with the same trial id,
sequence number and parameters, every trial whose last recorded state is WAITING or RUNNING
(a trial killed by a stop or a crash never gets an end event), logging ADD_RESUMED for each;
those do not count twice against maxTrialNumber. So a resumed study ends with its
maxTrialNumber trials.

A manager still running the experiment (the runner was killed, the guard did not get to stop
it, or the user started it with nnictl) is stopped first, as `nnictl stop` would.
"""

from __future__ import annotations

from pathlib import Path

from analysis.store import DEFAULT_EXPERIMENT_DIR, live_manager, manifest_entry
from experiments.guard import stop_manager


class ResumeError(ValueError):
    """An experiment that cannot be resumed; the message says why."""


def experiment_folder(exp_id: str, experiment_dir: str | None) -> Path:
    """The experiment working directory holding `exp_id` (--experiment-dir, NNI's manifest,
    or ~/nni-experiments)."""
    if experiment_dir:
        root = Path(experiment_dir).expanduser().resolve()
    else:
        root = Path(manifest_entry(exp_id).get("logDir") or DEFAULT_EXPERIMENT_DIR)
    if not (root / exp_id / "db" / "nni.sqlite").is_file():
        raise ResumeError(
            f"experiment {exp_id!r} not found: no {root / exp_id / 'db' / 'nni.sqlite'} "
            "(pass --experiment-dir, the folder the experiment ran in)"
        )
    return root


def stop_live_manager(exp_id: str) -> None:
    live = live_manager(exp_id)
    if live is not None:
        pid, port = live
        print(f"experiment {exp_id} is still running (manager pid {pid}, port {port}): stopping it")
        stop_manager(pid, port)


def prepare_resume(exp_id: str, experiment_dir: str | None = None):
    """An nni Experiment that `start` resumes (its config read from the database)."""
    from nni.experiment import Experiment, launcher

    root = experiment_folder(exp_id, experiment_dir)
    stop_live_manager(exp_id)
    try:
        config = launcher.get_stopped_experiment_config(exp_id, str(root))
    except Exception as exc:  # noqa: BLE001 - NNI raises ValueError / KeyError / sqlite errors
        raise ResumeError(f"experiment {exp_id!r}: NNI cannot read its config ({exc})") from exc
    if config.experiment_type == "nas":
        raise ResumeError(f"experiment {exp_id!r} is a NAS study: see python -m nas --help")
    exp = Experiment(config, id=exp_id)
    exp._action = "resume"  # what Experiment.resume() sets before starting (NNI 3.0)
    return exp
