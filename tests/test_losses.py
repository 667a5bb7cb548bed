"""Fused gather losses equal their autograd definitions, in value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphseq.nn.losses import bpr_loss, full_softmax_ce, gathered_bpr, gathered_sq_norm


def _table_and_rows(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(20, 6, generator=g, dtype=torch.float64)
    u, i, j = (torch.randint(20, (15,), generator=g) for _ in range(3))  # repeats included
    return table, u, i, j


def test_gathered_bpr_matches_autograd():
    table, u, i, j = _table_and_rows()
    a = table.clone().requires_grad_()
    b = table.clone().requires_grad_()
    ref = bpr_loss((a[u] * a[i]).sum(-1), (a[u] * a[j]).sum(-1))
    got = gathered_bpr(b, u, i, j)
    ref.backward()
    got.backward()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(b.grad, a.grad)
    assert torch.autograd.gradcheck(
        lambda t: gathered_bpr(t, u, i, j), (b.detach().requires_grad_(),)
    )


def test_gathered_sq_norm_matches_autograd():
    table, u, i, _ = _table_and_rows(1)
    rows = torch.cat([u, i])
    a = table.clone().requires_grad_()
    b = table.clone().requires_grad_()
    (3 * a[rows].pow(2).sum()).backward()
    (3 * gathered_sq_norm(b, rows)).backward()
    torch.testing.assert_close(b.grad, a.grad)
    torch.testing.assert_close(gathered_sq_norm(table, rows), table[rows].pow(2).sum())


@pytest.mark.parametrize("masked", [False, True])
def test_full_softmax_ce_matches_masked_cross_entropy(masked):
    g = torch.Generator().manual_seed(2)
    h = torch.randn(9, 5, generator=g, dtype=torch.float64)
    items = torch.randn(12, 5, generator=g, dtype=torch.float64)
    target = torch.randint(12, (9,), generator=g)
    seen = None
    if masked:
        seen = torch.rand(9, 12, generator=g) < 0.4
        seen[torch.arange(9), target] = False
    h1, i1 = h.clone().requires_grad_(), items.clone().requires_grad_()
    h2, i2 = h.clone().requires_grad_(), items.clone().requires_grad_()
    logits = h1 @ i1.T
    ref = F.cross_entropy(logits if seen is None else logits.masked_fill(seen, -torch.inf), target)
    got = full_softmax_ce(h2, i2, target, seen)
    (2 * ref).backward()
    (2 * got).backward()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(h2.grad, h1.grad)
    torch.testing.assert_close(i2.grad, i1.grad)
    if seen is not None:  # masked items get no gradient from the rows that mask them
        only = seen.all(0)
        assert torch.all(i2.grad[only] == 0)
    # the gradients are formed in the forward pass: a second backward through the same
    # graph gives them again
    h3 = h.clone().requires_grad_()
    loss = full_softmax_ce(h3, items, target, seen)
    loss.backward(retain_graph=True)
    first = h3.grad.clone()
    loss.backward()
    torch.testing.assert_close(h3.grad, 2 * first)


@pytest.mark.parametrize("row_chunk", [1, 2, 4, 9, 100])
def test_full_softmax_ce_in_row_chunks_matches_the_reference(row_chunk):
    """Any row chunk, the mask as a tensor or by rows, sparse bias terms (repeats, one on a
    target, one on a masked item): the textbook value and gradients, ``values`` included."""
    g = torch.Generator().manual_seed(5)
    h = torch.randn(9, 4, dtype=torch.float64, generator=g, requires_grad=True)
    items = torch.randn(13, 4, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.randint(13, (9,), generator=g)
    seen = torch.rand(9, 13, generator=g) < 0.5
    seen[0] = True  # a row with only its target left
    seen[torch.arange(9), target] = False
    rows, cols = torch.tensor([8, 0, 0, 4, 2, 1, 8]), torch.tensor([3, 3, 3, 2, 5, 1, 0])
    cols[5] = target[1]  # a term on a row's target
    seen[4, 2] = True  # a term on a masked item: stays out
    vals = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True)
    dense = torch.zeros(9, 13, dtype=torch.float64).index_put((rows, cols), vals, accumulate=True)
    want = F.cross_entropy((h @ items.T + dense).masked_fill(seen, float("-inf")), target)
    ref = torch.autograd.grad(want, (h, items, vals))
    calls = []

    def by_rows(lo: int, hi: int):
        calls.append((lo, hi))
        return seen[lo:hi]

    for mask in (seen, by_rows):
        got = full_softmax_ce(h, items, target, mask, (rows, cols, vals), row_chunk=row_chunk)
        torch.testing.assert_close(got, want)
        for a, b in zip(torch.autograd.grad(3 * got, (h, items, vals)), ref):
            torch.testing.assert_close(a, 3 * b)
    assert calls == [(lo, min(lo + row_chunk, 9)) for lo in range(0, 9, row_chunk)]
    with torch.no_grad():  # no gradient wanted: the loss alone
        got = full_softmax_ce(h, items, target, seen, (rows, cols, vals), row_chunk=2)
    torch.testing.assert_close(got, want.detach())


def test_full_softmax_ce_sparse_bias_matches_dense_reference():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    items = torch.randn(7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.tensor([0, 3, 6, 2, 2])
    rows, cols = torch.tensor([0, 0, 1, 4, 4, 2]), torch.tensor([3, 3, 3, 2, 5, 1])
    vals = torch.randn(6, dtype=torch.float64, generator=g, requires_grad=True)
    seen = torch.zeros(5, 7, dtype=torch.bool)
    seen[1, 5] = seen[2, 1] = True  # a biased entry that is also masked: stays out
    got = full_softmax_ce(h, items, target, seen, (rows, cols, vals))
    dense = torch.zeros(5, 7, dtype=torch.float64).index_put((rows, cols), vals, accumulate=True)
    want = F.cross_entropy((h @ items.T + dense).masked_fill(seen, float("-inf")), target)
    torch.testing.assert_close(got, want)
    g1 = torch.autograd.grad(got, (h, items, vals))
    g2 = torch.autograd.grad(want, (h, items, vals))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
