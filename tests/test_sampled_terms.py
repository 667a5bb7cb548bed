"""Own-history terms (sparse logit terms) inside the sampled losses: each term lands on the
row's positive when it is the row's target and on every negative slot holding its item,
checked against dense logits built by hand, in value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphseq.nn.losses import sampled_softmax_ce, sampled_terms


def _case(shared: bool):
    g = torch.Generator().manual_seed(7)
    B, d, n_items, s = 3, 5, 9, 6  # B sequences of 4 positions
    use = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    n = int(use.sum())
    h = torch.randn(n, d, dtype=torch.float64, generator=g, requires_grad=True)
    items = torch.randn(n_items, d, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.randint(n_items, (n,), generator=g)
    if shared:
        neg = torch.tensor([1, 4, 4, 0, 8, 2])  # item 4 twice: a term on it counts twice
    else:
        neg = torch.randint(n_items, (B, s), generator=g)
        neg[0, :2] = 5  # a repeat within a sequence's set
    # terms: several per row, repeats, one on each row's target, items outside the sets
    rows = torch.cat([torch.arange(n), torch.arange(n), torch.randint(n, (20,), generator=g)])
    cols = torch.cat([target, torch.full((n,), 4), torch.randint(n_items, (20,), generator=g)])
    vals = torch.randn(len(rows), dtype=torch.float64, generator=g, requires_grad=True)
    return h, items, target, neg, use, (rows, cols, vals)


def _dense(h, items, target, neg, use, bias):
    """(N, 1 + S) logits [positive, negatives] from a dense (N, I) logit table."""
    rows, cols, vals = bias
    full = (h @ items.T).index_put((rows, cols), vals, accumulate=True)
    ids = neg.expand(len(h), -1) if neg.dim() == 1 else neg[use.nonzero(as_tuple=True)[0]]
    return torch.cat([full.gather(1, target[:, None]), full.gather(1, ids)], 1), ids


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-sequence"])
def test_sampled_terms_equal_the_dense_logits(shared):
    h, items, target, neg, use, bias = _case(shared)
    pos, negs = sampled_terms(bias, target, neg, use)
    zero = torch.zeros_like(bias[2])
    base, _ = _dense(h, items, target, neg, use, (bias[0], bias[1], zero))
    want, _ = _dense(h, items, target, neg, use, bias)
    delta = (want - base).detach()
    assert torch.allclose(pos, delta[:, 0]) and torch.allclose(negs, delta[:, 1:])
    assert negs.abs().sum() > 0 and pos.abs().sum() > 0  # the case exercises both


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-sequence"])
def test_sampled_softmax_with_terms_matches_the_dense_reference(shared):
    h, items, target, neg, use, bias = _case(shared)
    got = sampled_softmax_ce(h, items, target, neg, use=use, bias=bias)
    grads = torch.autograd.grad(got, (h, items, bias[2]))
    logits, ids = _dense(h, items, target, neg, use, bias)
    hit = torch.cat([torch.zeros(len(h), 1, dtype=torch.bool), ids == target[:, None]], 1)
    want = F.cross_entropy(logits.masked_fill(hit, float("-inf")), torch.zeros_like(target))
    wgrads = torch.autograd.grad(want, (h, items, bias[2]))
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    for a, b in zip(grads, wgrads):
        assert torch.allclose(a, b, atol=1e-12)
    assert grads[2].abs().sum() > 0  # the terms' values are trained


def test_without_terms_the_sampled_loss_is_unchanged():
    h, items, target, neg, use, bias = _case(False)
    empty = tuple(t[:0] for t in bias)
    a = sampled_softmax_ce(h, items, target, neg, use=use)
    b = sampled_softmax_ce(h, items, target, neg, use=use, bias=empty)
    assert a.item() == pytest.approx(b.item(), rel=1e-14)
