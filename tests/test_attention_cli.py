"""python -m nnisuite.analysis.attention: one PNG per variant and the size table."""

from nnisuite.analysis import attention


def test_heatmaps_and_sizes(tmp_path, capsys):
    assert attention.main(["--out", str(tmp_path), "--seq-len", "6", "--embed-dim", "64"]) == 0
    out = capsys.readouterr().out
    assert "| MHA | 8 |" in out and "| GQA | 4 |" in out and "| MQA | 1 |" in out
    for variant in ("mha", "gqa", "mqa"):
        png = tmp_path / f"attention_{variant}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000


def test_bad_heads_is_a_clean_error(tmp_path, capsys):
    assert attention.main(["--out", str(tmp_path), "--heads", "8", "--kv-heads", "3"]) == 2
    assert "not divisible" in capsys.readouterr().err
