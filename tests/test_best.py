"""nnisuite.deploy.best end to end: a short digits study with --restore-best through NNI, its best
configuration (by validation accuracy) retrained over seeds, the saved model reloaded in a fresh
process that imports nothing of nnisuite and fed the raw test images: exactly the accuracy the
card reports; the card's numbers are the retrain's."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from nnisuite.analysis.store import load_experiment
from nnisuite.trials.data import raw_splits
from tests.helpers.nni import running_experiment_ids
from tests.helpers.paths import REPO
from tests.helpers.runner import cli, runner

# A fresh Python: loads the exported model with torch alone and predicts the raw test images.
RELOAD = """
import json, sys
import numpy as np, torch
model = torch.export.load(sys.argv[1]).module()
z = np.load(sys.argv[2])
with torch.inference_mode():
    pred = model(torch.from_numpy(z["images"])).argmax(dim=1).numpy()
ours = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3].split(",")))
print(json.dumps({"correct": int((pred == z["labels"]).sum()), "n": len(pred), "ours": ours}))
"""
PACKAGES = "trials,models,experiments,launcher,analysis,nnisuite,nas,benchmarks,tests"


@pytest.fixture(scope="module")
def study(tmp_path_factory, shared_launcher):
    """A 3-trial digits study whose trials keep their best validation epoch (forked from the
    test worker's warm launcher)."""
    root = tmp_path_factory.mktemp("best")
    raw = yaml.safe_load((REPO / "experiments" / "mlp_tpe_digits.yaml").read_text())
    raw["trialCommand"] += " --restore-best"
    raw["searchSpaceFile"] = str(REPO / "experiments" / raw["searchSpaceFile"])
    raw["trialCodeDirectory"] = str(REPO)
    config = root / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    nni = root / "nni"
    with runner(
        str(config),
        "--max-trials",
        "3",
        "--concurrency",
        "2",
        "--epochs",
        "5",
        "--experiment-dir",
        str(nni),
        "--out",
        str(root / "export"),
        own_launcher=False,  # the worker's warm launcher: this test is about the model
    ) as r:
        assert r.wait(timeout=300) == 0, r.output[-3000:]
        exp_id = next(p.name for p in nni.iterdir() if not p.name.startswith("."))
    assert exp_id not in running_experiment_ids()
    return root, nni, exp_id


@pytest.mark.integration
def test_the_best_model_is_chosen_on_validation_retrained_saved_and_reloads(study):
    root, nni, exp_id = study
    exp = load_experiment(exp_id, nni)
    done = [t for t in exp.trials if t.status == "SUCCEEDED"]
    assert len(done) == 3
    for t in done:  # --restore-best: every trial ended on its best epoch and said which
        assert 1 <= t.final["restored_epoch"] == t.final["best_epoch"] <= 5, t.final
        assert t.final["default"] == pytest.approx(max(step["default"] for step in t.intermediates))
    chosen = max(done, key=lambda t: t.final["default"])
    out = root / "best"
    proc = cli(
        "nnisuite.deploy.best",
        exp_id,
        "--experiment-dir",
        str(nni),
        "--out",
        str(out),
        "--seeds",
        "3",
        "--epochs",
        "3",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((out / "best.json").read_text())
    assert record["choice"]["trial_id"] == chosen.trial_id  # by validation, never by test
    assert record["choice"]["validation"] == pytest.approx(chosen.final["default"])
    assert record["params"]["restore_best"] is True and record["recipe"]["epochs"] == 3
    for key, value in chosen.parameters.items():
        assert record["params"][key] == pytest.approx(value), key
    runs = record["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    mean = float(np.mean([r["test_accuracy"] for r in runs]))
    assert record["test"][0] == pytest.approx(mean)
    card = (out / "card.md").read_text()
    assert f"test {mean:.4f} +- {np.std([r['test_accuracy'] for r in runs], ddof=1):.4f}" in card
    saved = record["saved"]
    median = sorted(runs, key=lambda r: r["val_accuracy"])[1]
    assert saved["seed"] == median["seed"]
    assert f"**{saved['test_accuracy']:.4f}**" in card and "confusion.png" in card
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert saved["parameters"] > 0 and saved["latency_s_batch1"] > saved["latency_s_batch256"]
    # the saved seed's own training run measured the same test split on the same weights
    assert abs(saved["test_accuracy"] - median["test_accuracy"]) <= 1 / saved["n"]
    # raw test images, as the dataset holds them, for a process that knows nothing of nnisuite
    images, labels = raw_splits("digits", seed=record["splits"]["seed"])[2]
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8)
    np.savez(root / "test.npz", images=images, labels=labels)
    fresh = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            RELOAD,
            str(out / "model.pt2"),
            str(root / "test.npz"),
            PACKAGES,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    result = json.loads(fresh.stdout.splitlines()[-1])
    assert result["ours"] == []  # torch and numpy only
    assert result["n"] == saved["n"] == len(labels)
    assert result["correct"] == saved["correct"]  # exactly the card's accuracy
    assert f"({saved['correct']} of {saved['n']})" in card


@pytest.mark.slow  # 2 s or more in one process: out of the quick run
def test_a_foreign_trial_has_no_best_model_to_retrain(tmp_path):
    from tests.helpers.database import Database

    config = {
        "experimentName": "foreign",
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "trialCommand": "python3 train.py",
        "trialCodeDirectory": str(tmp_path),
        "tuner": {"name": "TPE"},
    }
    db = Database(tmp_path / "nni", "foreignx", config)
    db.start(0, "t0", 0, 0, {"x": 0.5})
    db.metric(5, "t0", 0, "FINAL", {"default": 0.5})
    db.event(6, "t0", "SUCCEEDED", seq=0)
    path = db.write()
    proc = cli("nnisuite.deploy.best", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "retrains nnisuite's own trials" in proc.stderr
    assert not (tmp_path / "out" / "card.md").exists()


def test_the_choice_is_the_highest_validation_never_the_highest_test(tmp_path):
    """The log tuned on its test set; nnisuite chooses on validation and only records test.
    Two trials whose validation and test disagree: the first (0.95 / 0.90) is the best model,
    not the second (0.93 / 0.97)."""
    from nnisuite.deploy.best import choose
    from tests.helpers.database import Database

    config = {
        "searchSpace": {"lr": {"_type": "choice", "_value": [0.1, 0.01]}},
        "trialCommand": "python3 -m nnisuite.launcher nnisuite.trials.mlp --epochs 2",
        "trialCodeDirectory": str(REPO),
        "maxTrialNumber": 2,
        "tuner": {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}},
    }
    db = Database(tmp_path, "split", config)
    for i, (val, test) in enumerate([(0.95, 0.90), (0.93, 0.97)]):
        db.start(i * 1000, f"t{i}", i, i, {"lr": [0.1, 0.01][i]})
        db.metric(i * 1000 + 200, f"t{i}", i, "FINAL", {"default": val, "test_accuracy": test})
        db.event(i * 1000 + 300, f"t{i}", "SUCCEEDED", seq=i)
    chosen = choose(load_experiment(str(db.write()), live=False))
    assert (chosen.trial_id, chosen.validation, chosen.test) == ("t0", 0.95, 0.90)
    assert chosen.parameters == {"lr": 0.1}


def test_the_exported_model_sees_raw_images_as_the_trial_saw_its_inputs(tmp_path):
    """The saved model takes raw uint8 images and standardises them with the training split's
    statistics, as the trial's data did: its logits on the raw test images equal the in-memory
    model's on the trial's tensors (a swapped mean and std changes them while accuracy counts
    can stay the same)."""
    import torch

    from nnisuite.deploy.best import deployable, export, load
    from nnisuite.models.mlp import MLP
    from nnisuite.trials.data import load_dataset

    data = load_dataset("digits")
    torch.manual_seed(0)
    model = MLP(data.num_features, [32], data.num_classes).eval()
    path = tmp_path / "model.pt2"
    export(deployable(model, data), data.image_shape, path)
    raw = torch.from_numpy(raw_splits("digits")[2][0])
    with torch.no_grad():
        loaded, in_memory = load(path)(raw), model(data.test_x)
    assert torch.allclose(loaded, in_memory, atol=1e-4), (loaded - in_memory).abs().max()
