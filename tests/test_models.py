"""Every model behind one composed interface: shapes, gradients, causality, one-line reprs,
the batch users' own edges left out of the views, item features on both backends, and
anonymous histories."""

from __future__ import annotations

import pytest
import torch

import graphseq.models.propagation as prop
from data_builders.errors import DataError
from data_builders.store import load_graph
from graphseq.config import TrainConfig
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.sequences import SeqBatch, pad_from_csr
from graphseq.graph.splits import leave_last_out, scoring_input
from graphseq.models import MODELS, GraphShape, build_model
from graphseq.training.batches import BatchBuilder

CONFIGS = {
    "pop": {},
    "mf": {},
    "lightgcn": {},
    "sasrec": {"max_seq_len": 20},
    "sasrec_gru": {"max_seq_len": 20, "sequence": "gru"},
    "sasrec_itemgraph": {"max_seq_len": 20, "item_graph": True},
    "graphseq": {"max_seq_len": 20},
    "graphseq_coarse": {
        "max_seq_len": 20,
        "snapshot_scale": True,
        "views": ("cooc", "tag", "behavior"),
        "fusion": "concat",
    },
    "graphseq_noseq": {"max_seq_len": 20, "sequence": "none", "fusion": "mean"},
    "graphseq_minibatch": {"max_seq_len": 20, "minibatch": True},
}


@pytest.fixture(scope="module")
def setup(small_graph_dir):
    g = load_graph(small_graph_dir)
    ev = EventTable.from_graph(g)
    split = leave_last_out(ev)
    side = ItemSide.from_graph(g)
    return ev, split, side


def _model(name, ev, side, **extra):
    kw = {**CONFIGS[name], **extra}
    cfg = TrainConfig(model=name.split("_")[0], dropout=0.0, **kw)
    torch.manual_seed(0)
    return build_model(cfg, GraphShape.of(ev, side)), cfg


def _train_batch(ctx, model, cfg, users=None):
    builder = BatchBuilder(ctx, model.train_mode, batch_size=64, max_seq_len=cfg.max_seq_len,
                           loss=cfg.loss, num_negatives=8)  # fmt: skip
    if model.train_mode == "pairs":
        return builder.make(builder.epoch(1)[0], 1, 0)
    return builder.make(torch.arange(16) if users is None else users, 1, 0)


def test_registry_lists_the_contract_models():
    assert set(MODELS) >= {"pop", "mf", "lightgcn", "sasrec", "graphseq"}
    with pytest.raises(DataError, match="valid"):
        build_model(TrainConfig(model="nope"), GraphShape(1, 1, ("a",), ItemSide()))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_gradients_repr(setup, name):
    ev, split, side = setup
    model, cfg = _model(name, ev, side)
    model.eval()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    inp = scoring_input(ev, split, "valid")
    with torch.no_grad():
        enc = model.encode(ctx)
    rows = torch.arange(5)
    hist = pad_from_csr(ev, inp.hist_ptr, inp.hist_idx, rows, cfg.max_seq_len)
    users = ev.user[inp.target_idx[rows]]
    scores = model.rank_scores(ctx, enc, users, hist)
    assert scores.shape == (5, ev.num_items) and torch.isfinite(scores).all()
    r = repr(model)
    assert "\n" not in r and r.startswith(model.name) and f"{ev.num_users}u" in r
    if model.train_mode == "none":
        return
    model.train()
    loss = model.loss(ctx, _train_batch(ctx, model, cfg))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["sasrec", "graphseq", "graphseq_coarse", "graphseq_minibatch"])
def test_states_are_causal(setup, name):
    """Changing events after position t never changes the state at t."""
    ev, split, side = setup
    model, cfg = _model(name, ev, side)
    model.eval()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    users = torch.arange(4)
    seq = ctx.user_sequences(users, 20)
    t = 9
    changed = SeqBatch(
        *(x.clone() for x in (seq.item, seq.behavior, seq.time, seq.is_target, seq.mask))
    )
    changed.item[:, t + 1 :] = (changed.item[:, t + 1 :] + 7) % ev.num_items
    changed.time[:, t + 1 :] += 10_000
    with torch.no_grad():
        enc = model.encode(ctx)
        a = model.states(ctx, enc, seq, users)
        b = model.states(ctx, enc, changed, users)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


def test_view_weights_come_back_from_encode_and_sum_to_one(setup):
    ev, split, side = setup
    model, _ = _model("graphseq", ev, side)
    model.eval()
    with torch.no_grad():
        enc = model.encode(GraphContext(ev, split.graph_mask("train"), side))
    assert model.views == ["cooc", "tag"]  # the graph has no KG: the kg view is not built
    assert enc.view_weights.shape == (ev.num_items, 2)
    torch.testing.assert_close(enc.view_weights.sum(1), torch.ones(ev.num_items))


def test_mlp_head_trains_and_scores(setup):
    ev, split, side = setup
    model, cfg = _model("sasrec", ev, side, head="mlp")
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    model.train()
    model.loss(ctx, _train_batch(ctx, model, cfg)).backward()
    mlp = model.scorer.head.mlp
    assert mlp[0].weight.grad.abs().sum() > 0
    u = torch.randn(3, cfg.dim)
    items = model.encode(ctx).items
    torch.testing.assert_close(model.score(u, items), (u + mlp(u)) @ items.T)


def test_full_graph_views_leave_the_batch_users_own_edges_out(setup, monkeypatch):
    """Full-graph GraphSeq, training: every user-derived view's adjacency holds no edge made
    by a batch user, and keeps other users' edges."""
    ev, split, side = setup
    model, cfg = _model("graphseq", ev, side, views=("cooc", "behavior"), edge_dropout=0.0,
                        snapshot_scale=False)  # fmt: skip
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    built = []

    class Recorded(prop.EdgeSubsets):  # the edges of each adjacency a step builds
        def __init__(self, a, b, n):
            super().__init__(a, b, n)
            self.ab = (a, b)

        def __call__(self, keep):
            built.append((self.ab[0][keep], self.ab[1][keep]))
            return super().__call__(keep)

    monkeypatch.setattr(prop, "EdgeSubsets", Recorded)
    batch = torch.arange(0, ev.num_users, 5)
    model.train()
    model.loss(ctx, _train_batch(ctx, model, cfg, batch))
    assert len(built) == 2
    vis = ctx.visible
    in_batch = torch.isin(torch.arange(ev.num_users), batch)
    for (a, b), view in zip(built, ("cooc", "behavior")):
        if view == "behavior":  # item -- (num_items + user)
            assert not in_batch[b - ev.num_items].any()
            assert int((~in_batch[vis.user]).sum()) == a.numel()
        else:  # consecutive items of the same user: both endpoints from non-batch users only
            pairs = {(int(x), int(y)) for x, y in zip(a, b)}
            own = prop.view_edges(model.items.views[0], ctx)
            mine = {(int(x), int(y)) for x, y, o in zip(own.a, own.b, own.owner) if in_batch[o]}
            others = {
                (int(x), int(y)) for x, y, o in zip(own.a, own.b, own.owner) if not in_batch[o]
            }
            assert pairs == others and len(mine - others) > 0


@pytest.mark.parametrize("minibatch", [False, True])
def test_item_features_reach_both_backends(setup, minibatch):
    ev, split, side = setup
    feats = torch.randn(ev.num_items, 12, generator=torch.Generator().manual_seed(1))
    side2 = ItemSide(side.item_tag, side.num_tags, side.kg, side.num_entities, feats)
    model, cfg = _model("graphseq", ev, side2, minibatch=minibatch, snapshot_scale=True)
    ctx = GraphContext(ev, split.graph_mask("train"), side2)
    with torch.no_grad():
        model.items.view_gain.fill_(1.0)
    model.train()
    model.loss(ctx, _train_batch(ctx, model, cfg)).backward()
    assert model.items.feat.proj.weight.grad.abs().sum() > 0  # features shaped the loss
    model.eval()
    with torch.no_grad():
        a = model.encode(ctx).items
        model.items.item_features.mul_(-1.0)  # change the features only
        b = model.encode(ctx).items
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    "name", ["pop", "mf", "lightgcn", "sasrec", "graphseq", "graphseq_minibatch"]
)
def test_two_anonymous_histories_give_different_scores(setup, name):
    ev, split, side = setup
    model, cfg = _model(name, ev, side)
    model.eval()
    ctx = GraphContext(ev, torch.ones(len(ev), dtype=torch.bool), side)
    with torch.no_grad():
        enc = model.encode(ctx)
        pop = torch.bincount(ev.item[ev.is_target], minlength=ev.num_items)
        top = torch.argsort(pop, descending=True)
        hists = [top[:3], top[3:8]]  # popular items, so even pop's lists (minus them) differ
        out = []
        for h in hists:
            n = len(h)
            hist = SeqBatch(h[None], torch.zeros(1, n, dtype=torch.long), torch.arange(n)[None],
                            torch.ones(1, n, dtype=torch.bool), torch.ones(1, n, dtype=torch.bool))  # fmt: skip
            s = model.rank_scores(ctx, enc, None, hist)[0]
            s[h] = float("-inf")
            out.append(torch.topk(s, 10).indices)
    assert not torch.equal(out[0], out[1])


def test_graphseq_without_views_or_snapshots_is_sasrec(setup):
    """``views=[]`` and ``snapshot_scale=false`` leave sasrec's network: the same parameters and,
    from the same seed, the same training loss (the base the view ablations are read
    against in docs/results.md). The scorer's add-ons are set alike for both."""
    ev, split, side = setup
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    same = {"item_graph": True, "own_history": True}
    models = [_model(n, ev, side, **same, **kw) for n, kw in
              (("sasrec", {}), ("graphseq", {"views": (), "snapshot_scale": False}))]  # fmt: skip
    shapes = [{k: v.shape for k, v in m.state_dict().items()} for m, _ in models]
    assert shapes[0] == shapes[1]
    (a, _), (b, _) = models
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y)  # the same initial weights from the same seed
    losses = []
    for m, cfg in models:
        m.train()
        torch.manual_seed(1)
        losses.append(m.loss(ctx, _train_batch(ctx, m, cfg)))
    torch.testing.assert_close(losses[0], losses[1])
    views, _ = _model("graphseq", ev, side, **same, snapshot_scale=False)  # the default views do
    assert len(views.state_dict()) > len(models[0][0].state_dict())
