"""Every model behind one interface: shapes, gradients, causality, one-line reprs."""

from __future__ import annotations

import pytest
import torch

from data_builders.store import load_graph
from graphseq.config import TrainConfig
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.sequences import pad_from_csr
from graphseq.graph.splits import leave_last_out, scoring_input
from graphseq.models import MODELS, build_model

CONFIGS = {
    "pop": {},
    "mf": {},
    "lightgcn": {},
    "sasrec": {"max_seq_len": 20},
    "sasrec_gru": {"max_seq_len": 20, "sequence": "gru"},
    "graphseq": {"max_seq_len": 20},
    "graphseq_coarse": {
        "max_seq_len": 20,
        "coarse": True,
        "views": ("cooc", "tag", "behavior"),
        "fusion": "concat",
    },
    "graphseq_noseq": {"max_seq_len": 20, "sequence": "none", "fusion": "mean"},
}


@pytest.fixture(scope="module")
def setup(small_graph_dir):
    g = load_graph(small_graph_dir)
    ev = EventTable.from_graph(g)
    split = leave_last_out(ev)
    side = ItemSide.from_graph(g)
    return ev, split, side


def _model(name, ev, side):
    kw = CONFIGS[name]
    cfg = TrainConfig(model=name.split("_")[0], dropout=0.0, **kw)
    torch.manual_seed(0)
    return build_model(cfg, ev.num_users, ev.num_items, len(ev.behaviors), side), cfg


def test_registry_lists_the_contract_models():
    assert set(MODELS) == {"pop", "mf", "lightgcn", "sasrec", "graphseq"}
    with pytest.raises(ValueError, match="valid"):
        build_model(TrainConfig(model="nope"), 1, 1, 1, ItemSide())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_gradients_repr(setup, name):
    ev, split, side = setup
    model, cfg = _model(name, ev, side)
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    inp = scoring_input(ev, split, "valid")
    enc = model.encode(ctx)
    rows = torch.arange(5)
    hist = pad_from_csr(ev, inp.hist_ptr, inp.hist_idx, rows, cfg.max_seq_len)
    users = ev.user[inp.target_idx[rows]]
    u = model.user_repr(ctx, enc, users, hist)
    scores = model.score(u, enc.items)
    assert scores.shape == (5, ev.num_items) and torch.isfinite(scores).all()
    r = repr(model)
    assert "\n" not in r and f"{ev.num_users}u" in r
    if model.train_mode == "none":
        return
    model.train()
    if model.train_mode == "pairs":
        batch = torch.nonzero(ctx.mask & ev.is_target).flatten()[:64]
    else:
        batch = torch.arange(16)
    loss = model.loss(ctx, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["sasrec", "graphseq", "graphseq_coarse"])
def test_states_are_causal(setup, name):
    """Changing events after position t never changes the state at t."""
    ev, split, side = setup
    model, cfg = _model(name, ev, side)
    model.eval()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    enc = model.encode(ctx)
    users = torch.arange(4)
    seq = ctx.user_sequences(users, 20)
    t = 9
    changed = type(seq)(
        *(x.clone() for x in (seq.item, seq.behavior, seq.time, seq.is_target, seq.mask))
    )
    changed.item[:, t + 1 :] = (changed.item[:, t + 1 :] + 7) % ev.num_items
    changed.time[:, t + 1 :] += 10_000
    with torch.no_grad():
        a = model.states(ctx, enc, seq, users)
        b = model.states(ctx, enc, changed, users)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_graphseq_view_weights_sum_to_one(setup):
    ev, split, side = setup
    model, _ = _model("graphseq", ev, side)
    model.eval()
    model.encode(GraphContext(ev, split.graph_mask("train"), side))
    w = model.view_weights()
    assert w.shape == (ev.num_items, len(model.views))
    torch.testing.assert_close(w.sum(1), torch.ones(ev.num_items))


def test_mlp_head_trains_and_scores(setup):
    ev, split, side = setup
    cfg = TrainConfig(model="sasrec", head="mlp", max_seq_len=20, dropout=0.0)
    model = build_model(cfg, ev.num_users, ev.num_items, len(ev.behaviors), side)
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    loss = model.loss(ctx, torch.arange(8))
    loss.backward()
    assert model.head.mlp[0].weight.grad.abs().sum() > 0
    u = torch.randn(3, cfg.dim)
    items = model.encode(ctx).items
    torch.testing.assert_close(model.score(u, items), (u + model.head.mlp(u)) @ items.T)
