"""Row-wise AdamW for sparse-gradient tables: AdamW on the rows a step touches, nothing else
moves; clipping over sparse gradients; mini-batch GraphSeq trains its user table sparsely."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graphseq.config import TrainConfig
from graphseq.training.optim import LazyAdamW, RowAdamW, clip_grad_norm, make_optimizer
from graphseq.training.trainer import Trainer


def _pair(wd: float) -> tuple[nn.Embedding, nn.Embedding]:
    torch.manual_seed(0)
    dense = nn.Embedding(12, 5)
    sparse = nn.Embedding(12, 5, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    return dense, sparse


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_lazy_adamw_equals_adamw_when_every_row_is_touched(wd):
    dense, sparse = _pair(wd)
    o_dense = torch.optim.AdamW(dense.parameters(), lr=0.05, weight_decay=wd)
    o_sparse = LazyAdamW(sparse.parameters(), lr=0.05, weight_decay=wd)
    g = torch.Generator().manual_seed(1)
    for _ in range(6):
        ids = torch.cat([torch.arange(12), torch.randint(0, 12, (7,), generator=g)])  # repeats
        target = torch.randn(ids.numel(), 5, generator=g)
        for emb, opt in ((dense, o_dense), (sparse, o_sparse)):
            opt.zero_grad()
            ((emb(ids) - target) ** 2).sum().backward()
            opt.step()
    assert sparse.weight.grad.is_sparse
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=1e-5, atol=1e-6)


def test_lazy_adamw_leaves_untouched_rows_and_their_moments_alone():
    _, emb = _pair(0.0)
    opt = LazyAdamW(emb.parameters(), lr=0.1, weight_decay=0.5)
    before = emb.weight.detach().clone()
    for ids in (torch.tensor([1, 3]), torch.tensor([3, 4])):
        opt.zero_grad()
        emb(ids).sum().backward()
        opt.step()
    moved = (emb.weight != before).any(1)
    assert moved.nonzero().flatten().tolist() == [1, 3, 4]
    st = opt.state[emb.weight]
    assert st["step"] == 2
    assert (st["exp_avg"].abs().sum(1) > 0).nonzero().flatten().tolist() == [1, 3, 4]


def test_lazy_adamw_takes_a_whole_table_step_as_adamw_does():
    dense, sparse = _pair(0.1)
    o_dense = torch.optim.AdamW(dense.parameters(), lr=0.05, weight_decay=0.1)
    o_lazy = LazyAdamW(sparse.parameters(), lr=0.05, weight_decay=0.1)
    for step in range(4):
        for emb, opt in ((dense, o_dense), (sparse, o_lazy)):
            opt.zero_grad()
            loss = (emb.weight**2).sum() + emb(torch.tensor([step, 3])).sum()  # dense + sparse
            loss.backward()
            opt.step()
    assert not sparse.weight.grad.is_sparse
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_over_sparse_gradients_matches_the_dense_clip():
    dense, sparse = _pair(0.0)
    lin = nn.Linear(5, 1)
    ids = torch.tensor([0, 2, 2, 7])
    (lin(dense(ids)).sum() * 10).backward()
    want = [dense.weight.grad.clone(), lin.weight.grad.clone()]
    ref_norm = torch.nn.utils.clip_grad_norm_([dense.weight, lin.weight], 0.5)
    clipped = [dense.weight.grad, lin.weight.grad]
    lin.weight.grad = want[1].clone()
    (lin(sparse(ids)).sum() * 10).backward(inputs=[sparse.weight])
    norm = clip_grad_norm([sparse.weight, lin.weight], 0.5)
    torch.testing.assert_close(norm, ref_norm)
    torch.testing.assert_close(sparse.weight.grad.to_dense(), clipped[0])
    torch.testing.assert_close(lin.weight.grad, clipped[1])
    assert norm > 0.5 and not torch.equal(want[0], clipped[0])  # the clip did act


def test_make_optimizer_splits_only_when_a_table_is_sparse():
    plain = nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 1))
    assert isinstance(make_optimizer(plain, list(plain.parameters()), 1e-3, 0.0), torch.optim.AdamW)
    mixed = nn.Sequential(nn.Embedding(4, 2, sparse=True), nn.Linear(2, 1))
    opt = make_optimizer(mixed, list(mixed.parameters()), 1e-3, 0.0)
    assert isinstance(opt, RowAdamW)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 1]
    with pytest.raises(ValueError, match="not a RowAdamW state"):
        opt.load_state_dict(torch.optim.AdamW(plain.parameters()).state_dict())


def test_minibatch_graphseq_updates_only_the_batch_users_rows(small_graph_dir, tmp_path):
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", minibatch=True,
                      max_seq_len=30, batch_size=16, views=("cooc",))  # fmt: skip
    small = Trainer(cfg, tmp_path / "small", progress=False)  # tables below sparse_min_rows
    assert isinstance(small.opt, torch.optim.AdamW)
    tr = Trainer(cfg.replace(sparse_min_rows=50), tmp_path / "run", progress=False)
    table = next(m for n, m in tr.model.named_modules() if n.endswith("user_emb"))
    items = next(m for n, m in tr.model.named_modules() if n.endswith("id_emb"))
    assert table.sparse and items.sparse and isinstance(tr.opt, RowAdamW)
    before = table.weight.detach().clone()
    idx = tr._batches(1)[0]
    tr.opt.zero_grad(set_to_none=True)
    tr.model.loss(tr.train_ctx, tr.builder.make(idx, 1, 0)).backward()
    touched = table.weight.grad.coalesce().indices()[0]
    tr.opt.step()
    moved = (table.weight != before).any(1).nonzero().flatten()
    assert 0 < moved.numel() < table.num_embeddings
    assert set(moved.tolist()) <= set(touched.tolist())
    assert set(idx.tolist()) <= set(touched.tolist())  # the batch's own users are embedded


def test_full_graph_graphseq_keeps_dense_adamw(small_graph_dir, tmp_path):
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", minibatch=False,
                      max_seq_len=30, views=("cooc",), sparse_min_rows=0)  # fmt: skip
    tr = Trainer(cfg, tmp_path / "run", progress=False)  # propagates the whole table
    assert isinstance(tr.opt, torch.optim.AdamW)
    assert not any(getattr(m, "sparse", False) for m in tr.model.modules())
