"""benchmarks/gpu_check.py (the gpu suite) runs end to end at tiny sizes on the CPU, so it is
ready the day a GPU machine is lent (CI has none), and writes its result as an envelope."""

from __future__ import annotations

import json


def test_gpu_check_smoke_run_on_cpu(tmp_path, bench):
    mod = bench("gpu_check")
    out = tmp_path / "gpu.json"
    got = mod.main(["--device", "cpu", "--tiny", "--out", str(out)], command="smoke")
    env = json.loads(out.read_text())
    assert (env["suite"], env["variant"], env["command"]) == ("gpu", "gpu_check", "smoke")
    res = env["data"]
    assert res == json.loads(json.dumps(got))
    for step in ("cuda_tests", "training", "propagation", "softmax"):
        assert "error" not in res[step], res[step]
    assert res["cuda_tests"]["ok"]
    assert set(res["training"]) >= {"amp=false", "amp=true"}
    assert res["training"]["amp=false"]["valid_NDCG@10"] > 0
    assert res["softmax"]["chunk"] > 0 and res["softmax"]["max_abs_diff"] < 1e-4
