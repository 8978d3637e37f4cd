"""The benchmark harnesses run end to end in their quick modes (speed is not asserted here:
targets live in the benchmarks' own output)."""

import json

import pytest

from nnisuite.benchmarks import epoch, study


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
        assert row["trials"] == 2 and 0 < row["best"] <= 1 and row["wall_s"] > 0
        assert 0 < row["train_s"] < row["wall_s"] * row["concurrency"]
    nni, replay = result["runs"][1], result["runs"][3]
    assert nni["best"] == replay["best"]  # the same trials, trained with the same seeds
    assert nni["wall_vs_same_trials"] == pytest.approx(nni["wall_s"] / replay["wall_s"])


@pytest.mark.integration
def test_manager_benchmark_quick(tmp_path):
    from nnisuite.benchmarks import manager

    assert manager.main(["--out", str(tmp_path), "--quick"]) == 0
    (row,) = json.loads((tmp_path / "manager.json").read_text())["rows"]
    assert row["concurrency"] == 4 and row["trials"] == row["succeeded"] == 12
    assert row["handover"] == "events"  # nnisuite's default
    assert row["trials_per_min"] == pytest.approx(12 / row["wall_s"] * 60, rel=0.05)
    assert 0 <= row["gap_median_s"] <= row["gap_p90_s"] < row["wall_s"]
    assert row["manager_cpu_s"] > 0 and row["manager_peak_mb"] > 10 and row["database_mb"] > 0
    assert row["rest_trial-jobs_ms"] > 0 and row["rest_metric-data_ms"] > 0
    assert "| 4 | events | 12/12 |" in (tmp_path / "manager.md").read_text()
