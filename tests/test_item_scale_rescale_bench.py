"""benchmarks/item_scale_rescale.py: factor 1 is the trained run's own score, the learned
weight is put back afterwards, and runs without the trained scale are refused."""

from __future__ import annotations

import pytest

from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.train.trainer import Trainer


def test_rescale_factor_one_is_the_run_and_the_weight_is_restored(small_graph_dir, tmp_path, bench):
    cfg = TrainConfig(graph=str(small_graph_dir), model="sasrec", epochs=2, seed=0,
                      max_seq_len=30, batch_size=32, eval_every=1, lr=3e-3,
                      item_graph=True, item_graph_mode="trained")  # fmt: skip
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    want = {s: run.evaluate(s).metrics["NDCG@10"] for s in ("valid", "test")}
    got = bench("item_scale_rescale").rescale(tmp_path / "run", (0.0, 1.0))
    assert got["weight"] != 0.0
    assert got["factors"]["1"] == {s: round(float(v), 4) for s, v in want.items()}
    again = bench("item_scale_rescale").rescale(tmp_path / "run", (1.0,))
    assert again["factors"]["1"] == got["factors"]["1"]  # the learned weight was restored


def test_rescale_refuses_a_run_without_the_trained_scale(small_graph_dir, tmp_path, bench):
    cfg = TrainConfig(graph=str(small_graph_dir), model="sasrec", epochs=1, seed=0,
                      max_seq_len=30, batch_size=32, eval_every=1)  # fmt: skip
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    with pytest.raises(SystemExit, match="item_graph_mode=trained"):
        bench("item_scale_rescale").rescale(tmp_path / "run")
