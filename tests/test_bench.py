"""bench/run.py in its tiny mode: it runs end to end and writes the documented JSON fields."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_tiny_writes_results(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--tiny", "--no-torch"]
    cmd += ["--sections", "step,sampling", "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    keys = ("machine", "versions", "xla_flags", "glibc_tunables", "settings", "train_step")
    for key in (*keys, "peak_rss_mib"):
        assert key in res
    assert res["machine"]["cores"] >= 1
    assert res["torch_skipped"] == "--no-torch"
    (step,) = res["train_step"]
    assert (step["size"], step["batch"], step["width"], step["dtype"]) == (32, 8, 8, "float32")
    assert step["img_per_s"] > 0 and step["compile_s"] > 0 and step["peak_rss_mib"] > 0
    assert isinstance(step["page_faults_per_step"], int)  # measured, not left out
    assert isinstance(step["system_s_per_step"], float)
    assert res["sampling"]["img_per_s"] > 0
    assert "| train step |" in proc.stdout
