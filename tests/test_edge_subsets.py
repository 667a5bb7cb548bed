"""Training adjacencies from edges sorted once equal the ones built from scratch, exactly."""

from __future__ import annotations

import pytest
import torch

from graphseq.models.propagation import kept_edges
from graphseq.nn.adjacency import EdgeSubsets, union_adjacency


def _edges(seed: int, n: int = 30, e: int = 200):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randint(n, (e,), generator=g), torch.randint(n, (e,), generator=g)
    a[:5], b[:5] = b[5:10], a[5:10]  # edges listed in both directions
    a[10:13] = b[10:13]  # self-loops, counted once
    a[20:25], b[20:25] = a[30:35], b[30:35]  # duplicates, summed
    return a, b, n, g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subset_adjacency_equals_union_adjacency_bit_for_bit(seed):
    a, b, n, g = _edges(seed)
    subsets = EdgeSubsets(a, b, n)
    for drop in (0.0, 0.1, 0.5, 1.0):
        keep = torch.rand(a.numel(), generator=g) >= drop
        got = subsets(keep)
        want = union_adjacency([(a[keep], b[keep])], n)
        assert torch.equal(got.crow_indices(), want.crow_indices())
        assert torch.equal(got.col_indices(), want.col_indices())
        assert torch.equal(got.values(), want.values())  # not only close: the same floats
    with pytest.raises(ValueError, match="keep must be"):
        subsets(torch.ones(3, dtype=torch.bool))


def test_kept_edges_leave_out_exactly_the_batch_users_edges():
    g = torch.Generator().manual_seed(3)
    owner = torch.randint(50, (1000,), generator=g)
    batch = torch.tensor([3, 17, 49, 0])
    torch.manual_seed(0)
    got = kept_edges(owner, 1000, 0.2, batch)
    torch.manual_seed(0)
    want = (torch.rand(1000) >= 0.2) & ~torch.isin(owner, batch)
    assert torch.equal(got, want)
    assert torch.equal(
        kept_edges(owner, 1000, 0.0, torch.tensor([99])), torch.ones(1000, dtype=bool)
    )
