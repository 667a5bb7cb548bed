"""Item–item graph scorer (EASE over a decayed history), its validation choice, and the
training softmax that leaves earlier targets out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graphseq.config import TrainConfig
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.sequences import SeqBatch, earlier_targets
from graphseq.models.scorer import Scorer
from graphseq.nn.history import OwnHistory
from graphseq.nn.itemgraph import (
    ItemGraph,
    ItemGraphScorer,
    decayed_history,
    ease_item_graph,
    knn_graph,
    standardize,
)
from graphseq.recommend import load_run
from graphseq.training.posthoc import choose_on_validation, choose_plan
from graphseq.training.trainer import Trainer


def _seq(items: list[list[int]], targets: list[list[bool]], pad: int) -> SeqBatch:
    L = max(map(len, items))
    item = torch.full((len(items), L), pad)
    tgt = torch.zeros(len(items), L, dtype=torch.bool)
    mask = torch.zeros_like(tgt)
    for r, (its, ts) in enumerate(zip(items, targets)):
        item[r, : len(its)] = torch.tensor(its)
        tgt[r, : len(ts)] = torch.tensor(ts)
        mask[r, : len(its)] = True
    return SeqBatch(item, torch.zeros_like(item), torch.zeros_like(item), tgt, mask)


def test_ease_matches_the_closed_form():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 12)) < 0.3).astype(float)
    u, i = np.nonzero(x)
    got = ease_item_graph(torch.as_tensor(u), torch.as_tensor(i), 30, 12, reg=5.0)
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(12))
    want = np.eye(12) - p / np.diag(p)[None, :]
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
    # it rebuilds X better than no graph at all
    assert ((x @ got.numpy() - x) ** 2).sum() < (x**2).sum()


def test_decayed_history_by_hand():
    hist = _seq([[2, 0, 2, 1], [3]], [[True, True, True, False], [True]], pad=4)
    h = decayed_history(hist, 4, decay=2.0)
    e = np.exp
    # row 0: ages 3, 2, 1, 0; item 1 (age 0) is not a target event; item 2 occurs twice
    np.testing.assert_allclose(h[0].numpy(), [e(-1.0), 0.0, e(-1.5) + e(-0.5), 0.0], rtol=1e-6)
    np.testing.assert_allclose(h[1].numpy(), [0.0, 0.0, 0.0, 1.0])


def test_scorer_is_a_no_op_at_weight_zero_and_follows_the_graph_when_large():
    scorer = ItemGraphScorer(4)
    hist = _seq([[0]], [[True]], pad=4)
    graph = torch.zeros(4, 4)
    graph[0, 3] = 1.0  # item 0 → item 3
    scores = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    assert torch.equal(scorer(scores, hist, graph), scores)
    scorer.weight.fill_(100.0)
    assert scorer(scores, hist, graph).argmax().item() == 3
    z = standardize(scores)
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1.0) < 1e-6
    assert {"weight", "decay"} <= set(scorer.state_dict())


def test_the_itemknn_kind_fuses_the_sparse_knn_graph_over_every_item():
    users = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    items = torch.tensor([0, 1, 0, 1, 1, 2, 3])
    ig = ItemGraphScorer(4, max_items=2, kind="itemknn", k=1, shrink=0.0)
    g = ig.graph(users, items, 3)
    want = knn_graph(users, items, 3, 4, 1, 0.0)
    assert g.weights.layout == torch.sparse_csr and g.index is None  # max_items is moot
    assert torch.equal(g.weights.to_dense(), want.weights.to_dense())
    assert g.weights.to_dense().count_nonzero(1).max() == 1  # k=1 neighbour per item
    assert ig.graph_key() == ("itemknn", 1, 0.0) and "itemknn, k=1" in repr(ig)
    hist = _seq([[2]], [[True]], pad=4)  # a history of item 2 lifts its neighbour
    ig.weight.fill_(100.0)
    fused = ig(torch.tensor([[3.0, 2.0, 1.0, 0.0]]), hist, g)
    top = int(g.weights.to_dense()[2].argmax())
    assert int(fused.argmax()) == top
    with pytest.raises(ValueError, match="unknown item graph"):
        ItemGraphScorer(4, kind="knn")


def test_the_item_graph_fuses_the_network_scores_and_the_own_history_pointer_comes_after():
    """``standardize(head) + w · standardize(h B) + pointer``: standardising a total that holds
    the pointer would squeeze every other item beside the user's own carted items."""
    ig, hist = ItemGraphScorer(5), OwnHistory(2)
    scorer = Scorer(2, "dot", ig, hist)
    with torch.no_grad():
        hist.weight.copy_(torch.tensor([0.0, 50.0, 0.0]))  # behavior 1 (a cart): a big pointer
    graph = torch.zeros(5, 5)
    graph[0, 3], graph[0, 4] = 1.0, 0.5  # item 0 (bought) → items 3, 4
    ctx = GraphContext(None, torch.zeros(0, dtype=torch.bool), ItemSide())  # type: ignore[arg-type]
    ig._graphs._of.set(ctx, (ig.graph_key(), ItemGraph(graph)))  # the scoring graph's B
    seq = _seq([[0, 2]], [[True, False]], pad=5)  # bought 0, then carted 2
    seq = SeqBatch(seq.item, torch.tensor([[0, 1]]), seq.time, seq.is_target, seq.mask)
    users, items = (
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[0.0, 0], [3, 0], [2, 0], [1, 0], [0, 1]]),
    )
    head = users @ items.T
    pointer = hist(seq, 5).detach()
    assert float(pointer[0, 2]) > 0 and float(pointer.abs().sum()) == float(pointer[0, 2])
    assert torch.equal(
        scorer(ctx, users, items, seq).detach(), head + pointer
    )  # weight 0: no fusion
    ig.weight.fill_(1.0)
    h = decayed_history(seq, 5, ig.decay)
    want = standardize(head) + standardize(h @ graph) + pointer
    torch.testing.assert_close(scorer(ctx, users, items, seq), want)
    old = standardize(head + pointer) + standardize(h @ graph)  # the order before this release
    assert old.argsort(descending=True)[0, 0] == 3  # the graph's item above the carted one
    assert want.argsort(descending=True)[0].tolist()[:2] == [2, 3]  # the cart first, then it


def test_a_plan_is_chosen_in_order_and_reset_first_on_request():
    ig, hist = ItemGraphScorer(5), OwnHistory(2)
    ig.weight.fill_(2.0)
    hist.scale.fill_(10.0)
    seen = []

    def valid():
        seen.append((float(ig.weight), float(hist.scale)))
        return float(ig.weight == 1.0) + float(hist.scale == 100.0)

    plan = [
        (ig, [{"weight": 0.0, "decay": 5.0}, {"weight": 1.0, "decay": 5.0}], "item_graph"),
        (hist, [{"scale": 1.0}, {"scale": 100.0}], "own_history_choice"),
    ]
    out = choose_plan(plan, valid, reset=True)
    assert seen == [(0.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 100.0)]  # reset, then in order
    assert out["item_graph"]["weight"] == 1.0 and out["own_history_choice"]["scale"] == 100.0
    assert float(ig.weight) == 1.0 and float(hist.scale) == 100.0


def test_earlier_targets_mask_by_hand():
    # row: items 5, 6, 5(not target), 7 → labels at positions 0..2 are 6, 5, 7
    inp = _seq([[5, 6, 5]], [[True, True, False]], pad=9)
    use = torch.tensor([[True, True, True]])
    label = torch.tensor([6, 5, 7])
    seen = earlier_targets(inp, use, label, num_items=9)
    assert seen.shape == (3, 9)
    assert torch.nonzero(seen[0]).flatten().tolist() == [5]
    assert torch.nonzero(seen[1]).flatten().tolist() == [6]  # 5 is the label: never masked
    assert torch.nonzero(seen[2]).flatten().tolist() == [5, 6]
    cols = torch.tensor([6, 0, 5, 5])  # sampled negatives: only their columns, repeats kept
    sub = earlier_targets(inp, use, label, num_items=9, cols=cols)
    assert sub.tolist() == [[False, False, True, True], [True, False, True, True]] + [
        [True, False, True, True]
    ]  # row 1's label 5 is True here: sampled softmax drops such hits itself


def test_tuning_keeps_the_best_and_prefers_no_fusion_on_ties():
    ig = ItemGraphScorer(5, weights=(0.0, 1.0, 2.0), decays=(5.0, 20.0))
    assert ig.posthoc_grid()[0] == {"weight": 0.0, "decay": 5.0} and len(ig.posthoc_grid()) == 5
    table = {(0.0, 5.0): 0.1, (1.0, 5.0): 0.3, (1.0, 20.0): 0.2, (2.0, 5.0): 0.3}

    def valid():
        return table.get((float(ig.weight), float(ig.decay)), 0.0)

    out = choose_on_validation(ig, valid, ig.posthoc_grid())
    assert (out["weight"], out["decay"], out["valid_NDCG@10"]) == (1.0, 5.0, 0.3)
    assert float(ig.weight) == 1.0 and len(out["grid"]) == 5
    table.clear()  # every setting ties: no fusion
    assert choose_on_validation(ig, valid, ig.posthoc_grid())["weight"] == 0.0


def test_trained_graphseq_stores_the_validated_fusion(small_graph_dir, tmp_path):
    cfg = TrainConfig(
        graph=str(small_graph_dir), model="graphseq", epochs=2, max_seq_len=30, batch_size=32,
        eval_every=1, snapshot_scale=False, item_graph_weights=(0.0, 1.0), item_graph_decays=(5.0,),
    )  # fmt: skip
    m = Trainer(cfg, tmp_path / "run", progress=False).fit()
    ig = m["item_graph"]
    assert ig["weight"] in (0.0, 1.0) and ig["valid_NDCG@10"] == max(ig["grid"].values())
    first = m.get("own_history_choice", ig)  # the pointer's calibration comes before it
    assert ig["valid_NDCG@10"] >= first["valid_NDCG@10"]  # each step keeps the best so far
    assert abs(m["valid"]["NDCG@10"] - ig["valid_NDCG@10"]) < 1e-9  # the last step's figure
    run = load_run(tmp_path / "run")
    assert float(run.model.item_graph.weight) == ig["weight"]
    again = run.evaluate("test").metrics  # the saved checkpoint reproduces the test figure
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["NDCG@10"]
    assert abs(again["NDCG@10"] - saved) < 1e-9
