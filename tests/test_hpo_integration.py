"""HPO on real NNI managers: the runner's Python-API path, the shipped YAML through `nnictl
create`, the web UI in a real headless Chromium, and the Medianstop assessor."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from nnisuite.analysis.store import ExportError, load_experiment
from nnisuite.study.manager import watch
from tests.helpers.nni import experiment_config, nnictl, running_experiment_ids
from tests.helpers.paths import REPO

pytestmark = pytest.mark.integration
DIGITS_YAML = REPO / "experiments" / "mlp_tpe_digits.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def digits_study(tmp_path_factory):
    """4 TPE trials, concurrency 2, 2 epochs, left running (for the browser and REST tests)
    until the module ends; the live database is read while trials write to it."""
    from tests.helpers.nni import running_experiment

    tmp = tmp_path_factory.mktemp("hpo")
    config = experiment_config(DIGITS_YAML, tmp, max_trials=4, concurrency=2, epochs=2)
    live_reads, copied_reads = [], []
    with running_experiment(config, wait=False) as (exp, port, _):
        db = Path(config.experiment_working_directory) / exp.id / "db" / "nni.sqlite"

        def read_live_db(_trials):
            if db.exists():
                live_reads.append(load_experiment(str(db)))
                # a user's plain copy taken while the manager writes: exports, or says why
                copy = tmp / f"copy-{len(live_reads)}.sqlite"
                shutil.copyfile(db, copy)
                try:
                    copied_reads.append(len(load_experiment(str(copy)).trials))
                except ExportError as exc:
                    copied_reads.append(str(exc))

        status = watch(
            port, 4, poll_s=0.5, stream=io.StringIO(), timeout_s=300, on_poll=read_live_db
        ).status
        yield {
            "exp": exp,
            "port": port,
            "status": status,
            "live_reads": live_reads,
            "copied_reads": copied_reads,
        }


def test_every_trial_succeeds_with_one_final_and_per_epoch_intermediates(digits_study):
    assert digits_study["status"] == "DONE"
    exp = load_experiment(f"http://127.0.0.1:{digits_study['port']}")
    assert len(exp.trials) == 4
    for trial in exp.trials:
        assert trial.status == "SUCCEEDED"
        assert len(trial.intermediates) == 2  # one per epoch
        assert {"default", "test_accuracy"} <= set(trial.final)
        # what the model costs (nnisuite.models.costs): per-sample latency, a batch amortising the
        # call
        assert trial.final["parameters"] > 0 and trial.final["latency_threads"] >= 1
        assert 0 < trial.final["latency_s_batch256"] < trial.final["latency_s_batch1"] < 1
        assert set(trial.parameters) == {"features1", "features2", "lr", "batch_size"}
    # exactly one FINAL per trial in NNI's own metric store
    rows = json.loads(
        __import__("urllib.request")
        .request.urlopen(f"http://127.0.0.1:{digits_study['port']}/api/v1/nni/metric-data")
        .read()
    )
    for trial in exp.trials:
        assert (
            sum(1 for r in rows if r["trialJobId"] == trial.trial_id and r["type"] == "FINAL") == 1
        )


def test_database_read_while_the_manager_writes(digits_study):
    reads = digits_study["live_reads"]
    assert reads, "the live database was never read during the run"
    counts = [sum(1 for t in e.trials if t.final) for e in reads]
    assert counts == sorted(counts) and counts[-1] <= 4
    assert digits_study["status"] == "DONE"  # reading never broke the manager's writes
    copies = digits_study["copied_reads"]
    assert copies and all(isinstance(c, int) or "not a readable NNI database" in c for c in copies)
    assert any(isinstance(c, int) for c in copies)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium absent: apt-get install chromium")
def test_web_ui_lists_each_trial_in_a_real_browser(digits_study):
    from playwright.sync_api import sync_playwright

    port = digits_study["port"]
    exp = load_experiment(f"http://127.0.0.1:{port}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/detail")
            page.locator(".ms-DetailsRow").first.wait_for(timeout=30_000)
            rows = [
                page.locator(".ms-DetailsRow").nth(i).inner_text()
                for i in range(page.locator(".ms-DetailsRow").count())
            ]
        finally:
            browser.close()
    assert len(rows) == 4
    for trial in exp.trials:
        (row,) = [r for r in rows if f"\n{trial.trial_id}\n" in r]
        assert "SUCCEEDED" in row
        shown = next(line for line in row.splitlines() if line.endswith("(FINAL)"))
        assert float(shown.split()[0]) == pytest.approx(trial.final["default"], abs=1e-6)


def test_shipped_yaml_through_nnictl_create(tmp_path):
    """The file users run is the file tested, through plain `nnictl create`, with smaller
    numbers: experiments/optuna_tpe_digits.yaml (mlp_tpe_digits.yaml's study with Optuna's
    TPE as a custom tuner; the runner's tests run mlp_tpe_digits.yaml itself). Its dispatcher's
    log says what the tuner was told: each trial's final, as NNI stored it."""
    shipped = REPO / "experiments" / "optuna_tpe_digits.yaml"
    raw = yaml.safe_load(shipped.read_text())
    raw.update(
        maxTrialNumber=2,
        experimentWorkingDirectory=str(tmp_path / "nni"),
        searchSpaceFile=str(REPO / "search_spaces" / "mlp_tpe.yaml"),
        trialCodeDirectory=str(REPO),
    )
    raw["tuner"]["codeDirectory"] = str(REPO)
    raw["trialCommand"] = raw["trialCommand"].replace("--epochs 10", "--epochs 1")
    assert raw["trialCommand"] != yaml.safe_load(shipped.read_text())["trialCommand"]
    config = tmp_path / "optuna_tpe_digits.yaml"
    config.write_text(yaml.safe_dump(raw))
    from nnisuite.study.manager import free_port

    port = free_port()
    created = nnictl("create", "--config", str(config), "--port", str(port))
    exp_id = None
    try:
        assert created.returncode == 0, created.stdout + created.stderr
        plain = re.sub(r"\x1b\[[0-9;]*m", "", created.stdout)  # nnictl colours its output
        exp_id = re.search(r"Experiment ID: ([A-Za-z0-9_-]+)", plain).group(1)
        status = watch(port, 2, poll_s=0.5, stream=io.StringIO(), timeout_s=240).status
        exp = load_experiment(f"http://127.0.0.1:{port}")
        assert status == "DONE"
        assert [t.status for t in exp.trials] == ["SUCCEEDED"] * 2
        assert all(len(t.intermediates) == 1 for t in exp.trials)
    finally:
        nnictl("stop", "--port", str(port)) if exp_id is None else nnictl("stop", exp_id)
        time.sleep(0.5)
        assert not exp_id or exp_id not in running_experiment_ids()
    log = (tmp_path / "nni" / exp_id / "log" / "dispatcher.log").read_text()
    told = sorted(json.loads(v)[0] for v in re.findall(r"parameter id \d+ told: (\[.*\])", log))
    assert told == sorted(t.final["default"] for t in exp.trials), log[-2000:]


def test_medianstop_early_stops_bad_trials_not_as_failures(tmp_path):
    """GridSearch in order over one good and three hopeless learning rates, one trial at a
    time, on nnisuite's MLP trial (which dies of NNI's SIGINT, unlike a plain NNI trial:
    test_repeat has that one): Medianstop stops the hopeless trials once the good one finished;
    they show EARLY_STOPPED, not FAILED. Only the good trial trains to the end (6 trials at
    random, before: ~3 of them, 34 s of CPU)."""
    from tests.helpers.nni import running_experiment

    space = {"lr": {"_type": "choice", "_value": [0.3, 1e-6, 2e-6, 3e-6]}}
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    raw = yaml.safe_load((REPO / "experiments" / "mlp_tpe_medianstop.yaml").read_text())
    raw.update(
        searchSpaceFile=str(space_file),
        trialCodeDirectory=str(REPO),
        maxTrialNumber=4,
        trialConcurrency=1,
        experimentWorkingDirectory=str(tmp_path / "nni"),
        tuner={"name": "GridSearch"},
    )
    raw["assessor"]["classArgs"]["start_step"] = 2
    # 200 epochs of ~10 ms: long enough that the assessor's stop (which under load can take a
    # second to arrive) still finds a hopeless trial running; the good trial takes ~2 s
    raw["trialCommand"] = (
        "python3 -m nnisuite.launcher nnisuite.trials.mlp --dataset digits --epochs 200 --threads 1"
    )
    from nnisuite.config.experiment import to_nni_config

    config = to_nni_config(raw, tmp_path / "medianstop.yaml")
    with running_experiment(config, timeout_s=240) as (_exp, port, status):
        exp = load_experiment(f"http://127.0.0.1:{port}")
    assert status == "DONE", [(t.status, t.parameters) for t in exp.trials]
    statuses = [t.status for t in exp.trials]
    assert "FAILED" not in statuses
    assert [t.parameters["lr"] for t in exp.trials] == space["lr"]["_value"]  # in order
    assert statuses[0] == "SUCCEEDED" and len(exp.trials[0].intermediates) == 200
    stopped = [t for t in exp.trials if t.status == "EARLY_STOPPED"]
    assert stopped, statuses
    assert all(t.parameters["lr"] < 1e-5 for t in stopped)  # hopeless trials are cut short
    for t in stopped:
        assert 2 <= len(t.intermediates) < 200 and not t.final
    from nnisuite.study.manager import progress_line

    line, _ = progress_line(exp.trials, 4)
    assert "failed" not in line and "early-stopped" in line
