"""Runs are relocatable: a run moved with its graph finds it; --graph overrides, fingerprint
checked."""

from __future__ import annotations

import json
import shutil

import pytest

from data_builders.build import build_graph
from data_builders.readers.synthetic import SyntheticSpec, generate
from data_builders.store import save_graph
from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.training.trainer import Trainer


@pytest.fixture(scope="module")
def moved(small_graph_dir, tmp_path_factory):
    """A run and its graph side by side under ``a/``, then ``a/`` renamed to ``b/``."""
    root = tmp_path_factory.mktemp("reloc")
    shutil.copytree(small_graph_dir, root / "a" / "graphs" / "g")
    cfg = TrainConfig(graph=str(root / "a" / "graphs" / "g"), model="mf", epochs=1)
    Trainer(cfg, root / "a" / "runs" / "r", progress=False).fit()
    before = load_run(root / "a" / "runs" / "r").recommend_dict(["u1", "u2"], k=5)
    shutil.move(root / "a", root / "b")
    return root, before


def test_a_run_moved_with_its_graph_loads_and_recommends(moved, capsys):
    root, before = moved
    run_dir = root / "b" / "runs" / "r"
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["graph_relative"] == "../../graphs/g"
    run = load_run(run_dir)
    assert run.cfg.graph == str((root / "b" / "graphs" / "g").resolve())
    assert run.recommend_dict(["u1", "u2"], k=5) == before
    assert (
        main(["recommend", "--run", str(run_dir), "--users", "u1", "u2", "-k", "5", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out) == before
    assert main(["evaluate", "--run", str(run_dir), "--json"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert json.loads(capsys.readouterr().out)["NDCG@10"] == pytest.approx(
        metrics["test"]["NDCG@10"]
    )


def test_graph_override_and_its_fingerprint_check(moved, tmp_path, capsys):
    root, before = moved
    run_dir = root / "b" / "runs" / "r"
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(root / "b" / "graphs" / "g", elsewhere)
    shutil.move(root / "b" / "graphs" / "g", tmp_path / "hidden")  # the run's graph is gone
    try:
        assert main(["recommend", "--run", str(run_dir), "--users", "u1"]) == 2
        err = capsys.readouterr().err
        assert "graph directory of this run not found" in err and "--graph DIR" in err
        args = ["--run", str(run_dir), "--graph", str(elsewhere)]
        assert main(["recommend", *args, "--users", "u1", "u2", "-k", "5", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == before
        assert main(["export", *args, "--out", str(tmp_path / "emb")]) == 0
        assert (tmp_path / "emb" / "users.parquet").exists()
        capsys.readouterr()
        other = tmp_path / "other"  # another log: other id maps, another fingerprint
        log = generate(SyntheticSpec(num_users=50, num_items=30, num_tags=4, seed=9))
        save_graph(other, *build_graph(log), items=log.items)
        assert main(["evaluate", "--run", str(run_dir), "--graph", str(other)]) == 2
        assert "fingerprint" in capsys.readouterr().err
        assert main(["evaluate", "--run", str(run_dir), "--graph", str(tmp_path / "no")]) == 2
        assert "graph directory not found" in capsys.readouterr().err
    finally:
        shutil.move(tmp_path / "hidden", root / "b" / "graphs" / "g")


def test_serve_takes_the_graph_override(moved, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from graphseq.serve import create_app

    root, before = moved
    copy = tmp_path / "g"
    shutil.copytree(root / "b" / "graphs" / "g", copy)
    with TestClient(create_app(root / "b" / "runs" / "r", graph=copy)) as c:
        got = c.get("/recommend", params={"user": "u1", "k": 5}).json()["items"]
    assert [r["item"] for r in got] == [r["item"] for r in before["u1"]]


def test_resume_finds_a_moved_graph(small_graph_dir, tmp_path):
    shutil.copytree(small_graph_dir, tmp_path / "a" / "graphs" / "g")
    cfg = TrainConfig(graph=str(tmp_path / "a" / "graphs" / "g"), model="mf", epochs=2)
    done = Trainer(cfg, tmp_path / "a" / "runs" / "r", progress=False).fit()
    (tmp_path / "a" / "runs" / "r" / "metrics.json").unlink()  # as if stopped before the end
    shutil.move(tmp_path / "a", tmp_path / "b")
    again = Trainer.resume(tmp_path / "b" / "runs" / "r", progress=False)
    assert again.cfg.graph == str((tmp_path / "b" / "graphs" / "g").resolve())
    m = again.fit()
    assert m["test"]["NDCG@10"] == pytest.approx(done["test"]["NDCG@10"], abs=1e-6)
