"""bench.py runs end to end and reports every figure it promises (how fast is its own business:
speed is measured by the benchmark, never by timed tests)."""
import json
import os
import subprocess
import sys

from conftest import ROOT



def test_bench_prints_the_table_and_writes_the_json_keys(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "bench.py"), "--shapes=a", "--repeats=1", "--iters=6",
                             "--num_stories=1500", "--new_tokens=8", "--nanogpt=", f"--json_out={tmp_path / 'b.json'}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for heading in ("training:", "sampling:", "prepare:"):
        assert heading in result.stdout
    figures = json.loads((tmp_path / "b.json").read_text())
    for key in ("device", "dtype", "train_a_tokens_per_s", "train_a_mfu", "sample_b_kv_tokens_per_s",
                "sample_b_nocache_tokens_per_s", "encode_mb_per_s", "tiktoken_mb_per_s", "bpe_train_s"):
        assert key in figures, key
    # figures in the units the table claims: a unit slip (FLOPs vs TFLOPs, bytes vs MB) lands far outside these
    assert figures["train_a_tokens_per_s"] > 100 and 0.01 < figures["train_a_mfu"] <= 1.0
    assert 0.05 < figures["peak_tflops"] < 5000
    assert 0.1 < figures["encode_vs_limit"] < 1.5 and figures["encode_mb_per_s"] > 0.5
    assert figures["sample_b_kv_tokens_per_s"] > figures["sample_b_nocache_tokens_per_s"] / 2
    assert 256 < figures["bpe_vocab"] <= 4096 and figures["device"] == "cpu"
    assert f"{figures['train_a_tokens_per_s']:,.0f}" in result.stdout  # the table shows the figure the JSON has
