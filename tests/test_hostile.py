"""Files from someone else are data, never code, and never a traceback: a NAS experiment's
database whose trial record carries a pickle (`__nni_obj__`) or a code reference
(`__nni_type__` naming any callable) makes `nnisuite best` refuse in one line, and no payload
runs (its marker file never appears); YAML bombs, keys given twice, deep files, databases
edited by hand, symlinked or empty outputs, names that would leave runs/, names and runs
given twice, flags a command would not use: one line each, nothing written.

Marked slow: each case runs the real command in a process of its own (about 100 processes),
which the quick tests' budget (90 s in one process, what a mutation pass runs per mutant)
cannot hold; `make test` runs them."""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from nnisuite.deploy.best import BestError, choose, nas_model, nas_recipe
from tests.helpers.database import Database

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling it runs `touch MARKER`: what a hostile record would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def record(**changes) -> dict:
    """A NAS trial's parameters as NNI 3.0 records them for nnisuite's depth space."""
    base = {
        "status": "frozen",
        "model_symbol": {"__nni_type__": "path:nnisuite.nas.space.DepthSpace"},
        "model_args": [],
        "model_kwargs": {"in_features": 64, "num_classes": 10, "min_depth": 1, "max_depth": 2,
                         "repeats": 1, "extended": False},
        "evaluator": {
            "__symbol__": "path:nni.nas.evaluator.functional.FunctionalEvaluator",
            "__kwargs__": {
                "function": {"__nni_type__": "path:nnisuite.nas.evaluator.evaluate_architecture"},
                "dataset": "digits", "epochs": 1, "lr": 0.1, "batch_size": 64,
            },
        },
        "sample": {"seed": 0, "depth": 2},
        "__instance_type__": "path:nni.nas.space.space.SimplifiedModelSpace",
    }  # fmt: skip
    return base | changes


def pickled(marker: Path) -> dict:
    return {"__nni_obj__": base64.b64encode(pickle.dumps(Payload(marker))).decode()}


def nas_experiment(tmp_path: Path, parameters: dict):
    from nnisuite.analysis.store import load_experiment

    command = "python3 -m nni.nas.execution.training_service trial"
    config = {"experimentType": "nas", "trialCommand": command, "maxTrialNumber": 1}
    db = Database(tmp_path, "hostile", config)
    db.start(0, "t0", 0, 0, parameters)
    db.metric(100, "t0", 0, "FINAL", {"default": 0.9})
    db.event(200, "t0", "SUCCEEDED", seq=0)
    return load_experiment(str(db.write()), live=False)


def test_an_honest_record_rebuilds_nnisuites_model_space_at_its_sample():
    model = nas_model(record())
    assert type(model).__name__ == "DepthSpace"
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize(
    "where",
    ["model_kwargs", "sample", "model_args", "evaluator", "model_symbol"],
)
def test_a_pickle_anywhere_in_the_record_is_refused_and_never_runs(tmp_path, where):
    marker = tmp_path / "marker"
    bad = pickled(marker)
    changes = {
        "model_kwargs": {"model_kwargs": record()["model_kwargs"] | {"in_features": bad}},
        "sample": {"sample": {"seed": 0, "depth": bad}},
        "model_args": {"model_args": [bad]},
        "evaluator": {"evaluator": {"__kwargs__": {"dataset": "digits", "lr": bad}}},
        "model_symbol": {"model_symbol": bad},
    }[where]
    exp = nas_experiment(tmp_path, record(**changes))
    with pytest.raises(BestError, match="refused"):
        nas_recipe(choose(exp), epochs=1, restore_best=False, data_dir=None)
    assert not marker.exists()


@pytest.mark.parametrize("symbol", ["path:subprocess.call", "path:os.system", "path:builtins.eval"])
def test_a_model_space_that_is_not_nnisuites_is_refused(tmp_path, symbol):
    exp = nas_experiment(tmp_path, record(model_symbol={"__nni_type__": symbol}))
    with pytest.raises(BestError, match="not one of nnisuite's"):
        nas_recipe(choose(exp), epochs=1, restore_best=False, data_dir=None)


def test_the_command_refuses_a_hostile_database_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    exp = nas_experiment(tmp_path, record(sample={"seed": 0, "depth": pickled(marker)}))
    db = tmp_path / exp.id / "db" / "nni.sqlite"
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "nnisuite.deploy.best", str(db), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "refused" in lines[0], proc.stderr
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_an_experiment_name_is_one_path_component_of_the_default_export(tmp_path):
    from nnisuite.study.run import default_out

    for name in ("../../../../elsewhere/escaped", "a/b", "/abs", "..", "", None, "x\\y\n"):
        out = Path(default_out(name, "abc123"))
        assert out.parent == Path("runs") and ".." not in out.parts, (name, out)
        assert out.name.endswith("-abc123") and "/" not in out.name and "\\" not in out.name
    assert default_out("mlp_tpe digits", "id") == "runs/mlp_tpe_digits-id"
    assert default_out("Größe", "id") == "runs/Größe-id"


@pytest.mark.parametrize(
    "argv",
    [
        ["nnisuite.analysis.export", "x", "--out", ""],
        ["nnisuite.analysis.compare", "a", "b", "--out", ""],
        ["nnisuite.study.run", "mlp_tpe_digits", "--out", " "],
        ["nnisuite.trials.mlp", "--epochs", "1", "--out", ""],
        ["nnisuite.analysis.attention", "--out", ""],
        ["nnisuite.deploy.best", "x", "--out="],
    ],
    ids=["export", "compare", "run", "trial", "attention", "best"],
)
def test_an_empty_out_is_refused_not_read_as_the_current_folder(tmp_path, argv):
    done = subprocess.run(
        [sys.executable, "-P", "-m", *argv], capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert done.returncode == 2 and "--out" in last and "empty path" in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    nested = "\n".join("      " + line for line in lines)
    return (
        "searchSpace:\n  x:\n    _type: choice\n    _value: [1, 2]\n    junk:\n"
        f"{nested}\ntrialCommand: python3 train.py\n"
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (billion_laughs().encode(), "aliases expand to more than 1,000,000 values"),
        (b"maxTrialNumber: 2\ntrialConcurrency: 1\nmaxTrialNumber: 500\n",
         "line 3: key 'maxTrialNumber' given twice (first at line 1)"),
        (b"searchSpace:\n  x: {_type: choice, _value: [1]}\n  x: {_type: choice, _value: [2]}\n",
         "key 'x' given twice"),
        (b"\xff\xfe\x00maxTrialNumber: 2\n", "not UTF-8 text (byte 0)"),
    ],
    ids=["billion-laughs", "duplicate-key", "duplicate-space-name", "binary"],
)  # fmt: skip
def test_a_hostile_yaml_is_one_line_at_once(tmp_path, content, said):
    """Read by every command that takes an experiment, plan or space file (load_yaml): one
    line, exit 2; the bomb is counted on the parsed node graph, never expanded (it took 16 s and
    715 MB, and one level more exhausted the memory)."""
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    for module in ("nnisuite.config.validate", "nnisuite.study.run"):
        done = subprocess.run(
            [sys.executable, "-P", "-m", module, str(path)],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and said in lines[0], done.stderr[-2000:]


def test_deep_files_are_one_line_never_a_recursion_traceback(tmp_path):
    """A space nested 200 levels (a RecursionError in validate), a trial of a 60,000-term sum
    (RecursionError in Python's own parser) or 200,000 unary minuses (MemoryError): one line
    each; the scan says what it could not read."""
    import json

    space = {"_type": "choice", "_value": [1]}
    for i in range(200):
        space = {"_type": "choice", "_value": [{"_name": f"b{i}", "inner": space}]}
    base = {
        "trialCodeDirectory": ".",
        "trialConcurrency": 1,
        "tuner": {"name": "TPE"},
        "trainingService": {"platform": "local"},
    }
    (tmp_path / "deep.yml").write_text(
        json.dumps({**base, "searchSpace": {"x": space}, "trialCommand": "python3 sum.py"})
    )
    head = "import nni\np = nni.get_next_parameter()\nx = "
    (tmp_path / "sum.py").write_text(head + "+".join(["1"] * 60000) + "\n")
    (tmp_path / "minus.py").write_text(head + "-" * 200000 + "1\n")
    flat = {"x": {"_type": "choice", "_value": [1]}}
    for trial in ("sum", "minus"):
        config = {**base, "searchSpace": flat, "trialCommand": f"python3 {trial}.py"}
        (tmp_path / f"{trial}.yml").write_text(json.dumps(config))
    said = {}
    for name in ("deep", "sum", "minus"):
        done = subprocess.run(
            [sys.executable, "-P", "-m", "nnisuite.config.validate", f"{name}.yml"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr[-1500:]
        said[name] = (done.returncode, done.stderr)
    assert said["deep"][0] == 2 and "nested more than 100 levels deep" in said["deep"][1]
    for trial in ("sum", "minus"):
        code, text = said[trial]
        assert code == 0 and "cannot be read as Python (nested too deeply" in text, text


def test_outputs_replace_a_planted_symlink_never_write_through_it(tmp_path):
    """A folder from someone else with `metrics.json` and `attention_mqa.png` linking to a file
    of yours: the trial and the attention maps replace the links; your file is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    out = tmp_path / "shared"
    out.mkdir()
    for name in ("metrics.json", "loss.png", "attention_mqa.png", "compare.md"):
        (out / name).symlink_to(victim)
    runs = [
        ["nnisuite.trials.mlp", "--dataset", "digits", "--epochs", "1", "--out", str(out)],
        ["nnisuite.analysis.attention", "--variants", "mqa", "--out", str(out)],
    ]
    for argv in runs:
        done = subprocess.run(
            [sys.executable, "-P", "-m", *argv], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert victim.read_text() == "mine\n"
    for name in ("metrics.json", "loss.png", "attention_mqa.png"):
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0, name
    assert (out / "compare.md").is_symlink()  # a name nothing wrote stays as it was


def test_repeated_names_and_runs_are_refused_not_counted_twice(tmp_path):
    """`repeat --variants random,random` ran each seed twice as two runs (SE 0); `--variants ,`
    was an IndexError; a plan whose base is itself a RecursionError; `compare --group a=X
    --group a=X` merged the groups; a run given twice in a group counted twice; one group
    compared nothing. Each is one line and exit 2, before anything runs."""
    plan = tmp_path / "self.yml"
    plan.write_text("base: self.yml\nvariants:\n  a: {tuner: {name: Random}}\n")
    other = tmp_path / "loop.yml"
    other.write_text("base: self.yml\nvariants:\n  a: {tuner: {name: Random}}\n")
    shipped = "tuners_digits"
    cases = [
        (["nnisuite.study.repeat", shipped, "--out", "o", "--variants", "random,random"],
         "given twice"),
        (["nnisuite.study.repeat", shipped, "--out", "o", "--variants", ","], "name one or more"),
        (["nnisuite.study.repeat", str(plan), "--out", "o"], "is this plan itself"),
        (["nnisuite.study.repeat", str(other), "--out", "o"], "is a plan itself"),
        (["nnisuite.analysis.compare", "--group", "a=x,y", "--group", "a=z,w", "--out", "o"],
         "a second group named 'a'"),
        (["nnisuite.analysis.compare", "--group", "a=x,x", "--group", "b=z", "--out", "o"],
         "['x'] given twice"),
        (["nnisuite.analysis.compare", "--group", "a=x,y", "--out", "o"], "two or more groups"),
    ]  # fmt: skip
    for argv, said in cases:
        done = subprocess.run(
            [sys.executable, "-P", "-m", *argv],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and said in lines[0], (argv, done.stderr)
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("module", "said"),
    [
        ('class T:\n    def __init__(self, x=1):\n        pass\nraise RuntimeError("boom")\n',
         "raised RuntimeError: boom (at "),
        ("class T(\n", "raised SyntaxError: "),
        ("import sys\nsys.exit(3)\n", "raised SystemExit: 3"),
    ],
    ids=["raises", "syntax", "exits"],
)  # fmt: skip
def test_a_custom_tuner_that_fails_to_import_is_one_line_at_its_file(tmp_path, module, said):
    (tmp_path / "mine.py").write_text(module)
    (tmp_path / "t.py").write_text("import nni\np = nni.get_next_parameter()\nprint(p['x'])\n")
    (tmp_path / "x.yml").write_text(
        "searchSpace: {x: {_type: choice, _value: [1]}}\ntrialCommand: python3 t.py\n"
        "trialConcurrency: 1\ntuner: {className: mine.T, codeDirectory: ., classArgs: {x: 2}}\n"
        "trainingService: {platform: local}\n"
    )
    done = subprocess.run(
        [sys.executable, "-P", "-m", "nnisuite.config.validate", "x.yml"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(errors) == 1 and said in errors[0] and "mine.py:" in errors[0], errors


def test_the_dashboards_flags_are_checked_before_the_study_is_written(tmp_path):
    """--port / --host without --dashboard were ignored; an empty host bound every interface;
    ::1 (optuna-dashboard binds IPv4 only), an address of another machine, a name, a taken port
    or an in-memory storage failed only after the study was written."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    db = tmp_path / "o.db"
    storage = f"sqlite:///{db}"
    cases = [
        (["--port", "9000"], "add --dashboard"),
        (["--host", "127.0.0.1"], "add --dashboard"),
        (["--dashboard", "--host", ""], "not an IP address"),
        (["--dashboard", "--host", "::1"], "IPv4 only"),
        (["--dashboard", "--host", "192.0.2.250"], "not an address of this machine"),
        (["--dashboard", "--host", "example.org"], "not an IP address"),
        (["--dashboard", "--port", port], "cannot listen there"),
        (["--dashboard", "--storage", "sqlite:///:memory:"], "in memory"),
    ]
    try:
        for flags, said in cases:
            given = ["--storage", storage] if "--storage" not in flags else []
            argv = ["nnisuite.analysis.optuna", "missing-experiment", *given, *flags]
            done = subprocess.run(
                [sys.executable, "-P", "-m", *argv],
                capture_output=True, text=True, timeout=120, cwd=tmp_path,
            )  # fmt: skip
            last = done.stderr.strip().splitlines()[-1]
            assert done.returncode == 2 and said in last, (flags, done.stderr)
            assert not db.exists()  # checked before the experiment is even read
    finally:
        taken.close()


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ("UPDATE ExperimentProfile SET params = 'not json'", "params is not a JSON object"),
        ("UPDATE ExperimentProfile SET params = '[1, 2]'", "params is not a JSON object"),
        ("UPDATE ExperimentProfile SET startTime = 'soon'", "table ExperimentProfile, row 1"),
        ("UPDATE TrialJobEvent SET sequenceId = 'abc'", "table TrialJobEvent, row 1: sequenceId"),
        ("UPDATE TrialJobEvent SET timestamp = 'yesterday'", "TrialJobEvent, row 1: timestamp"),
        ("UPDATE MetricData SET timestamp = 'noon'", "table MetricData, row 1: timestamp"),
        ("UPDATE MetricData SET sequence = 'x'", "table MetricData, row 1: sequence"),
    ],
    ids=["params-text", "params-list", "start", "sequence", "event-time", "metric-time", "step"],
)
def test_a_database_edited_by_hand_is_one_line_naming_table_and_row(tmp_path, edit, said):
    import sqlite3

    from tests.helpers.database import Database

    config = {
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 t.py",
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
    }
    db = Database(tmp_path, "edited", config)
    db.start(0, "A", 0, 0, {"x": 0.1})
    db.metric(50, "A", 0, "FINAL", 0.5)
    db.event(60, "A", "SUCCEEDED", seq=0)
    with sqlite3.connect(db.write()) as conn:
        conn.execute(edit)
    for command in (["nnisuite.analysis.export", "--out", "o"],
                    ["nnisuite.analysis.optuna", "--storage", f"sqlite:///{tmp_path / 's.db'}"],
                    ["nnisuite.study.run", "--resume"]):  # fmt: skip
        module, *flags = command
        done = subprocess.run(
            [sys.executable, "-P", "-m", module, *flags, "edited", "--experiment-dir",
             str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and "Traceback" not in done.stderr, (module, done.stderr)
        assert said in lines[-1], (module, done.stderr)


@pytest.mark.parametrize(
    "argv",
    [
        ["nnisuite.nas", "--data-dir", "/nonexistent/data", "--out", "o"],
        ["nnisuite.deploy.best", "x", "--data-dir", "/nonexistent/data", "--out", "o"],
        ["nnisuite.trials.mlp", "--dataset", "fashion-mnist", "--data-dir", "EMPTY"],
    ],
    ids=["nas", "best", "trial-empty-folder"],
)
def test_a_data_folder_that_is_not_there_is_refused_not_recorded(tmp_path, argv):
    """A folder asked for is used or refused: nas and best accepted and recorded a folder
    that does not exist; a trial given an empty one trained on the system's copy."""
    (tmp_path / "EMPTY").mkdir()
    done = subprocess.run(
        [sys.executable, "-P", "-m", *argv], capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "data" in done.stderr.strip().splitlines()[-1], done.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--optimizer", "adam", "--momentum", "0.9"], "Adam has none"),
        (["--seed", "99999999999999999999"], "0..2**32-1"),
        (["--space", "attention", "--min-depth", "2", "--max-depth", "2"], "its own"),
        (["--strategy", "random-oneshot", "--port", "9999"], "--port: a one-shot search"),
        (["--strategy", "darts", "--concurrency", "3", "--max-trials", "7"],
         "--concurrency, --max-trials: a one-shot search"),
    ],
    ids=["adam-momentum", "huge-seed", "attention-depth", "oneshot-port", "oneshot-trials"],
)  # fmt: skip
def test_nas_refuses_flags_it_would_not_use(tmp_path, flags, said):
    """Each was accepted (and recorded in settings.json as if used) or a ValueError traceback."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "nnisuite.nas", *flags, "--out", "o"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and said in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--images=5"], "give --model too"),
        (["--imag", "5"], "give --model too"),
        (["--model", "m.pt", "--heads", "4", "--seed", "3"], "--heads, --seed shape the"),
        (["--seed", "100000000000000000000000"], "--seed must be in 0..2**32-1"),
    ],
    ids=["images=", "prefix", "model-and-shape", "huge-seed"],
)
def test_attention_refuses_flags_it_would_not_use(tmp_path, flags, said):
    """`--images=5` / `--imag 5` without --model were ignored (only the literal --images was
    looked for), the shape flags with --model too; a huge seed failed after writing."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", "nnisuite.analysis.attention", "--out", "o", *flags],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and said in done.stderr.strip().splitlines()[-1], done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["nnisuite.study.run", "mlp_tpe_digits", "--max-trials", "2", "--max-trials=500"],
        ["nnisuite.study.run", "mlp_tpe_digits", "--max-trials", "2", "--max", "500"],
        ["nnisuite.trials.mlp", "--epochs", "1", "--epochs=3"],
        ["nnisuite.analysis.export", "x", "--out", "a", "--out", "b"],
        ["nnisuite.nas", "--seed", "1", "--seed", "2"],
        ["nnisuite.config.validate", "mlp_tpe_digits", "--help", "--help"],
    ],
    ids=["run-equals", "run-prefix", "trial", "export", "nas", "help-twice"],
)
def test_a_flag_given_twice_is_an_error_not_the_last_one(tmp_path, argv):
    """argparse keeps the last (`--max-trials 2 ... --max-trials=500` ran 500); --help may
    repeat."""
    done = subprocess.run(
        [sys.executable, "-P", "-m", *argv], capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )  # fmt: skip
    if argv[-1] == "--help":
        assert done.returncode == 0 and "usage:" in done.stdout
        return
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and "given twice (first as" in last, done.stderr[-1500:]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_a_pickle_in_a_managers_rest_answer_never_runs(tmp_path):
    """A database whose trial parameters and final carry `__nni_obj__` pickles, served by a
    real NNI manager (view mode): export, optuna and best read the REST answers as data; the
    payload's marker never appears."""
    from tests.helpers.nni import viewing

    marker = tmp_path / "marker"
    config = {
        "searchSpace": {"x": {"_type": "choice", "_value": [1]}},
        "trialCommand": "python3 t.py",
        "trialConcurrency": 1,
        "tuner": {"name": "Random"},
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path),
    }
    db = Database(tmp_path, "served", config)
    db.start(0, "t0", 0, 0, {"x": pickled(marker), "y": {"nested": pickled(marker)}})
    db.metric(100, "t0", 0, "FINAL", {"default": 0.9, "extra": pickled(marker)})
    db.event(200, "t0", "SUCCEEDED", seq=0)
    db.write()
    with viewing(tmp_path, "served") as (_, port):
        url = f"http://127.0.0.1:{port}"
        for argv in (
            ["nnisuite.analysis.export", url, "--out", str(tmp_path / "o")],
            ["nnisuite.analysis.optuna", url, "--storage", f"sqlite:///{tmp_path / 's.db'}"],
            ["nnisuite.deploy.best", url, "--out", str(tmp_path / "b")],
        ):
            done = subprocess.run(
                [sys.executable, "-P", "-m", *argv], capture_output=True, text=True, timeout=300
            )
            assert "Traceback" not in done.stderr, (argv, done.stderr[-2000:])
            assert not marker.exists(), argv
    assert "x.__nni_obj__" in (tmp_path / "o" / "trials.csv").read_text()  # shown as data


def test_a_pickle_in_a_weights_file_never_runs(tmp_path):
    """A model file from someone else (`attention --model`, a PBT checkpoint handed to a trial)
    is read with torch.load(weights_only=True): a pickled payload is refused, never run."""
    import torch

    from nnisuite.trials.engine import load_checkpoint

    marker = tmp_path / "marker"
    evil = tmp_path / "model.pt"
    torch.save({"model": Payload(marker)}, evil)
    done = subprocess.run(
        [sys.executable, "-P", "-m", "nnisuite.analysis.attention", "--model", str(evil),
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    net = torch.nn.Linear(2, 2)
    with pytest.raises(Exception, match="(?i)weights only|unpickl"):
        load_checkpoint(str(tmp_path), net, None, torch.Generator())
    assert not marker.exists()


def test_a_python_tag_in_a_yaml_never_runs(tmp_path):
    """PyYAML's unsafe loader would run `!!python/object/apply:`: every command that reads an
    experiment, plan or NAS settings file uses the safe one (load_yaml); one line, no marker."""
    marker = tmp_path / "marker"
    payload = f'!!python/object/apply:subprocess.call [["touch", "{marker}"]]'
    (tmp_path / "x.yml").write_text(f"trialCommand: {payload}\nmaxTrialNumber: 1\n")
    for argv in (
        ["nnisuite.config.validate", "x.yml"],
        ["nnisuite.study.run", "x.yml"],
        ["nnisuite.study.repeat", "x.yml", "--out", "o"],
        ["nnisuite.nas", "--config", "x.yml", "--out", "o"],
    ):
        done = subprocess.run(
            [sys.executable, "-P", "-m", *argv], capture_output=True, text=True, timeout=120,
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr, (argv, done.stderr)
        assert not marker.exists(), argv
