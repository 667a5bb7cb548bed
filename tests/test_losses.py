"""Fused gather losses equal their autograd definitions, in value and gradient."""

from __future__ import annotations

import torch

from graphseq.nn.losses import bpr_loss, gathered_bpr, gathered_sq_norm


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
