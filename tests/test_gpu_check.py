"""benchmarks/gpu_check.py runs end to end at tiny sizes on the CPU, so it is ready the day a
GPU machine is lent (CI has none)."""

from __future__ import annotations

import json


def test_gpu_check_smoke_run_on_cpu(tmp_path, bench):
    mod = bench("gpu_check")
    out = tmp_path / "gpu.json"
    mod.main(["--device", "cpu", "--tiny", "--out", str(out)])
    res = json.loads(out.read_text())
    for step in ("cuda_tests", "training", "propagation", "softmax"):
        assert "error" not in res[step], res[step]
    assert res["cuda_tests"]["ok"]
    assert set(res["training"]) >= {"amp=false", "amp=true"}
    assert res["training"]["amp=false"]["valid_NDCG@10"] > 0
    assert res["softmax"]["chunk"] > 0 and res["softmax"]["max_abs_diff"] < 1e-4
