"""The CLI contract: pure JSON on stdout, one-line errors with exit 2, recommend/export."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.training.trainer import Trainer


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "graphseq", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def run_dir(small_graph_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gs"
    cfg = TrainConfig(
        graph=str(small_graph_dir), model="graphseq", epochs=2, max_seq_len=30, eval_every=1
    )
    Trainer(cfg, out, progress=False).fit()
    return out


def test_train_json_and_set_parsing(small_graph_dir, tmp_path):
    res = _cli(
        "train",
        "--graph",
        small_graph_dir,
        "--model",
        "mf",
        "--out",
        tmp_path / "r",
        "--set",
        "epochs=2",
        "lr=0.01",
        "--set",
        "seed=1",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)  # stdout is exactly one JSON document
    assert m["epochs"] == 2 and m["protocol"]["ranking"] == "full"
    # where the run went and its best epoch, for a person, on stderr
    assert f"run written to {(tmp_path / 'r').resolve()}" in res.stderr
    assert (
        f"best epoch {m['best_epoch']} of 2 (valid NDCG@10 {m['valid']['NDCG@10']:.4f})"
        in res.stderr
    )
    cfg = (tmp_path / "r" / "config.yaml").read_text()
    assert "lr: 0.01" in cfg and "seed: 1" in cfg and str(small_graph_dir.resolve()) in cfg


def test_unknown_config_key_lists_valid_keys(small_graph_dir, tmp_path):
    res = _cli("train", "--graph", small_graph_dir, "--out", tmp_path / "r", "--set", "epoch=2")
    assert (
        res.returncode == 2
        and "unknown config key 'epoch'" in res.stderr
        and "epochs" in res.stderr
    )
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
    bad = tmp_path / "c.yaml"
    bad.write_text("lr: fast\n")
    res = _cli("train", "--graph", small_graph_dir, "--out", tmp_path / "r", "--config", bad)
    assert res.returncode == 2 and "c.yaml" in res.stderr and "'lr' must be float" in res.stderr


def test_evaluate_matches_training_metrics(run_dir):
    res = _cli("evaluate", "--run", run_dir, "--json")
    assert res.returncode == 0, res.stderr
    saved = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert json.loads(res.stdout) == pytest.approx(saved, abs=1e-9)


def test_recommend_users_json_excludes_history(run_dir):
    res = _cli("recommend", "--run", run_dir, "--users", "u1", "u2", "-k", "5", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == {"u1", "u2"} and all(len(v) == 5 for v in out.values())
    run = load_run(run_dir)
    ev, ids = run.ev, run.id_maps
    u = ids["user"].get_loc("u1")
    bought = set(ids["item"][ev.item[(ev.user == u) & ev.is_target].numpy()])
    assert not bought & {r["item"] for r in out["u1"]}
    scores = [r["score"] for r in out["u1"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_unknown_user_and_fallback(run_dir):
    res = _cli("recommend", "--run", run_dir, "--users", "nobody", "--json")
    assert res.returncode == 2 and "unknown user ids" in res.stderr and res.stdout == ""
    res = _cli(
        "recommend",
        "--run",
        run_dir,
        "--users",
        "nobody",
        "-k",
        "3",
        "--fallback-popular",
        "--json",
    )
    assert res.returncode == 0 and len(json.loads(res.stdout)["nobody"]) == 3


def test_similar_items_history_and_all(run_dir, tmp_path):
    run = load_run(run_dir)
    sim = run.similar_items_dict(["i3"], k=4)["i3"]
    assert len(sim) == 4 and "i3" not in {r["item"] for r in sim}
    recs = run.recommend_history_list(["i1", "i2", "i3"], k=5)
    assert len(recs) == 5 and not {"i1", "i2", "i3"} & {r["item"] for r in recs}
    res = _cli(
        "recommend", "--run", run_dir, "--all", "--out", tmp_path / "recs.parquet", "-k", "3"
    )
    assert res.returncode == 0, res.stderr
    df = pd.read_parquet(tmp_path / "recs.parquet")
    assert df.groupby("user").size().eq(3).all() and df["rank"].between(1, 3).all()


def test_export_embeddings_with_raw_ids(run_dir, tmp_path):
    res = _cli("export", "--run", run_dir, "--out", tmp_path / "emb")
    assert res.returncode == 0, res.stderr
    items = pd.read_parquet(tmp_path / "emb" / "items.parquet")
    assert items["item"].str.startswith("i").all() and len(items["embedding"].iloc[0]) == 64
    assert "title" in items and "tags" in items
    w = pd.read_parquet(tmp_path / "emb" / "view_weights.parquet")
    assert set(w.columns) == {"cooc", "tag", "item"}  # no KG in this graph: no kg view
    users = pd.read_parquet(tmp_path / "emb" / "users.parquet")
    assert users["user"].str.startswith("u").all() and len(users["embedding"].iloc[0]) == 64
