"""Training batches and objectives: what each loss sees, for both propagation backends."""

from __future__ import annotations

import pytest
import torch

import graphseq.models.objectives as obj
from data_builders.store import load_graph
from graphseq.config import TrainConfig
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.shape import GraphShape
from graphseq.graph.splits import make_split
from graphseq.models.resolve import build_model
from graphseq.training.batches import BatchBuilder, PairBatch


@pytest.fixture(scope="module")
def setup(small_graph_dir):
    data = load_graph(small_graph_dir)
    ev = EventTable.from_graph(data)
    split = make_split(ev, "leave_last_out")
    side = ItemSide.from_graph(data)
    return ev, GraphContext(ev, split.graph_mask("train"), side), GraphShape.of(ev, side)


def _model(shape, **kw):
    torch.manual_seed(0)
    return build_model(TrainConfig(max_seq_len=30, dropout=0.0, **kw), shape).train()


@pytest.mark.parametrize("share", [False, True], ids=["per-sequence", "shared"])
@pytest.mark.parametrize("minibatch", [False, True])
@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_each_position_leaves_its_earlier_targets_out_of_its_softmax(
    setup, monkeypatch, loss, minibatch, share
):
    if loss == "ce" and share:
        pytest.skip("the full softmax draws no negatives")
    ev, ctx, shape = setup
    batch = torch.arange(0, ev.num_users, 3)
    seq = ctx.user_sequences(batch, 31)
    want = []  # per used position, in row order: (label, earlier target items)
    for b in range(len(batch)):
        for t in range(30):
            if seq.mask[b, t] and seq.is_target[b, t + 1]:
                earlier = seq.item[b, : t + 1][seq.is_target[b, : t + 1]].tolist()
                want.append((int(seq.item[b, t + 1]), set(earlier), b))
    got = {}
    for name in ("chunked_softmax_ce", "sampled_softmax_ce"):
        real = getattr(obj, name)
        monkeypatch.setattr(obj, name, lambda *a, real=real: got.update(args=a) or real(*a))
    builder = BatchBuilder(ctx, "sequences", max_seq_len=30, loss=loss, num_negatives=16,
                           share_negatives=share)  # fmt: skip
    b = builder.make(batch, 1, 0)
    if loss != "ce":  # (S,) for the whole batch, or (B, S): one set per sequence
        assert b.negatives.shape == ((16,) if share else (len(batch), 16))
    for exclude in (True, False):
        model = _model(shape, model="graphseq", loss=loss, snapshot_scale=False, minibatch=minibatch,
                       train_exclude_seen=exclude)  # fmt: skip
        model.loss(ctx, b).backward()
        seen = got["args"][3] if loss == "ce" else got["args"][5]
        if not exclude:
            assert seen is None
            continue
        if loss == "ce":  # (N, I) over global item ids: exactly the earlier targets
            lazy, seen = seen, seen.columns(0, ev.num_items)  # all columns at once
            assert torch.equal(lazy.rows(0, len(want)), seen)  # and all rows at once
            assert seen.shape == (len(want), ev.num_items)
            for row, (label, earlier, _) in zip(seen, want):
                assert set(torch.nonzero(row).flatten().tolist()) == earlier - {label}
            continue
        # (N, S) over each row's negatives' columns (local ids into the encoded items)
        need = model.objective.needed(seq, b.negatives, ev.num_items) if minibatch else None
        cols = got["args"][3] if need is None else need[got["args"][3]]  # global ids
        assert torch.equal(cols.cpu(), b.negatives)
        assert seen.shape == (len(want), 16)
        for row, (_, earlier, seq_row) in zip(seen, want):  # a column equal to the label
            mine = cols if share else cols[seq_row]  # may be True: dropped anyway
            assert row.tolist() == [int(c) in earlier for c in mine]
        assert seen.any()  # the check saw earlier targets among the negatives


def test_popularity_negatives_reach_the_sampled_loss_with_logq(setup, monkeypatch):
    ev, ctx, shape = setup
    builder = BatchBuilder(ctx, "sequences", max_seq_len=30, loss="sampled",
                           num_negatives=4000, negatives="popularity")  # fmt: skip
    b = builder.make(torch.arange(0, ev.num_users, 2), 1, 0)
    vis = ctx.visible
    pop = torch.bincount(vis.item[vis.is_target], minlength=ev.num_items).double() + 1
    torch.testing.assert_close(b.log_q.double(), (pop / pop.sum()).log(), atol=1e-6, rtol=0)
    assert b.negatives.shape == (len(b.users), 4000)  # one set per sequence
    flat = b.negatives.flatten()
    freq = torch.bincount(flat, minlength=ev.num_items).double() / len(flat)
    assert torch.corrcoef(torch.stack([freq, pop / pop.sum()]))[0, 1] > 0.8  # ∝ popularity
    got = {}
    real = obj.sampled_softmax_ce
    monkeypatch.setattr(obj, "sampled_softmax_ce", lambda *a: got.update(args=a) or real(*a))
    for minibatch in (False, True):
        model = _model(
            shape, model="graphseq", loss="sampled", snapshot_scale=False, minibatch=minibatch
        )
        model.loss(ctx, b).backward()
        log_q = got["args"][4]
        if minibatch:  # the encoded items' own log q
            need = model.objective.needed(
                ctx.user_sequences(b.users, 31), b.negatives, ev.num_items
            )
            torch.testing.assert_close(log_q, b.log_q[need])
        else:
            torch.testing.assert_close(log_q, b.log_q)
    uniform = BatchBuilder(ctx, "sequences", max_seq_len=30, loss="sampled", num_negatives=8)
    assert uniform.make(torch.arange(4), 1, 0).log_q is None


def test_bpr_draws_negatives_per_row(setup):
    ev, ctx, shape = setup
    pairs = BatchBuilder(ctx, "pairs", batch_size=64)
    idx = pairs.epoch(1)[0]
    b = pairs.make(idx, 1, 0)
    assert isinstance(b, PairBatch) and b.neg.shape == (len(idx),)
    assert len(torch.unique(b.neg)) > len(idx) // 4  # not one negative for the whole batch
    seqs = BatchBuilder(ctx, "sequences", max_seq_len=30, loss="bpr", num_negatives=3)
    sb = seqs.make(torch.arange(10), 1, 0)
    _, _, use = sb.seq.shift()
    assert sb.negatives.shape == (int(use.sum()), 3)
    assert len(torch.unique(sb.negatives[:, 0])) > 1
    model = _model(shape, model="sasrec", loss="bpr")
    loss = model.loss(ctx, sb)
    loss.backward()
    assert torch.isfinite(loss)


def test_batches_are_deterministic_per_seed_epoch_and_step(setup):
    ev, ctx, _ = setup
    mk = lambda seed: BatchBuilder(ctx, "sequences", max_seq_len=30, loss="sampled", seed=seed)  # noqa: E731
    a, b = mk(0).make(torch.arange(5), 2, 3), mk(0).make(torch.arange(5), 2, 3)
    assert torch.equal(a.negatives, b.negatives)
    assert not torch.equal(a.negatives, mk(0).make(torch.arange(5), 2, 4).negatives)
    assert not torch.equal(a.negatives, mk(1).make(torch.arange(5), 2, 3).negatives)


def test_chunked_full_softmax_gives_the_one_buffer_loss_and_gradients(setup, monkeypatch):
    ev, ctx, shape = setup
    b = BatchBuilder(ctx, "sequences", max_seq_len=30).make(torch.arange(0, ev.num_users, 2), 1, 0)
    chunks = []
    real = obj.chunked_softmax_ce
    monkeypatch.setattr(obj, "chunked_softmax_ce", lambda *a: chunks.append(a[4]) or real(*a))
    out = []
    for max_logits in (0, 2000):  # one (N, I) buffer; then chunks of 2000 // N items
        model = _model(shape, model="sasrec", ce_max_logits=max_logits)
        loss = model.loss(ctx, b)
        loss.backward()
        out.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    n_rows = int(b.seq.shift()[2].sum())
    assert chunks == [0, 2000 // n_rows] and 0 < chunks[1] < ev.num_items
    torch.testing.assert_close(out[1][0], out[0][0])
    for name, g in out[0][1].items():
        torch.testing.assert_close(out[1][1][name], g, rtol=1e-4, atol=1e-6, msg=name)
