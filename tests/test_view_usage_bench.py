"""benchmarks/view_usage.py: the views' share of a trained run's item vectors is what the
item encoder's own forward adds to the ID input, and the fusion weights are a mixture."""

from __future__ import annotations

import torch

from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.train.trainer import Trainer


def test_view_usage_matches_the_encoder_forward(small_graph_dir, tmp_path, bench):
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", epochs=2, seed=0,
                      max_seq_len=30, batch_size=32, eval_every=1, lr=3e-3)  # fmt: skip
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    got = bench("view_usage").view_usage(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert list(got["views"]) == run.model.views
    assert abs(sum(got["views"].values()) - 1.0) < 1e-3
    with torch.no_grad():
        x = run.model.items.input()
        out = run.model.items(run.ctx).items
    want = ((out - x).norm(dim=1).mean() / x.norm(dim=1).mean()).item()
    assert got["view_share"] > 0 and abs(got["view_share"] - want) < 1e-4
