"""benchmarks/quality.py: ``summarise`` pairs every run against each reference it is given,
with the two-level bootstrap's difference equal to the mean per-user difference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _run(tmp: Path, name: str, seed: int, ndcg: np.ndarray) -> tuple:
    out = tmp / name.replace(" ", "_") / f"seed{seed}"
    out.mkdir(parents=True)
    pd.DataFrame({"user": np.arange(len(ndcg)), "NDCG@10": ndcg}).to_parquet(
        out / "per_user.parquet"
    )
    m = {"NDCG@10": float(ndcg.mean()), "Hit@10": 0.0, "MRR@10": 0.0}
    metrics = {"test": m, "valid": m}
    (out / "metrics.json").write_text(json.dumps(metrics))
    return (name, seed, out, "x", [], tmp), metrics


def test_summarise_pairs_against_each_reference(tmp_path, bench):
    q = bench("quality")
    rng = np.random.default_rng(0)
    base = rng.random((2, 200))
    offsets = {"a": 0.0, "b": 0.1, "c": 0.3}
    results = [
        _run(tmp_path, n, s, np.clip(base[s] + off, 0, None))
        for n, off in offsets.items()
        for s in range(2)
    ]
    rows, tests = q.summarise(results, reference=("b", "missing", "c"))
    assert [r["model"] for r in rows] == ["a", "b", "c"]
    assert set(tests) == {"b vs a", "b vs c", "c vs a", "c vs b"}
    assert tests["c vs a"]["diff"] == pytest.approx(0.3, abs=1e-9)
    assert tests["b vs c"]["diff"] == pytest.approx(-0.2, abs=1e-9)
    lo, hi = tests["c vs b"]["ci95"]
    assert 0 < lo < 0.2 < hi  # seeds are resampled apart: the interval holds their spread
    # one reference as a plain string still works
    _, one = q.summarise(results, reference="a")
    assert set(one) == {"a vs b", "a vs c"}
