"""Mini-batch GraphSeq (the sampled backend): trains on planted data, samples no future or own
edge, equals full-graph propagation at full fan-out, ranks the full catalogue."""

from __future__ import annotations

import pytest
import torch

import graphseq.models.propagation as prop
from data_builders.store import load_graph
from graphseq.config import TrainConfig
from graphseq.evaluate import evaluate, seen_pairs
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.sequences import pad_from_csr
from graphseq.graph.shape import GraphShape
from graphseq.graph.splits import make_split, scoring_input
from graphseq.models.resolve import build_model
from graphseq.training.batches import BatchBuilder
from graphseq.training.trainer import Trainer

SEQ = dict(max_seq_len=30, batch_size=32, eval_every=1, lr=3e-3, dropout=0.1)


@pytest.fixture(scope="module")
def setup(small_graph_dir):
    data = load_graph(small_graph_dir)
    ev = EventTable.from_graph(data)
    return ev, make_split(ev, "leave_last_out"), ItemSide.from_graph(data)


def _model(ev, side, **kw):
    torch.manual_seed(0)
    args = dict(model="graphseq", minibatch=True, views=("cooc", "tag", "behavior"),
                max_seq_len=30, dropout=0.0)  # fmt: skip
    return build_model(TrainConfig(**{**args, **kw}), GraphShape.of(ev, side))


def _batch(ctx, users, model, **kw):
    b = BatchBuilder(ctx, "sequences", max_seq_len=30, **kw)
    return b.make(users, 1, 0)


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
    model = _model(ev, side, snapshot_scale=True).train()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    seen, keeps = [], []
    real_sample, real_tree = prop.sample_subgraph, prop.tree_lightgcn
    monkeypatch.setattr(
        prop, "sample_subgraph", lambda *a, **k: seen.append(real_sample(*a, **k)) or seen[-1]
    )
    monkeypatch.setattr(
        prop,
        "tree_lightgcn",
        lambda x, s, n, keep=None: keeps.append(keep) or real_tree(x, s, n, keep),
    )
    batch = torch.arange(0, ev.num_users, 3)
    model.loss(ctx, _batch(ctx, batch, model)).backward()
    assert len(seen) == 4  # cooc, tag, behavior, snapshots
    vis = ctx.visible
    latest = int(vis.time[torch.isin(vis.user, batch)].max())
    views = model.items.views
    for k, (sub, keep) in enumerate(zip(seen, keeps)):
        child, parent = sub.edge_index
        assert bool((sub.edge_time < sub.node_time[parent]).all()), k
        if k == 3:  # snapshots: each user embedded from edges strictly before each boundary
            bounds = model.users.snapshots._bounds(ctx).repeat(len(batch))
            assert torch.equal(sub.node_time[: sub.num_seeds], bounds)
            continue
        assert bool((sub.node_time == latest).all())  # seed time: the batch's latest event
        owner = model.items.backend.csr(ctx, views[k])[1]
        if owner is not None:  # user-derived views: no kept edge made by a batch user
            kept = keep.cpu()
            assert kept.sum() > 0 and not bool(torch.isin(owner[sub.edge_id][kept], batch).any())


def test_eval_encoding_is_chunk_invariant_and_exact_at_full_fanout(setup):
    ev, split, side = setup
    small = split.graph_mask("test") & (torch.arange(len(ev)) < 600)  # small degrees: exact trees
    ctx = GraphContext(ev, small, side)
    full = _model(ev, side, minibatch=False, snapshot_scale=False).eval()
    sampled = _model(ev, side, fanouts=(1_000, 1_000), snapshot_scale=False).eval()
    sampled.load_state_dict(full.state_dict())
    with torch.no_grad():
        torch.nn.init.normal_(full.items.view_gain)  # make the views count
        sampled.items.view_gain.copy_(full.items.view_gain)
        want = full.encode(ctx)
        got = sampled.encode(ctx)
        sampled.items.backend.eval_chunk = 7
        assert torch.allclose(sampled.encode(ctx).items, got.items, atol=1e-6)
    assert got.items.shape == (ev.num_items, 64)
    assert torch.allclose(got.items, want.items, atol=1e-5)  # fan-outs >= degrees: full LightGCN
    assert torch.allclose(got.view_weights, want.view_weights, atol=1e-5)


def _brute_force_ranks(scores, targets, seen_rows):
    """Pessimistic rank by a python loop: 1 + items (not seen, not the target) scoring >= it."""
    out = []
    for r in range(len(targets)):
        t = int(targets[r])
        n = sum(
            1 for i in range(scores.size(1))
            if i != t and i not in seen_rows.get(r, ()) and scores[r, i] >= scores[r, t]
        )  # fmt: skip
        out.append(n + 1)
    return torch.tensor(out)


def test_eval_ranks_the_full_catalogue(setup):
    """The evaluator's ranks equal ranks counted by hand over every item of the catalogue."""
    ev, split, side = setup
    model = _model(ev, side, snapshot_scale=True).eval()
    res = evaluate(model, ev, split, "test", side, max_len=30)
    inp = scoring_input(ev, split, "test")
    ctx = GraphContext(ev, inp.graph_mask, side)
    rows = torch.arange(12)
    with torch.no_grad():
        enc = model.encode(ctx)
        users = ev.user[inp.target_idx[rows]]
        hist = pad_from_csr(ev, inp.hist_ptr, inp.hist_idx, rows, 30)
        scores = model.rank_scores(ctx, enc, users, hist)
    assert scores.shape == (12, ev.num_items)
    r, it = seen_pairs(ev, inp.hist_ptr, inp.hist_idx)
    seen = {}
    for a, b in zip(r.tolist(), it.tolist()):
        seen.setdefault(a, set()).add(b)
    target = ev.item[inp.target_idx[rows]]
    keep = [k for k in range(12) if int(target[k]) not in seen.get(k, ())]
    want = _brute_force_ranks(
        scores[keep], target[keep], {i: seen.get(k, ()) for i, k in enumerate(keep)}
    )
    got = {int(u): int(rk) for u, rk in zip(res.per_user["user"], res.per_user["rank"])}
    assert [got[int(users[k])] for k in keep] == want.tolist()


def test_config_wiring_and_refusals(setup):
    ev, split, side = setup
    shape = GraphShape.of(ev, side)
    built = build_model(TrainConfig(minibatch=True, fanouts=(6, 3)), shape)
    assert built.items.sampled and built.items.backend.fanouts == (6, 3)
    cfg = TrainConfig(minibatch=True)
    with pytest.raises(ValueError, match="graphseq only"):
        build_model(cfg.replace(model="sasrec"), shape)
    with pytest.raises(ValueError, match="one entry per gnn layer"):
        build_model(cfg.replace(fanouts=(5,)), shape)
    with pytest.raises(ValueError, match="ce or sampled"):
        build_model(cfg.replace(loss="bpr"), shape)


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_loss_encodes_the_catalogue_for_ce_and_only_what_it_needs_for_sampled(
    setup, monkeypatch, loss
):
    ev, split, side = setup
    model = _model(ev, side, loss=loss, snapshot_scale=False).train()
    ctx = GraphContext(ev, split.graph_mask("train"), side)
    seeds = []
    real = prop.sample_subgraph
    monkeypatch.setattr(
        prop, "sample_subgraph", lambda c, s, *a, **k: seeds.append(s) or real(c, s, *a, **k)
    )
    batch = torch.arange(0, ev.num_users, 4)
    out = model.loss(ctx, _batch(ctx, batch, model, loss=loss, num_negatives=16))
    out.backward()
    assert torch.isfinite(out)
    items = seeds[0]  # the cooc view's seeds: the items whose representations the loss uses
    if loss == "ce":
        assert torch.equal(items, torch.arange(ev.num_items))
    else:
        batch_items = ctx.user_sequences(batch, 31)
        want = torch.unique(batch_items.item[batch_items.mask])
        assert bool(torch.isin(want, items).all()) and len(items) <= len(want) + 16


def test_validation_frees_the_training_graph_and_changes_nothing(
    small_graph_dir, tmp_path, monkeypatch
):
    """Mini-batch mode drops the training context's CSRs before each validation (memory
    holds one graph's at a time); the next step rebuilds them, so the run is unchanged."""
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", minibatch=True, epochs=2,
                      **SEQ)  # fmt: skip
    freed = Trainer(cfg, tmp_path / "a", progress=False)
    sizes = []  # (cached structures before, after) each release
    real, ctx = freed.release_training_graph, freed.train_ctx

    def release():
        before = ctx.cached()
        real()
        sizes.append((before, ctx.cached()))

    monkeypatch.setattr(freed, "release_training_graph", release)
    a = freed.fit()
    assert sizes and sizes[0][0] > 0 and all(after == 0 for _, after in sizes)
    kept = Trainer(cfg, tmp_path / "b", progress=False)
    monkeypatch.setattr(kept, "release_training_graph", lambda: None)
    b = kept.fit()
    assert a["valid"] == b["valid"] and a["test"] == b["test"]
