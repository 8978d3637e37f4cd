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

What NNI 3.0 cannot give, and what nnisuite does about it:
- the tuner's state: NNI builds a new tuner from the same classArgs and hands it the finished
  results. A tuner with a `seed` would then draw its first configurations again (TPE's and
  Random's start-up draws repeat the stopped run's). nnisuite gives the resumed tuner a new
  seed derived from the old one and the number of trials so far (`resumed_seed`), written
  into the experiment's config as a new profile revision, and says so;
- parameter ids and sequence numbers restart (nnisuite.analysis.store reads them right);
- a study that already ran all its trials has nothing to resume: it is exported again, and
  no manager is started (which would add the idle time to its recorded end).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from pathlib import Path

from nnisuite.analysis.store import (
    DEFAULT_EXPERIMENT_DIR,
    FINISHED,
    ExportError,
    live_manager,
    load_experiment,
    manifest_entry,
    opened,
    seconds,
)
from nnisuite.config.experiment import ConfigError
from nnisuite.config.search_space import read_space_file
from nnisuite.study.guard import stop_manager


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


class AlreadyFinished(ResumeError):
    """The experiment ran all its trials: nothing to resume."""


def resumed_seed(seed: int, trials_so_far: int) -> int:
    """The seed a resumed tuner gets: a stable function of the old seed and the trials so far,
    unlike any small seed a repeated study uses for its own runs."""
    digest = hashlib.sha256(f"nnisuite-resume:{seed}:{trials_so_far}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31)


def reseed_tuner(db: Path, trials_so_far: int) -> str | None:
    """Give the tuner of the stopped experiment in `db` a resumed seed (a new profile revision,
    as NNI itself writes one on every change); returns what was done, or None (no seed)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        row = conn.execute(
            "SELECT params, id, execDuration, startTime, endTime, logDir, nextSequenceId, "
            "revision FROM ExperimentProfile ORDER BY revision DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        params = json.loads(row[0])
        tuner = params.get("tuner") or {}
        args = tuner.get("classArgs") or {}
        seed = args.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or trials_so_far == 0:
            return None
        new = resumed_seed(seed, trials_so_far)
        params["tuner"]["classArgs"]["seed"] = new
        conn.execute(
            "INSERT INTO ExperimentProfile (params, id, execDuration, startTime, endTime, "
            "logDir, nextSequenceId, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (json.dumps(params), *row[1:7], row[7] + 1),
        )
    name = tuner.get("name") or tuner.get("className", "the tuner")
    return (
        f"tuner {name}: NNI 3.0 builds a new tuner and gives it the {trials_so_far} earlier "
        f"trials' results; its seed {seed} would repeat its first configurations, so it "
        f"resumes with seed {new} (recorded in the experiment's config)"
    )


def check_not_finished(exp_id: str, root: Path) -> None:
    """AlreadyFinished when every trial ended and the study has its maxTrialNumber trials."""
    try:
        exp = load_experiment(exp_id, root, live=False)
    except ExportError as exc:
        raise ResumeError(str(exc)) from None
    budget = exp.config.get("maxTrialNumber")
    ended = [t for t in exp.trials if t.status in FINISHED or t.status == "TIMED_OUT"]
    if budget and len(exp.trials) >= budget and len(ended) == len(exp.trials):
        raise AlreadyFinished(
            f"experiment {exp_id!r} already ran all its {budget} trials: nothing to resume"
        )
    limit = seconds(exp.config.get("maxExperimentDuration"))
    ran = exp.profile.get("execDuration")
    if limit and isinstance(ran, (int, float)) and ran >= limit and len(ended) == len(exp.trials):
        # NNI would start a manager that ends at once, its idle time added to the recorded end
        raise AlreadyFinished(
            f"experiment {exp_id!r} already ran its maxExperimentDuration "
            f"({exp.config.get('maxExperimentDuration')}): nothing to resume"
        )


def recorded_config(exp_id: str, root: Path):
    """The experiment's config as NNI recorded it in its database (an nni ExperimentConfig),
    needing nothing else: the search space is the one recorded (a searchSpaceFile moved or
    edited since is named in one line and not read), the trials' folder must still exist."""
    from nni.experiment import ExperimentConfig, launcher

    try:
        raw = launcher.get_stopped_experiment_config_json(exp_id, str(root))
    except Exception as exc:  # noqa: BLE001 - NNI raises ValueError / KeyError / sqlite errors
        raise ResumeError(f"experiment {exp_id!r}: NNI cannot read its config ({exc})") from exc
    if not isinstance(raw, dict):
        raise ResumeError(f"experiment {exp_id!r}: no config recorded in its database")
    space_file = raw.get("searchSpaceFile")
    if space_file and isinstance(raw.get("searchSpace"), dict):
        del raw["searchSpaceFile"]  # the recorded space is the study's, whatever the file says
        try:
            now = read_space_file(space_file)  # the hardened reader every command uses
        except ConfigError as exc:
            why = f"cannot be read ({str(exc).split(': ', 1)[-1][:120]})"
        else:
            why = "changed since the study started" if now != raw["searchSpace"] else None
        if why:
            print(
                f"note: search space file {space_file} {why}: resuming with the space NNI "
                "recorded (a new space is a new study: nnisuite run)",
                flush=True,
            )
    code = raw.get("trialCodeDirectory")
    if code and not Path(code).is_dir():
        raise ResumeError(
            f"experiment {exp_id!r}: its trials' folder {code} (trialCodeDirectory) is gone: "
            "nothing to run the trials from"
        )
    raw["experimentWorkingDirectory"] = str(root)
    try:
        return ExperimentConfig(**raw)
    except Exception as exc:  # noqa: BLE001 - NNI's config checks raise several kinds
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ResumeError(
            f"experiment {exp_id!r}: NNI cannot use its recorded config ({first})"
        ) from None


def prepare_resume(exp_id: str, experiment_dir: str | None = None):
    """An nni Experiment that `start` resumes (its config read from the database).
    AlreadyFinished when there is nothing left to run. Nothing is written to the database
    before every check has passed."""
    from nni.experiment import Experiment

    root = experiment_folder(exp_id, experiment_dir)
    stop_live_manager(exp_id)
    check_not_finished(exp_id, root)
    config = recorded_config(exp_id, root)
    if config.experiment_type == "nas":
        raise ResumeError(
            f"experiment {exp_id!r} is a NAS study: see python -m nnisuite.nas --help"
        )
    db = root / exp_id / "db" / "nni.sqlite"
    with opened(db) as conn:  # a snapshot: a killed manager may have left a hot journal
        (trials_so_far,) = conn.execute(
            "SELECT COUNT(DISTINCT trialJobId) FROM TrialJobEvent WHERE trialJobId != ''"
        ).fetchone()
    try:
        note = reseed_tuner(db, trials_so_far)
    except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"experiment {exp_id!r}: cannot read its config ({exc})") from None
    if note:
        print(f"note: {note}", flush=True)
        config = recorded_config(exp_id, root)  # with the tuner's new seed
    exp = Experiment(config, id=exp_id)
    exp._action = "resume"  # what Experiment.resume() sets before starting (NNI 3.0)
    return exp
