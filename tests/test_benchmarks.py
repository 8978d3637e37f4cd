"""The benchmark harnesses run end to end in their quick modes (speed is not asserted here:
targets live in the benchmarks' own output)."""

import json

import pytest

from benchmarks import epoch, study


@pytest.mark.slow
def test_epoch_benchmark_quick(tmp_path):
    epoch.main(["--out", str(tmp_path), "--quick"])
    result = json.loads((tmp_path / "bench.json").read_text())
    for key in (
        "seed_train_s",
        "ours_train_s",
        "train_speedup",
        "seed_eval_s",
        "ours_eval_s",
        "eval_speedup",
        "sgemm_gflops",
        "ours_startup_s",
        "seed_startup_s",
    ):
        assert result[key] > 0, key
    assert {(c["batch_size"], tuple(c["widths"])) for c in result["configs"]} == {
        (b, w) for b in (32, 64, 256) for w in ((128, 256), (1024, 1024))
    }
    assert all(c["gflops"] > 0 and c["peak_fraction"] > 0 for c in result["configs"])
    assert "| train epoch" in (tmp_path / "bench.md").read_text()


def test_flop_count_of_a_training_step():
    # 784-128-10, batch 2: forward 2*2*(784*128 + 128*10); backward: weights the same again,
    # inputs the same minus the first layer's
    forward = 2 * 2 * (784 * 128 + 128 * 10)
    assert epoch.step_flops(2, [784, 128, 10]) == 3 * forward - 2 * 2 * 784 * 128


@pytest.mark.slow
@pytest.mark.integration
def test_study_benchmark_quick(tmp_path):
    study.main(["--out", str(tmp_path), "--quick"])
    result = json.loads((tmp_path / "study.json").read_text())
    systems = [r["system"] for r in result["runs"]]
    assert systems == [
        "Optuna (in-process TPE)",
        "NNI + warm launcher",
        "NNI, process per trial",
        study.REPLAY,
    ]
    for row in result["runs"]:
        assert row["trials"] == 3 and 0 < row["best"] <= 1 and row["wall_s"] > 0
        assert 0 < row["train_s"] < row["wall_s"] * row["concurrency"]
    nni, replay = result["runs"][1], result["runs"][3]
    assert nni["best"] == replay["best"]  # the same trials, trained with the same seeds
    assert nni["wall_vs_same_trials"] == pytest.approx(nni["wall_s"] / replay["wall_s"])
