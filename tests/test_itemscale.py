"""The item–item graph as a trained scale: per-position terms by hand, cross-fitted folds."""

from __future__ import annotations

import math

import pytest
import torch

from data_builders.store import load_graph
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split
from graphseq.models.itemscale import ItemGraphScale
from graphseq.nn.history import STEP
from graphseq.nn.itemgraph import ease_graph


@pytest.fixture(scope="module")
def ctx(small_graph_dir):
    ev = EventTable.from_graph(load_graph(small_graph_dir))
    return GraphContext(ev, make_split(ev, "leave_last_out").graph_mask("train"), ItemSide())


@pytest.mark.parametrize("max_items", [10_000, 30])
def test_training_terms_equal_a_loop_over_positions(ctx, max_items):
    ev = ctx.events
    m = ItemGraphScale(ev.num_items, max_items=max_items)
    with torch.no_grad():
        m.scale.fill_(1.0 / STEP)  # weight 1
    users = torch.arange(0, ev.num_users, 3)
    inp, _, use = ctx.user_sequences(users, 31).shift()
    index, got = m.train_bias(ctx, inp, use, users)
    fold, graphs = m.fold_graphs(ctx, torch.device("cpu"))
    tau = math.exp(float(m.log_decay.detach()))
    want = []
    for b, t in zip(*use.nonzero(as_tuple=True)):
        g = graphs[int(fold[users[b]])]
        h = torch.zeros(ev.num_items)
        for p in range(int(t) + 1):
            if inp.mask[b, p] and inp.is_target[b, p]:
                h[inp.item[b, p]] += math.exp(-(int(t) - p) / tau)
        want.append((h if g.index is None else h[g.index]) @ g.weights)
    torch.testing.assert_close(got.detach(), torch.stack(want), atol=1e-4, rtol=1e-4)
    assert (index is None) == (max_items >= ev.num_items)
    got.sum().backward()
    assert m.scale.grad is not None and m.log_decay.grad is not None


def test_each_fold_graph_never_saw_its_own_users(ctx):
    ev = ctx.events
    m = ItemGraphScale(ev.num_items, folds=3)
    fold, graphs = m.fold_graphs(ctx, torch.device("cpu"))
    vis = ctx.visible
    t = vis.is_target
    for k, g in enumerate(graphs):
        other = fold[vis.user[t]] != k
        want = ease_graph(vis.user[t][other], vis.item[t][other], ev.num_users, ev.num_items,
                          m.reg, m.max_items)  # fmt: skip
        torch.testing.assert_close(g.weights, want.weights)
    assert len(set(fold.tolist())) == 3
