"""Nothing lost, broken on purpose: a disk that fills during a study and during an export, a
database locked by a writer, two runners on one experiment, a port taken, an experiment folder
that cannot be written. Each ends in one line, a documented exit code, and nothing finished lost
or half-written (docs/what-happens-when.md has the table)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nnisuite.analysis.atomic import EXIT_WRITE
from nnisuite.analysis.export import export_experiment
from nnisuite.study.manager import database_kept, resumable
from tests.helpers.database import Database
from tests.helpers.mounts import cannot_mount, fill, tmpfs
from tests.helpers.nni import running_experiment_ids
from tests.helpers.runner import cli, fault_experiment, runner

UNIFORM_X = {"x": {"_type": "uniform", "_value": [0, 1]}}
RANDOM = {"name": "Random", "classArgs": {"seed": 1}}
NO_MOUNT = cannot_mount()
needs_mount = pytest.mark.skipif(NO_MOUNT is not None, reason=f"no tmpfs here: {NO_MOUNT}")


def one_line(proc: subprocess.CompletedProcess, code: int, fragment: str) -> str:
    """The command exited `code` with one `error:` line holding `fragment`, no traceback."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return errors[0]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def small_experiment(root: Path, n: int = 6) -> Path:
    """A finished 6-trial experiment in NNI's schema (no manager needed); returns its db."""
    config = {
        "experimentName": "small",
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 train.py",
        "maxTrialNumber": n,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
    }
    db = Database(root, "small", config)
    for i in range(n):
        db.start(i * 100, f"t{i}", i, i, {"x": i / n})
        db.metric(i * 100 + 10, f"t{i}", i, "PERIODICAL", 0.1, step=0)
        db.metric(i * 100 + 20, f"t{i}", i, "FINAL", 0.5 + i / 20)
        db.event(i * 100 + 30, f"t{i}", "SUCCEEDED", seq=i)
    return db.write()


@pytest.mark.slow
@needs_mount
def test_an_export_into_a_full_disk_changes_nothing_and_says_so(tmp_path):
    db = small_experiment(tmp_path)
    with tmpfs(tmp_path / "disk", size="2m") as disk:
        good = cli("nnisuite.analysis.export", str(db), "--out", str(disk / "exp"))
        assert good.returncode == 0, good.stderr
        before = digests(disk / "exp")
        assert {"trials.csv", "summary.md", "importance_optuna.csv"} <= set(before)
        fill(disk)
        again = cli("nnisuite.analysis.export", str(db), "--out", str(disk / "exp"))
        line = one_line(again, EXIT_WRITE, f"cannot write into {disk / 'exp'}")
        assert "no space left" in line and "as they were" in line
        assert digests(disk / "exp") == before  # the previous export, byte for byte
        fresh = cli("nnisuite.analysis.export", str(db), "--out", str(disk / "new"))
        one_line(fresh, EXIT_WRITE, "no space left")
        assert not (disk / "new").exists() or not any((disk / "new").iterdir())


@pytest.mark.integration
@needs_mount
def test_a_disk_that_fills_during_a_study_stops_it_and_keeps_what_finished(tmp_path):
    space = {"mode": {"_type": "choice", "_value": ["ok", "slow", "fill", "ok"]}}
    yaml_path = fault_experiment(
        tmp_path, space, tuner={"name": "GridSearch"}, max_trials=4, concurrency=1
    )
    with tmpfs(tmp_path / "nni", size="16m") as disk:
        flags = [str(yaml_path), "--experiment-dir", str(disk), "--out", str(tmp_path / "out")]
        with runner(*flags) as r:
            code = r.wait()
        exp_id = r.output.split("experiment ", 1)[1].split(":", 1)[0]
        assert code == EXIT_WRITE, r.output[-3000:]
        assert f"experiment {exp_id} ended: DISK_FULL" in r.output
        assert "kept: 2 trial(s) with a final result" in r.output
        assert "quick_check: ok" in r.output and f"--resume {exp_id}" in r.output
        copy = tmp_path / "copy.sqlite"
        shutil.copyfile(disk / exp_id / "db" / "nni.sqlite", copy)
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finals = conn.execute("SELECT data FROM MetricData WHERE type = 'FINAL'").fetchall()
        assert len(finals) == 2  # the two trials that finished before the disk filled
        trials = pd.read_csv(tmp_path / "out" / "trials.csv")  # --out is on another disk
        assert (trials["status"] == "SUCCEEDED").sum() == 2
        # resuming onto the full disk is refused before anything starts
        again = cli("nnisuite.study.run", "--resume", exp_id, "--experiment-dir", str(disk))
        one_line(again, 2, f"--experiment-dir {disk}: its disk is full")
    assert exp_id not in running_experiment_ids()


def test_an_export_while_a_writer_holds_the_database_reads_what_was_committed(tmp_path):
    db = small_experiment(tmp_path)
    size = db.stat().st_size
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA cache_size = 1")  # its changes spill into the file before commit
        writer.execute("BEGIN EXCLUSIVE")  # a writer mid-transaction: locked, uncommitted rows
        writer.executemany(
            "INSERT INTO MetricData VALUES (?, ?, '9', 'FINAL', 0, '\"0.99\"')",
            [(i, f"u{i}") for i in range(3000)],
        )
        assert db.stat().st_size > size  # the file holds uncommitted pages (the journal, the old)
        result = export_experiment(str(db), tmp_path / "out", plots=False, optuna=False)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert len(trials) == 6 and trials["default"].max() == pytest.approx(0.75)
    assert len(result.experiment.trials) == 6


def test_a_writer_killed_mid_transaction_leaves_a_database_that_is_still_read(tmp_path):
    """A manager SIGKILLed while it writes leaves a hot journal: a read-only connection refuses
    the file; the runner must still find it resumable (CI saw 'nothing to resume' there)."""
    db = small_experiment(tmp_path)
    writer = (
        "import os, signal, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA cache_size = 1'); c.execute('BEGIN EXCLUSIVE')\n"
        "c.executemany(\"INSERT INTO MetricData VALUES (?, ?, '9', 'FINAL', 0, '0.99')\", "
        "[(i, f'u{i}') for i in range(3000)])\n"
        "c.execute('DELETE FROM ExperimentProfile')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", writer, str(db)], check=False)
    assert db.with_name("nni.sqlite-journal").stat().st_size > 0  # hot: the kill was mid-write
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            conn.execute("SELECT COUNT(*) FROM ExperimentProfile").fetchone()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert resumable(tmp_path, "small")  # the committed profile, the deletion rolled back
    assert "6 trial(s) with a final result" in database_kept(tmp_path, "small")
    result = export_experiment(str(db), tmp_path / "out", plots=False, optuna=False)
    assert len(result.experiment.trials) == 6
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # NNI's file left to NNI
    assert db.with_name("nni.sqlite-journal").stat().st_size > 0


@pytest.mark.integration
def test_a_second_runner_on_the_same_experiment_is_refused(tmp_path):
    hold = tmp_path / "release"
    yaml_path = fault_experiment(
        tmp_path, UNIFORM_X, f"--hold {hold}", tuner=RANDOM, max_trials=1, concurrency=1
    )
    with runner(str(yaml_path), "--out", str(tmp_path / "out")) as first:
        first.wait_until(lambda: Path(f"{hold}.started").exists(), what="the trial started")
        manager = first.manager().pid
        exp_id = first.output.split("experiment ", 1)[1].split(":", 1)[0]
        second = cli(
            "nnisuite.study.run", "--resume", exp_id, "--experiment-dir", str(tmp_path / "nni")
        )
        line = one_line(second, 2, f"experiment {exp_id} is being run by another runner")
        assert f"process {first.proc.pid} (" in line and str(yaml_path) in line
        assert first.manager() is not None and first.manager().pid == manager  # untouched
        hold.touch()
        assert first.wait() == 0, first.output[-3000:]
    assert "trials 1/1 done, 1 succeeded" in first.output


def test_a_port_that_is_taken_is_named_with_a_free_one(tmp_path):
    yaml_path = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=1)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cli("nnisuite.study.run", str(yaml_path), "--port", str(port))
    line = one_line(proc, 2, f"port {port} is taken")
    free = int(line.rsplit("--port ", 1)[1].split()[0])
    assert free != port and 0 < free < 65536
    assert "web UI" not in proc.stdout  # nothing started


@needs_mount
def test_an_experiment_folder_that_cannot_be_written_is_refused_before_anything_starts(
    tmp_path,
):
    yaml_path = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=1)
    with tmpfs(tmp_path / "ro", size="1m", read_only=True) as ro:
        proc = cli("nnisuite.study.run", str(yaml_path), "--experiment-dir", str(ro))
        one_line(proc, 2, f"--experiment-dir {ro}: folder not writable")
        assert "web UI" not in proc.stdout
    with tmpfs(tmp_path / "full", size="1m") as full:
        fill(full)
        proc = cli("nnisuite.study.run", str(yaml_path), "--experiment-dir", str(full))
        one_line(proc, 2, f"--experiment-dir {full}: its disk is full")
        assert "web UI" not in proc.stdout
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    proc = cli("nnisuite.study.run", str(yaml_path), "--experiment-dir", str(a_file))
    one_line(proc, 2, "exists and is not a folder")


def test_a_claim_names_its_holder_and_ends_with_it(tmp_path):
    from nnisuite.study.claim import Held, claim, command_line, holder

    assert holder(tmp_path, "abc") is None
    with claim(tmp_path, "abc") as path:
        said = holder(tmp_path, "abc")
        assert f"process {os.getpid()} ({command_line()})" in said
        with pytest.raises(Held, match="being run by another runner"), claim(tmp_path, "abc"):
            pass
        assert holder(tmp_path, "other") is None  # one lock per experiment
    assert holder(tmp_path, "abc") is None and path.read_text() == ""


def test_staged_files_replace_their_namesakes_only_when_all_were_written(tmp_path):
    import errno

    from nnisuite.analysis.atomic import WriteError, staged

    out = tmp_path / "out"
    with staged(out) as stage:
        (stage / "a.csv").write_text("old a")
        (stage / "b.md").write_text("old b")
    with pytest.raises(WriteError, match=r"\(b.md\): no space left on its disk; the files"):
        with staged(out) as stage:
            (stage / "a.csv").write_text("new a")
            raise OSError(errno.ENOSPC, "No space left on device", str(stage / "b.md"))
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.md"]  # no hidden folder left
    assert (out / "a.csv").read_text() == "old a" and (out / "b.md").read_text() == "old b"
