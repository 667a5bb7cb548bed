"""The quality suite: ``summarise`` pairs every run against each reference it is given (the
two-level bootstrap's difference is the mean per-user difference); the variants set none of
the removed switches; a tiny end-to-end run trains in subprocesses and writes the envelope
of what it measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REMOVED = ("view_align", "view_side", "view_input", "view_gate", "seq_contrast",
           "item_graph_mode", "item_id_dropout", "view_dropout", "view_encoder", "gbce",
           "coarse=")  # fmt: skip


def _run(q, tmp: Path, name: str, seed: int, ndcg: np.ndarray) -> tuple:
    out = tmp / name.replace(" ", "_") / f"seed{seed}"
    out.mkdir(parents=True)
    pd.DataFrame({"user": np.arange(len(ndcg)), "NDCG@10": ndcg}).to_parquet(
        out / "per_user.parquet"
    )
    m = {"NDCG@10": float(ndcg.mean()), "Hit@10": 0.0, "MRR@10": 0.0}
    metrics = {"test": m, "valid": m}
    (out / "metrics.json").write_text(json.dumps(metrics))
    return q.Job(name, seed, out, "x", [], tmp), metrics


def test_summarise_pairs_against_each_reference(tmp_path, bench):
    q = bench("quality.jobs")
    rng = np.random.default_rng(0)
    base = rng.random((2, 200))
    offsets = {"a": 0.0, "b": 0.1, "c": 0.3}
    results = [
        _run(q, tmp_path, n, s, np.clip(base[s] + off, 0, None))
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


def test_no_variant_sets_a_removed_switch(bench):
    quality = bench("quality")
    for dataset, study in [("ml100k", "main"), ("ml1m", "main"), ("tmall", "main"),
                           ("ml100k", "losses"), ("ml100k", "cold")]:  # fmt: skip
        for name, v in quality.variants(dataset, study).items():
            hit = [s for s in v.sets for r in REMOVED if r in s]
            assert not hit, (dataset, study, name, hit)
    ml1m = quality.variants("ml1m", "main")
    assert "graphseq -snapshots" in ml1m and not any("-tag" in n or "-kg" in n for n in ml1m)


def test_jobs_seed_the_trained_variants_only(bench, tmp_path):
    q = bench("quality.jobs")
    ml = bench("quality.movielens")
    jobs = q.jobs_for(ml.ML100K, ["graphseq -snapshots", "pop"], [0, 1, 2], tmp_path,
                      "global_time", {"all": tmp_path / "g"}, ["epochs=3"])  # fmt: skip
    assert [(j.name, j.seed) for j in jobs] == [("graphseq -snapshots", s) for s in range(3)] + [
        ("pop", 0)
    ]
    assert jobs[0].sets == ["split=global_time", "snapshot_scale=false", "epochs=3"]
    assert jobs[0].out == tmp_path / "global_time" / "graphseq_-snapshots" / "seed0"
    assert q.result_base("ml100k", "losses", "global_time") == "ml100k-losses-global_time"
    assert q.result_base("tmall") == "tmall"


def test_quality_suite_end_to_end_on_a_tiny_ml1m_file(tmp_path, bench, capsys):
    """A RecBole atomic file like get_ml1m.sh's (viewing orders only): the suite builds it,
    trains the untrained variants in subprocesses, and the envelope's table is their
    metrics.json; a subset of the variants is tagged partial."""
    rng = np.random.default_rng(0)
    rows = [(u, int(i), 1_000_000 + k) for u in range(1, 61)
            for k, i in enumerate(rng.choice(40, 12, replace=False), 1)]  # fmt: skip
    data = tmp_path / "ml-1m"
    data.mkdir()
    pd.DataFrame(rows, columns=["user_id:token", "item_id:token", "timestamp:float"]).to_csv(
        data / "ml-1m.inter", sep="\t", index=False
    )
    quality = bench("quality")
    argv = ["--dataset", "ml1m", "--data", str(data), "--work", str(tmp_path / "w"),
            "--variants", "pop", "pop +item_graph", "--results", str(tmp_path / "r")]  # fmt: skip
    assert quality.main(argv) == 0
    env = json.loads((tmp_path / "r" / "quality" / "ml1m-partial.json").read_text())
    assert set(env) >= {"suite", "variant", "command", "commit", "env", "data"}
    assert env["suite"] == "quality" and env["variant"] == "ml1m-partial"
    assert env["command"].startswith("python -m benchmarks quality --dataset ml1m")
    assert env["env"]["threads"] == 1 and env["data"]["variants"] == ["pop", "pop +item_graph"]
    table = {r["model"]: r for r in env["data"]["table"]}
    for name in ("pop", "pop +item_graph"):
        run = tmp_path / "w" / "leave_last_out" / name.replace(" ", "_") / "seed0"
        m = json.loads((run / "metrics.json").read_text())
        assert table[name]["seeds"] == 1
        assert table[name]["test NDCG@10"] == pytest.approx(m["test"]["NDCG@10"])
        assert m["protocol"]["test_users"] == 60
    assert "pop +item_graph" in capsys.readouterr().out  # the table, on stdout


def test_quality_suite_refuses_what_it_cannot_run(bench, capsys):
    quality = bench("quality")
    for argv, msg in [(["--study", "cold", "--dataset", "tmall"], "cold study runs on ml100k"),
                      (["--variants", "nope", "--data", "x"], "unknown variants"),
                      (["--dataset", "ml100k"], "--data DIR is required")]:  # fmt: skip
        with pytest.raises(SystemExit) as e:
            quality.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err
