"""A validation grid over the scorer's buffers encodes items and users once (the shared
scoring cache) and scores exactly what fresh evaluations score."""

from __future__ import annotations

import pytest
import torch

from graphseq.config import TrainConfig
from graphseq.evaluate import EvalCache, evaluate_with
from graphseq.training.trainer import Trainer


@pytest.mark.parametrize("minibatch", [False, True], ids=["full-graph", "minibatch"])
def test_cached_grid_encodes_once_and_matches_fresh_evaluations(
    small_graph_dir, tmp_path, minibatch
):
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", epochs=1, max_seq_len=30,
                      batch_size=32, eval_batch_size=16, minibatch=minibatch,
                      item_graph_weights=(0.0, 1.0), item_graph_decays=(5.0,))  # fmt: skip
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    tr._train_epoch(1)
    model, calls = tr.model, {"encode": 0, "user_repr": 0}
    for name in calls:
        real = getattr(model, name)

        def counted(*a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(*a, **k)

        setattr(model, name, counted)

    def run(cache):
        return evaluate_with(cfg, model, tr.ev, tr.split, "valid", tr.side, cache)

    cache = EvalCache()
    seen = []
    for w in (0.0, 1.0, 0.0):
        model.item_graph.weight.fill_(w)
        fresh = run(None)
        before = dict(calls)
        got = run(cache)
        assert got.metrics == fresh.metrics
        seen.append(got.metrics["NDCG@10"])
        assert all(torch.equal(torch.as_tensor(v), torch.as_tensor(fresh.per_user[k]))
                   for k, v in got.per_user.items())  # fmt: skip
    assert seen[0] == seen[2] != seen[1]  # the buffer does change the scores
    batches = -(-got.num_users // cfg.eval_batch_size)
    assert batches > 1
    assert calls == before == {"encode": 4, "user_repr": 4 * batches}  # 3 fresh + 1 cached
