"""Read what NNI stored about an experiment, running or stopped, into plain records.

    exp = load_experiment("m128kybw")                      # id under ~/nni-experiments
    exp = load_experiment("path/to/db/nni.sqlite")         # a database file
    exp = load_experiment("http://127.0.0.1:8080")         # a running manager's REST API
    exp.trials[0].parameters, exp.trials[0].final, exp.trials[0].intermediates

The database is never opened in place: NNI's manager sets no busy timeout, so even a reader's
shared lock can make its writes fail. The file is copied (no lock taken) with its rollback
journal when a writer is mid-transaction (sqlite rolls the copy back to the last commit), and
the copy opened immutable; a copy torn by a concurrent write is taken again.

NNI writes no end event for a trial killed by a stop or a crash: in an experiment whose manager
is not running, such a trial is INTERRUPTED (never RUNNING), unless it had reported its final
result (it was stopped as it exited): then it is SUCCEEDED. A trial NNI ran again after a
resume (event ADD_RESUMED) keeps only its last run's metrics and counts its `restarts`.

After a resume NNI 3.0 hands out parameter ids and sequence numbers again from where its
resumed trials were (from 0 and 1 when none was running), so both repeat within one database:
a metric's parameter id is read as the newest record of that id at the metric's time, and
repeated sequence numbers are renumbered in submission order (`Experiment.renumbered`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from nnisuite.runtime import scratch

DEFAULT_EXPERIMENT_DIR = Path("~/nni-experiments").expanduser()
MANIFEST = DEFAULT_EXPERIMENT_DIR / ".experiment"  # NNI's list of experiments (nnictl's)
FINISHED = {"SUCCEEDED", "FAILED", "EARLY_STOPPED", "USER_CANCELED", "SYS_CANCELED"}
# nnisuite's own readings of what NNI recorded: killed past maxTrialDuration; no end recorded
# because the experiment stopped or crashed under it
DERIVED = {"TIMED_OUT", "INTERRUPTED"}
UNFINISHED = {"WAITING", "RUNNING", "UNKNOWN"}
TABLES = {"TrialJobEvent", "MetricData", "ExperimentProfile"}


class ExportError(RuntimeError):
    """An experiment that cannot be found or read; the message says which and why."""


@dataclass
class Trial:
    trial_id: str
    sequence: int | None = None
    status: str = "WAITING"
    parameters: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)  # {"default": ..., other final keys}
    intermediates: list[dict] = field(default_factory=list)  # per step: {"default": ..., ...}
    start_time: float | None = None  # unix seconds, of the last run
    end_time: float | None = None
    restarts: int | None = 0  # times NNI ran it again after a resume (ADD_RESUMED); None: unknown
    host: str | None = None  # the remote machine that ran it (its last run), from NNI's logPath
    submitted: float = 0.0  # time of its first event, ms (orders trials when NNI's repeat)

    @property
    def duration_s(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass
class Experiment:
    id: str
    profile: dict  # the newest ExperimentProfile: params (the config), times
    trials: list[Trial]
    source: str
    renumbered: bool = False  # NNI repeated sequence numbers (a resume): renumbered in order

    @property
    def config(self) -> dict:
        return self.profile.get("params") or {}


def decode_metric(data):
    """NNI stores metric data JSON-encoded twice (the trial's SDK encodes the value, the manager
    the message); scalars become {"default": value}. Exactly two decodes: a string the trial
    reported ("n/a", or "0.9") stays the string it was, never a number."""
    value = data
    for _ in range(2):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                break
    if isinstance(value, dict):
        return value
    return {"default": value}


def architecture_or_parameters(params: dict) -> dict:
    """A NAS trial's parameters are its whole serialised model space; its `sample` holds the
    architecture choices (e.g. {"depth": 3, "seed": 0})."""
    if (
        isinstance(params, dict)
        and isinstance(params.get("sample"), dict)
        and ("model_symbol" in params or "__instance_type__" in params)
    ):
        return params["sample"]
    return params


def flatten_parameters(params: dict, prefix: str = "") -> dict:
    """Nested choices ({"_name": ..., ...}) and NAS samples become flat columns."""
    params = architecture_or_parameters(params)
    out = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_parameters(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


# ---------------------------------------------------------------- NNI 3.0's status bug

ASSESSOR_KILL = re.compile(r'\(NNIManager\) cancelTrialJob: "([^"]+)"')
DURATION_KILL = re.compile(r"Trial job (\S+) has been canceled because it is over max trial")


def manager_log(log_dir) -> str:
    if not log_dir:
        return ""
    try:
        return (Path(log_dir) / "log" / "nnimanager.log").read_text(errors="replace")
    except OSError:
        return ""


def seconds(duration) -> float | None:
    """NNI's duration (a number of seconds, or a string such as "4s", "30m", "2h", "1d")."""
    if duration is None or isinstance(duration, (int, float)):
        return duration
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = str(duration).strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        return None


def max_trial_duration(profile: dict):
    params = profile.get("params")
    return params.get("maxTrialDuration") if isinstance(params, dict) else None


def correct_statuses(trials: dict[str, Trial], log_dir, max_trial_duration=None) -> None:
    """NNI 3.0's local service records an assessor's stop as USER_CANCELED (it reads the
    early-stop flag only after the trial's exit was handled), and a trial killed for running
    past maxTrialDuration the same way. The manager's log says which stop was which: those
    trials are EARLY_STOPPED and TIMED_OUT. An assessor's stop that came after the trial had
    reported its final result (a fast trial on a busy machine) cut nothing short: SUCCEEDED.

    NNI's duration check reads the statuses of its previous poll (0.5 s before): a trial that
    had already ended on its own, in less than maxTrialDuration, is "canceled" too and logged
    as such. A kill for duration ends a trial after more than maxTrialDuration, so a trial
    whose recorded run was shorter keeps the status it ended with."""
    log = manager_log(log_dir)
    limit = seconds(max_trial_duration)
    kinds = (("EARLY_STOPPED", ASSESSOR_KILL), ("TIMED_OUT", DURATION_KILL))
    for status, pattern in kinds:
        for trial_id in set(pattern.findall(log)):
            trial = trials.get(trial_id)
            if trial is None or trial.status not in ("USER_CANCELED", "FAILED", "EARLY_STOPPED"):
                continue
            ran = trial.duration_s
            if status == "TIMED_OUT" and limit and ran is not None and ran <= limit:
                continue  # it ended before the limit: the cancel came too late to do anything
            finished = status == "EARLY_STOPPED" and "default" in trial.final
            trial.status = "SUCCEEDED" if finished else status


# ---------------------------------------------------------------- sqlite


def snapshot(db: Path, attempts: int = 8) -> Path:
    """A consistent copy of `db` in a temporary folder, taken without any lock on `db`.

    A writer in the middle of a transaction (NNI's manager, or anything holding the database
    locked) leaves a rollback journal beside it: that is copied too, and sqlite itself rolls the
    copy back to the last commit when it opens it, as after a crash. A copy torn by a commit
    that happened while it was taken (the file changed, or its journal went away) is taken
    again."""
    tmpdir = scratch("nnisuite-db-")
    copy = tmpdir / "nni.sqlite"
    journal, copied_journal = db.with_name(db.name + "-journal"), tmpdir / "nni.sqlite-journal"
    last_error = None
    for attempt in range(attempts):
        copied_journal.unlink(missing_ok=True)
        had_journal = has_content(journal)
        before = db.stat()
        shutil.copyfile(db, copy)
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(journal, copied_journal)
        after = db.stat()
        rolled_back = has_content(copied_journal)
        if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size) or (
            had_journal and not rolled_back
        ):
            last_error = "the database changed while it was copied"
        else:
            try:
                if rolled_back:  # a hot journal: opening the copy rolls it back
                    with contextlib.closing(sqlite3.connect(copy)) as conn:
                        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                with sqlite3.connect(f"file:{copy}?immutable=1", uri=True) as conn:
                    status = conn.execute("PRAGMA quick_check").fetchone()[0]
                if status == "ok":
                    return copy
                last_error = f"sqlite quick_check: {status}"
            except sqlite3.DatabaseError as exc:
                last_error = str(exc)
                if attempt >= 2 and "not a database" in last_error:
                    break
        time.sleep(0.05 * (attempt + 1))
    shutil.rmtree(tmpdir, ignore_errors=True)
    raise ExportError(f"{db}: not a readable NNI database ({last_error})")


@contextlib.contextmanager
def opened(db: Path):
    """A read-only connection to a consistent snapshot of `db` (see snapshot), removed
    afterwards. Reads beside a live manager, and after one killed in the middle of a write: its
    hot journal makes a plain `mode=ro` connection fail ("attempt to write a readonly
    database"), while NNI's resume (read-write) rolls it back and goes on. ExportError when
    there is no readable database."""
    copy = snapshot(db)
    try:
        with contextlib.closing(sqlite3.connect(f"file:{copy}?immutable=1", uri=True)) as conn:
            yield conn
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


EVENTS_SQL = (
    "SELECT timestamp, trialJobId, event, data, sequenceId, logPath FROM TrialJobEvent "
    "ORDER BY timestamp, rowid"
)
# NNI's remote training service records a trial's logPath as HOST:PATH (192.0.2.11:~/nni-...);
# local trials as a plain path. The host ends at the first ':' before a '~' or '/'.
REMOTE_LOG_PATH = re.compile(r"^(?P<host>[^/~][^/]*?):[~/]")


def host_of(log_path) -> str | None:
    """The machine a remote trial ran on, from NNI's logPath; None for a local one."""
    found = REMOTE_LOG_PATH.match(log_path) if isinstance(log_path, str) else None
    return found["host"] if found else None


METRICS_SQL = (
    "SELECT timestamp, trialJobId, type, sequence, data, parameterId FROM MetricData "
    "ORDER BY timestamp, rowid"
)


class ParameterRecords:
    """Every parameter record NNI stored, by parameter id, in time order. Ids repeat after a
    resume, so an id is read as its newest record at a given time."""

    def __init__(self):
        self.records: dict[str, list[tuple[float, dict]]] = {}

    def add(self, parameter_id, ts: float, parameters: dict) -> None:
        self.records.setdefault(str(parameter_id), []).append((ts, parameters))

    def at(self, parameter_id, ts: float | None) -> dict | None:
        found = self.records.get(str(parameter_id))
        if not found:
            return None
        if ts is None:
            return found[-1][1]
        before = [params for when, params in found if when <= ts]
        return before[-1] if before else found[0][1]


def read_events(rows) -> tuple[dict[str, Trial], ParameterRecords, dict[str, float]]:
    """Trials from TrialJobEvent rows: (trials, the parameter records, time of each trial's
    last ADD_RESUMED in ms)."""
    trials: dict[str, Trial] = {}
    records = ParameterRecords()
    resumed_at: dict[str, float] = {}
    submitted: dict[str, float] = {}  # first event of each trial, ms
    for ts, trial_id, event, data, seq, *log_path in rows:
        if not trial_id:  # experiment-level events (IMPORT_DATA, ADD_CUSTOMIZED)
            continue
        trial = trials.setdefault(trial_id, Trial(trial_id))
        if log_path and host_of(log_path[0]):
            trial.host = host_of(log_path[0])
        submitted.setdefault(trial_id, ts)
        if seq is not None and seq >= 0:
            trial.sequence = int(seq)
        if data:
            try:
                record = json.loads(data)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict) and "parameters" in record:
                trial.parameters = record["parameters"]
                records.add(record.get("parameter_id"), ts, record["parameters"])
        if event == "ADD_RESUMED":
            trial.restarts += 1
            trial.start_time = trial.end_time = None
            resumed_at[trial_id] = ts
            trial.status = "WAITING"
            continue
        if event == "RUNNING" and trial.start_time is None:
            trial.start_time = ts / 1000
        if event in FINISHED:
            trial.end_time = ts / 1000
        trial.status = event
    for trial_id, ts in submitted.items():
        trials[trial_id].submitted = ts
    return trials, records, resumed_at


def renumber(trials: dict[str, Trial]) -> bool:
    """When NNI repeated sequence numbers (after a resume), number the trials 0.. in the order
    they were first submitted; returns whether it did."""
    seqs = [t.sequence for t in trials.values() if t.sequence is not None]
    if len(seqs) == len(set(seqs)):
        return False
    in_order = sorted(trials.values(), key=lambda t: (t.submitted, t.sequence or 0, t.trial_id))
    for number, trial in enumerate(in_order):
        trial.sequence = number
    return True


def read_sqlite(db: Path, live: bool | None = None) -> Experiment:
    """`live`: whether a manager still runs the experiment (None: ask NNI's manifest). Metric
    rows are streamed from the cursor, never all held as text and as records at once."""
    if not db.is_file():
        raise ExportError(f"{db}: no such database file")
    with opened(db) as conn:
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not TABLES <= names:
                raise ExportError(
                    f"{db}: not an NNI database (tables {sorted(names)}; expected {sorted(TABLES)})"
                )
            profile_row = conn.execute(
                "SELECT params, id, execDuration, startTime, endTime, revision "
                "FROM ExperimentProfile ORDER BY revision DESC LIMIT 1"
            ).fetchone()
            if profile_row is None:
                raise ExportError(f"{db}: NNI database without an experiment profile")
            check_written_as_nni_writes(conn, db)
            trials, records, resumed_at = read_events(conn.execute(EVENTS_SQL))
            never = float("-inf")
            metrics = (m for m in conn.execute(METRICS_SQL) if m[0] >= resumed_at.get(m[1], never))
            add_metrics(trials, metrics, records)
        except sqlite3.DatabaseError as exc:
            raise ExportError(f"{db}: not a readable NNI database ({exc})") from exc
    params, exp_id, exec_duration, start, end, revision = profile_row
    try:
        config = json.loads(params) if params else {}
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise ExportError(
            f"{db}: table ExperimentProfile, revision {revision}: params is not a JSON object "
            "(the experiment's config): the database was edited or is not NNI's"
        )
    profile = {
        "params": config,
        "id": exp_id,
        "execDuration": exec_duration,
        "startTime": start,
        "endTime": end,
        "revision": revision,
    }
    correct_statuses(trials, db.parent.parent, max_trial_duration(profile))
    renumbered = renumber(trials)
    if live is None:
        live = live_manager(exp_id) is not None
    if not live:
        for trial in trials.values():
            if trial.status in UNFINISHED:
                # stopped as it exited (its final was its last act), or cut short
                trial.status = "SUCCEEDED" if "default" in trial.final else "INTERRUPTED"
    return Experiment(exp_id, profile, order(trials), str(db), renumbered)


# (table, column, SQL condition of a value NNI never writes there)
NNI_TYPES = [
    ("ExperimentProfile", "startTime", "typeof(startTime) NOT IN ('integer', 'real', 'null')"),
    ("ExperimentProfile", "endTime", "typeof(endTime) NOT IN ('integer', 'real', 'null')"),
    (
        "ExperimentProfile",
        "execDuration",
        "typeof(execDuration) NOT IN ('integer', 'real', 'null')",
    ),
    ("TrialJobEvent", "timestamp", "typeof(timestamp) NOT IN ('integer', 'real')"),
    ("TrialJobEvent", "sequenceId", "typeof(sequenceId) NOT IN ('integer', 'null')"),
    ("MetricData", "timestamp", "typeof(timestamp) NOT IN ('integer', 'real')"),
    ("MetricData", "sequence", "typeof(sequence) NOT IN ('integer', 'null')"),
]


def check_written_as_nni_writes(conn, db: Path) -> None:
    """ExportError naming the table, the row and the column of the first value NNI never
    writes (a timestamp or sequence number that is text: a database edited by hand)."""
    for table, column, bad in NNI_TYPES:
        row = conn.execute(f"SELECT rowid, {column} FROM {table} WHERE {bad} LIMIT 1").fetchone()
        if row is not None:
            raise ExportError(
                f"{db}: table {table}, row {row[0]}: {column} is {str(row[1])[:40]!r}, not a "
                "number: the database was edited or is not NNI's"
            )


def add_metrics(trials: dict[str, Trial], rows, records: ParameterRecords) -> None:
    """Attach metric rows (timestamp, trial, type, sequence, data, parameter_id) to trials.

    NNI 3.0's local service hands parameters to trials in the order the trials ask for them,
    not the order it recorded them (training_service/v3/compat.js, onRequestParameter), so at
    concurrency > 1 a trial can train on the parameters NNI lists for another. The
    parameter_id a trial's own metrics carry says which it trained on (its newest record at
    the metric's time: ids repeat after a resume); that one wins.

    NNI stores metrics with node-sqlite3 in parallel mode, so two intermediates reported
    milliseconds apart can land in either order (seen: step 1's row before step 0's). A step
    seen again means the trial ran again (a resume): its earlier steps are dropped."""
    for ts, trial_id, kind, sequence, data, parameter_id in rows:
        trial = trials.setdefault(trial_id, Trial(trial_id))
        actual = records.at(parameter_id, ts) if parameter_id is not None else None
        if actual is not None:
            trial.parameters = actual
        if kind == "FINAL":
            trial.final = decode_metric(data)
        elif kind == "PERIODICAL":
            step = int(sequence)
            if any(m["step"] == step for m in trial.intermediates):
                trial.intermediates = []  # a step again: NNI re-ran it after a resume
            # NNI's sequence number is the step; a `step` the trial reported itself (a common way
            # to report the epoch) is kept beside it as metric.step, never in its place
            values = {
                ("metric.step" if k == "step" else k): v for k, v in decode_metric(data).items()
            }
            trial.intermediates.append({"step": step, **values})
            trial.intermediates.sort(key=lambda m: m["step"])


def order(trials: dict[str, Trial]) -> list[Trial]:
    return sorted(
        trials.values(),
        key=lambda t: (t.sequence is None, t.sequence or 0, t.start_time or 0, t.trial_id),
    )


# ---------------------------------------------------------------- REST


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ExportError(f"{url}: NNI manager not reachable ({exc})") from exc


def read_rest(base: str, restarts: bool = True) -> Experiment:
    """An experiment from its live manager's REST API. `restarts=False`: leave `restarts`
    unknown rather than snapshot the manager's database (the watchdog polls this every
    second and never reads restarts)."""
    api = base.rstrip("/") + "/api/v1/nni"
    profile = get_json(f"{api}/experiment")
    jobs = get_json(f"{api}/trial-jobs")
    metric_rows = get_json(f"{api}/metric-data")
    trials: dict[str, Trial] = {}
    records = ParameterRecords()
    for job in jobs:
        trial = trials.setdefault(job["trialJobId"], Trial(job["trialJobId"]))
        trial.sequence = job.get("sequenceId")
        trial.status = job.get("status", trial.status)
        trial.start_time = job["startTime"] / 1000 if job.get("startTime") else None
        trial.end_time = job["endTime"] / 1000 if job.get("endTime") else None
        trial.submitted = float(job.get("submitTime") or job.get("startTime") or 0)
        trial.host = host_of(job.get("logPath"))
        for param in job.get("hyperParameters") or []:
            record = json.loads(param) if isinstance(param, str) else param
            trial.parameters = record.get("parameters", {})
            records.add(record.get("parameter_id"), trial.submitted, trial.parameters)
    for found in records.records.values():
        found.sort(key=lambda item: item[0])
    add_metrics(
        trials,
        (
            (
                m.get("timestamp"),
                m["trialJobId"],
                m["type"],
                m.get("sequence", 0),
                m["data"],
                m.get("parameterId"),
            )
            for m in metric_rows
        ),
        records,
    )
    correct_statuses(trials, profile.get("logDir"), max_trial_duration(profile))
    params = profile.get("params") if isinstance(profile.get("params"), dict) else {}
    folder = params.get("experimentWorkingDirectory")
    recorded = f"{folder}/{profile.get('id')}" if folder and profile.get("id") else None
    count_restarts(trials, (profile.get("logDir") or recorded) if restarts else None)
    renumbered = renumber(trials)
    return Experiment(profile.get("id", "?"), profile, order(trials), base, renumbered)


def count_restarts(trials: dict[str, Trial], log_dir) -> None:
    """A manager's REST answers carry no events: how often NNI ran a trial again after a
    resume (ADD_RESUMED) is read from its database when it is on this machine, else unknown
    (None: a blank `restarts`, never a 0 that may be false)."""
    db = Path(log_dir) / "db" / "nni.sqlite" if isinstance(log_dir, str) and log_dir else None
    counted: dict[str, int] = {}
    try:
        if db is None or not db.is_file():
            raise ExportError("no database here")
        with opened(db) as conn:
            for trial_id, n in conn.execute(
                "SELECT trialJobId, COUNT(*) FROM TrialJobEvent WHERE event = 'ADD_RESUMED' "
                "GROUP BY trialJobId"
            ):
                counted[trial_id] = int(n)
    except (ExportError, sqlite3.Error, OSError):
        for trial in trials.values():
            trial.restarts = None
        return
    for trial_id, trial in trials.items():
        trial.restarts = counted.get(trial_id, 0)


# ---------------------------------------------------------------- entry point


def find_database(experiment: str, experiment_dir: str | Path | None = None) -> Path:
    path = Path(experiment).expanduser()
    if path.suffix == ".sqlite" or path.is_file():
        return path
    if path.is_dir() and (path / "db" / "nni.sqlite").is_file():
        return path / "db" / "nni.sqlite"
    root = (
        Path(experiment_dir).expanduser()
        if experiment_dir
        else Path(os.environ.get("NNI_EXPERIMENT_DIR", DEFAULT_EXPERIMENT_DIR))
    )
    db = root / experiment / "db" / "nni.sqlite"
    recorded = manifest_entry(experiment).get("logDir") if not experiment_dir else None
    if not db.is_file() and isinstance(recorded, str) and recorded:
        # an id NNI's list of experiments knows, run in another folder (--experiment-dir)
        listed = Path(recorded) / experiment / "db" / "nni.sqlite"
        db = listed if listed.is_file() else db
    if not db.is_file():
        raise ExportError(
            f"experiment {experiment!r} not found: no {db} "
            "(pass --experiment-dir, a path to nni.sqlite, or a manager URL)"
        )
    return db


def add_source_arguments(parser) -> None:
    """The positional EXPERIMENT and --experiment-dir, as every analysis entry point takes them."""
    parser.add_argument("experiment", help="experiment id, path to nni.sqlite, or manager URL")
    parser.add_argument(
        "--experiment-dir",
        help="NNI experiment folder (default ~/nni-experiments, or the folder NNI's list of "
        "experiments records for the id)",
    )


def load_experiment(
    experiment: str, experiment_dir: str | Path | None = None, live: bool | None = None
) -> Experiment:
    """`live`: for a database, whether its manager still runs (None: ask NNI's manifest)."""
    if experiment.startswith(("http://", "https://")):
        return read_rest(experiment)
    return read_sqlite(find_database(experiment, experiment_dir), live)


# ---------------------------------------------------------------- NNI's manifest


def manifest_entry(exp_id: str) -> dict:
    """NNI's record of an experiment in ~/nni-experiments/.experiment ({} when absent)."""
    try:
        entry = json.loads(MANIFEST.read_text()).get(exp_id)
    except (OSError, ValueError):
        return {}
    return entry if isinstance(entry, dict) else {}


def live_manager(exp_id: str) -> tuple[int, int] | None:
    """(pid, port) of a manager process still running `exp_id`, else None."""
    return running_manager(exp_id, manifest_entry(exp_id))


def running_manager(exp_id: str, entry: dict) -> tuple[int, int] | None:
    """(pid, port) of the manager that manifest `entry` names when it still runs `exp_id`:
    not marked STOPPED, and the pid is NNI's main.js for that experiment (not a reused pid)."""
    pid, port = entry.get("pid"), entry.get("port")
    if not isinstance(pid, int) or entry.get("status") == "STOPPED":
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"main.js" not in cmdline or exp_id.encode() not in cmdline:
        return None  # the pid was reused by another process
    return pid, port
