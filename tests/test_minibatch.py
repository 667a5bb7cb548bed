"""Mini-batch GraphSeq: trains on planted data, samples no future or own edge, ranks fully."""

from __future__ import annotations

import pytest
import torch

import graphseq.models.minibatch as mb
from data_builders.store import load_graph
from graphseq.config import TrainConfig, config_from_dict
from graphseq.evaluate import evaluate, seen_pairs
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.sequences import pad_from_csr
from graphseq.graph.splits import make_split, scoring_input
from graphseq.metrics import rank_of_targets
from graphseq.models.base import Encoded
from graphseq.models.graphseq import GraphSeq
from graphseq.models.minibatch import MiniBatchGraphSeq
from graphseq.models.registry import build_model
from graphseq.train.trainer import Trainer

SEQ = dict(max_seq_len=30, batch_size=32, eval_every=1, lr=3e-3, dropout=0.1)


@pytest.fixture(scope="module")
def setup(small_graph_dir):
    data = load_graph(small_graph_dir)
    ev = EventTable.from_graph(data)
    return ev, make_split(ev, "leave_last_out"), ItemSide.from_graph(data)


def _model(ev, side, cls=MiniBatchGraphSeq, **kw):
    torch.manual_seed(0)
    args = dict(views=("cooc", "tag", "behavior"), num_tags=side.num_tags, max_len=30)
    return cls(ev.num_users, ev.num_items, len(ev.behaviors), **{**args, **kw})


def test_minibatch_mode_beats_pop_on_planted_data(small_graph_dir, tmp_path):
    def fit(name, **kw):
        cfg = TrainConfig(graph=str(small_graph_dir), **kw)
        return Trainer(cfg, tmp_path / name, progress=False).fit()

    pop = fit("pop", model="pop")
    gs = fit("mb", model="graphseq", minibatch=True, epochs=8, **SEQ)
    assert "minibatch=[10, 5]" in gs["model"]
    assert gs["test"]["NDCG@10"] > 2 * pop["test"]["NDCG@10"]
    assert gs["test"]["NDCG@10"] > 0.15


def test_training_samples_no_future_edge_and_no_batch_users_edge(setup, monkeypatch):
    ev, split, side = setup
    model = _model(ev, side, coarse=True).train()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    seen, keeps = [], []
    real_sample, real_tree = mb.sample_subgraph, mb.tree_lightgcn
    monkeypatch.setattr(
        mb, "sample_subgraph", lambda *a, **k: seen.append(real_sample(*a, **k)) or seen[-1]
    )
    monkeypatch.setattr(
        mb,
        "tree_lightgcn",
        lambda x, s, n, keep=None: keeps.append(keep) or real_tree(x, s, n, keep),
    )
    batch = torch.arange(0, ev.num_users, 3)
    model.loss(ctx, batch).backward()
    assert len(seen) == 4  # cooc, tag, behavior, snapshots
    vis = ctx.visible
    latest = int(vis.time[torch.isin(vis.user, batch)].max())
    for view, sub, keep in zip(("cooc", "tag", "behavior", "snap"), seen, keeps):
        child, parent = sub.edge_index
        assert bool((sub.edge_time < sub.node_time[parent]).all()), view
        if view != "snap":
            assert bool((sub.node_time == latest).all())  # seed time: the batch's latest event
        owner = model._csr(ctx, view)[1]
        if owner is not None:  # user-derived views: no kept edge made by a batch user
            assert not bool(torch.isin(owner[sub.edge_id][keep], batch).any()), view
    # snapshots: each user is embedded from edges strictly before each boundary
    assert bool(
        (
            seen[3].node_time[: seen[3].num_seeds] == ctx.cache["snap_bounds"].repeat(len(batch))
        ).all()
    )


def test_eval_encoding_is_chunk_invariant_and_exact_at_full_fanout(setup):
    ev, split, side = setup
    small = split.graph_mask("test") & (torch.arange(len(ev)) < 600)  # small degrees: exact trees
    ctx = GraphContext(ev, small, side)
    full = _model(ev, side, cls=GraphSeq, coarse=False).eval()
    sampled = _model(ev, side, fanouts=(1_000, 1_000), coarse=False).eval()
    sampled.load_state_dict(full.state_dict())
    with torch.no_grad():
        torch.nn.init.normal_(full.view_scale)  # make the views count
        sampled.view_scale.copy_(full.view_scale)
        want = full.item_table(ctx)
        got = sampled.encode(ctx).items
        sampled.eval_chunk = 7
        assert torch.allclose(sampled.encode(ctx).items, got, atol=1e-6)
    assert got.shape == (ev.num_items, full.dim)
    assert torch.allclose(got, want, atol=1e-5)  # fan-outs >= degrees: full LightGCN


def test_eval_ranks_the_full_catalogue(setup):
    ev, split, side = setup
    model = _model(ev, side, coarse=True).eval()
    res = evaluate(model, ev, split, "test", side, max_len=30)
    inp = scoring_input(ev, split, "test")
    ctx = GraphContext(ev, inp.graph_mask, side)
    with torch.no_grad():
        items = model.encode(ctx).items  # (I, d): every item of the catalogue
        users = ev.user[inp.target_idx]
        hist = pad_from_csr(ev, inp.hist_ptr, inp.hist_idx, torch.arange(len(users)), 30)
        scores = model.score(model.user_repr(ctx, Encoded(items=items), users, hist), items)
    rows, seen = seen_pairs(ev, inp.hist_ptr, inp.hist_idx)
    target = ev.item[inp.target_idx]
    keep = torch.ones(len(users), dtype=torch.bool)
    keep[rows[seen == target[rows]]] = False
    kept = torch.nonzero(keep).flatten()
    pos = torch.searchsorted(kept, rows)
    m = kept[pos.clamp(max=len(kept) - 1)] == rows
    rank = rank_of_targets(scores[kept], target[kept], torch.stack([pos[m], seen[m]]))
    assert scores.shape[1] == ev.num_items
    assert torch.equal(res.per_user["rank"].cpu(), rank)


def test_popularity_negatives_and_config_wiring(setup):
    ev, split, side = setup
    model = _model(ev, side, negatives="popularity", loss="sampled", coarse=False).train()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    loss = model.loss(ctx, torch.arange(0, ev.num_users, 2))
    loss.backward()
    assert torch.isfinite(loss) and model.item_emb.weight.grad.abs().sum() > 0
    cfg = config_from_dict({"minibatch": True, "fanouts": "6,3"}, TrainConfig())
    built = build_model(cfg, ev.num_users, ev.num_items, len(ev.behaviors), side)
    assert isinstance(built, MiniBatchGraphSeq) and built.fanouts == (6, 3)
    with pytest.raises(ValueError, match="graphseq only"):
        build_model(cfg.replace(model="sasrec"), ev.num_users, ev.num_items, 2, side)
    with pytest.raises(ValueError, match="one entry per gnn layer"):
        build_model(cfg.replace(fanouts=(5,)), ev.num_users, ev.num_items, 2, side)
    with pytest.raises(ValueError, match="ce or sampled"):
        build_model(cfg.replace(loss="bpr"), ev.num_users, ev.num_items, 2, side)


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_loss_encodes_the_catalogue_for_ce_and_only_what_it_needs_for_sampled(
    setup, monkeypatch, loss
):
    ev, split, side = setup
    model = _model(ev, side, loss=loss, num_negatives=16, coarse=False).train()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    seeds = []
    real = mb.sample_subgraph
    monkeypatch.setattr(
        mb, "sample_subgraph", lambda c, s, *a, **k: seeds.append(s) or real(c, s, *a, **k)
    )
    batch = torch.arange(0, ev.num_users, 4)
    out = model.loss(ctx, batch)
    out.backward()
    assert torch.isfinite(out)
    items = seeds[0]  # the cooc view's seeds: the items whose representations the loss uses
    if loss == "ce":
        assert torch.equal(items, torch.arange(ev.num_items))
    else:
        batch_items = ctx.user_sequences(batch, 31)
        want = torch.unique(batch_items.item[batch_items.mask])
        assert bool(torch.isin(want, items).all()) and len(items) <= len(want) + 16


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_loss_leaves_each_positions_earlier_targets_out_of_its_softmax(setup, monkeypatch, loss):
    ev, split, side = setup
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    batch = torch.arange(0, ev.num_users, 3)
    seq = ctx.user_sequences(batch, 31)
    want = []  # per used position, in row order: (label, earlier target items)
    for b in range(len(batch)):
        for t in range(30):
            if seq.mask[b, t] and seq.is_target[b, t + 1]:
                earlier = seq.item[b, : t + 1][seq.is_target[b, : t + 1]].tolist()
                want.append((int(seq.item[b, t + 1]), set(earlier)))
    got = {}
    real_neg = mb.sample_negatives
    monkeypatch.setattr(
        mb, "sample_negatives", lambda *a: got.update(neg=real_neg(*a)) or got["neg"]
    )
    for name in ("full_softmax_ce", "sampled_softmax_ce"):
        real = getattr(mb, name)
        monkeypatch.setattr(mb, name, lambda *a, real=real: got.update(args=a) or real(*a))
    for exclude in (True, False):
        model = _model(ev, side, loss=loss, num_negatives=16, coarse=False,
                       train_exclude_seen=exclude).train()  # fmt: skip
        model.loss(ctx, batch).backward()
        seen = got["args"][3] if loss == "ce" else got["args"][5]
        if not exclude:
            assert seen is None
            continue
        if loss == "ce":  # (N, I) over global item ids: exactly the earlier targets
            assert seen.shape == (len(want), ev.num_items)
            for row, (label, earlier) in zip(seen, want):
                assert set(torch.nonzero(row).flatten().tolist()) == earlier - {label}
        else:  # (N, S) over the shared negatives' columns, local ids into the encoded items
            need = torch.unique(torch.cat([seq.item[seq.mask], got["neg"]]))
            cols = need[got["args"][3]]  # global ids of the negatives' columns
            assert seen.shape == (len(want), len(cols))
            for row, (_, earlier) in zip(seen, want):  # a column equal to the label may be
                assert row.tolist() == [int(c) in earlier for c in cols]  # True: dropped anyway
