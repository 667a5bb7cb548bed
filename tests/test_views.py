"""Tests for graphseq.nn adjacency builders, view encoders and view fusion."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from graphseq.nn import (
    LightGCNView,
    ViewFusion,
    bipartite_adjacency,
    drop_edges,
    union_adjacency,
)


def random_bipartite(num_users: int = 7, num_items: int = 11, num_edges: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_users, (num_edges,), generator=g)
    dst = torch.randint(0, num_items, (num_edges,), generator=g)
    return src, dst


def dense_norm(a: torch.Tensor) -> torch.Tensor:
    deg = a.sum(1)
    dinv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    return dinv[:, None] * a * dinv[None, :]


# ---------------------------------------------------------------- adjacency


def test_bipartite_hand_values():
    # users u0, u1; items i0, i1, i2 -> nodes [u0, u1, i0, i1, i2]
    # edges u0-i0, u0-i1, u1-i1, u1-i2, u1-i2 (duplicate: weight 2)
    src, dst = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 1, 2, 2])
    adj = bipartite_adjacency(src, dst, 2, 3)
    assert adj.layout == torch.sparse_csr and adj.dtype == torch.float32
    assert adj.shape == (5, 5)
    # degrees: u0=2, u1=1+2=3, i0=1, i1=2, i2=2
    expected = torch.zeros(5, 5)
    for u, i, w, du, di in [(0, 2, 1, 2, 1), (0, 3, 1, 2, 2), (1, 3, 1, 3, 2), (1, 4, 2, 3, 2)]:
        expected[u, i] = expected[i, u] = w / math.sqrt(du * di)
    torch.testing.assert_close(adj.to_dense(), expected)
    assert adj.to_dense()[1, 4].item() == pytest.approx(2 / math.sqrt(6))
    assert adj.to_dense()[0, 2].item() == pytest.approx(1 / math.sqrt(2))
    assert adj.values().numel() == 8  # duplicates merged into one entry


def test_bipartite_matches_dense_and_weights():
    src, dst = random_bipartite()
    w = torch.rand(src.numel()) + 0.5
    a = torch.zeros(18, 18)
    a.index_put_((src, dst + 7), w, accumulate=True)
    a = a + a.t()
    torch.testing.assert_close(bipartite_adjacency(src, dst, 7, 11, w).to_dense(), dense_norm(a))


def test_zero_degree_nodes_are_zero():
    adj = bipartite_adjacency(torch.tensor([0]), torch.tensor([1]), 3, 3).to_dense()
    assert torch.isfinite(adj).all()
    isolated = [1, 2, 3, 5]
    assert adj[isolated].abs().sum() == 0 and adj[:, isolated].abs().sum() == 0
    assert adj[0, 4] == 1.0 and adj[4, 0] == 1.0
    empty = bipartite_adjacency(
        torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), 2, 2
    )
    assert empty.to_dense().abs().sum() == 0


def test_edge_permutation_invariance():
    src, dst = random_bipartite(num_edges=60)
    perm = torch.randperm(src.numel(), generator=torch.Generator().manual_seed(1))
    a1 = bipartite_adjacency(src, dst, 7, 11)
    a2 = bipartite_adjacency(src[perm], dst[perm], 7, 11)
    assert torch.equal(a1.crow_indices(), a2.crow_indices())
    assert torch.equal(a1.col_indices(), a2.col_indices())
    torch.testing.assert_close(a1.values(), a2.values())
    x = torch.randn(18, 4)
    view = LightGCNView(3)
    torch.testing.assert_close(view(x, a1), view(x, a2))


def test_union_matches_dense_and_bipartite():
    # node space: 3 users | 4 items | 2 tags
    ui = (torch.tensor([0, 1, 2, 2]), torch.tensor([3, 4, 5, 6]))
    it = (torch.tensor([3, 4, 6]), torch.tensor([7, 7, 8]), torch.tensor([1.0, 2.0, 1.0]))
    adj = union_adjacency([ui, it], 9)
    a = torch.zeros(9, 9)
    a[ui[0], ui[1]] = 1.0
    a[it[0], it[1]] = it[2]
    a = a + a.t()
    torch.testing.assert_close(adj.to_dense(), dense_norm(a))
    # a single user-item block equals bipartite_adjacency
    src, dst = random_bipartite()
    torch.testing.assert_close(
        union_adjacency([(src, dst + 7)], 18).to_dense(),
        bipartite_adjacency(src, dst, 7, 11).to_dense(),
    )


def test_union_self_loop_counted_once():
    adj = union_adjacency([(torch.tensor([0, 0]), torch.tensor([0, 1]))], 2).to_dense()
    a = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    torch.testing.assert_close(adj, dense_norm(a))


def test_adjacency_rejects_bad_indices():
    with pytest.raises(ValueError):
        bipartite_adjacency(torch.tensor([0, 2]), torch.tensor([0, 0]), 2, 1)
    with pytest.raises(ValueError):
        union_adjacency([(torch.tensor([0]), torch.tensor([5]))], 3)


def test_drop_edges():
    src, dst = torch.arange(10_000), torch.arange(10_000)
    s, d = drop_edges(src, dst, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, d) and 0.65 < s.numel() / 10_000 < 0.75
    s2, _ = drop_edges(src, dst, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, s2)
    assert drop_edges(src, dst, 0.0)[0] is src
    with pytest.raises(ValueError):
        drop_edges(src, dst, 1.0)


# ---------------------------------------------------------------- LightGCNView


def test_lightgcn_equals_dense():
    src, dst = random_bipartite()
    adj = bipartite_adjacency(src, dst, 7, 11)
    dense = adj.to_dense()
    x = torch.randn(18, 5)
    ref = (x + dense @ x + dense @ dense @ x + dense @ dense @ dense @ x) / 4
    torch.testing.assert_close(LightGCNView(3)(x, adj), ref)
    torch.testing.assert_close(LightGCNView(0)(x, adj), x)


@pytest.mark.parametrize("symmetric", [False, True])
def test_lightgcn_gradients_match_dense(symmetric: bool):
    src, dst = random_bipartite()
    adj = bipartite_adjacency(src, dst, 7, 11)
    dense = adj.to_dense()
    x1 = torch.randn(18, 5, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(18, 5)
    view = LightGCNView(2)
    (view(x1, adj, symmetric=symmetric) * w).sum().backward()
    ((x2 + dense @ x2 + dense @ (dense @ x2)) / 3 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_lightgcn_nonsymmetric_gradient_and_cache():
    # a non-symmetric matrix: the cached transpose must be used correctly
    a = torch.rand(6, 6) * (torch.rand(6, 6) > 0.5)
    adj = a.to_sparse_csr()
    view = LightGCNView(2)
    for _ in range(2):  # second call hits the cache
        x = torch.randn(6, 3, dtype=torch.float32, requires_grad=True)
        view(x, adj).sum().backward()
        xd = x.detach().clone().requires_grad_()
        ((xd + a @ xd + a @ (a @ xd)) / 3).sum().backward()
        torch.testing.assert_close(x.grad, xd.grad)
    assert len(view._cache) == 1 and view._cache[0][0]() is adj
    adj.values().mul_(2.0)  # in-place edit invalidates the cached transpose
    x = torch.randn(6, 3, requires_grad=True)
    view(x, adj).sum().backward()
    a2 = adj.to_dense()
    xd = x.detach().clone().requires_grad_()
    ((xd + a2 @ xd + a2 @ (a2 @ xd)) / 3).sum().backward()
    torch.testing.assert_close(x.grad, xd.grad)
    assert len(view._cache) == 1  # the stale transpose was replaced
    other = (a.t() + 1.0).to_sparse_csr()
    view(x, other)
    assert len(view._cache) == 2
    del other
    view(x, adj)  # a hit; freed adjacencies are dropped on the next miss
    view(x, a.to_sparse_csr())
    assert len(view._cache) == 2
    view.reset_parameters()
    assert view._cache == []
    pickle.loads(pickle.dumps(view))


def test_lightgcn_second_order_gradient():
    src, dst = random_bipartite()
    adj = bipartite_adjacency(src, dst, 7, 11).to(torch.float64)
    x = torch.randn(18, 2, dtype=torch.float64, requires_grad=True)
    view = LightGCNView(2)
    assert torch.autograd.gradcheck(lambda t: view(t, adj, symmetric=True), (x,))
    assert torch.autograd.gradgradcheck(lambda t: view(t, adj, symmetric=True), (x,))


def test_lightgcn_repr_and_no_params():
    view = LightGCNView(3)
    assert repr(view) == "LightGCNView(layers=3)" and "\n" not in repr(view)
    assert list(view.parameters()) == []


# ---------------------------------------------------------------- ViewFusion


def test_fusion_attention():
    torch.manual_seed(0)
    fusion = ViewFusion(8, 3)
    xs = torch.randn(3, 10, 8, requires_grad=True)
    out, w = fusion(xs)
    assert out.shape == (10, 8)
    assert w is not None and w.shape == (10, 3)
    torch.testing.assert_close(w.sum(1), torch.ones(10))
    assert (w > 0).all()
    torch.testing.assert_close(out, torch.einsum("nv,vnd->nd", w, xs))
    torch.testing.assert_close(fusion.view_weights(xs), w)
    out.sum().backward()
    assert xs.grad is not None and fusion.query.grad is not None
    # list input and node-permutation equivariance
    perm = torch.randperm(10)
    torch.testing.assert_close(fusion([x[perm] for x in xs])[0], out[perm])


def test_fusion_mean_and_concat():
    xs = torch.randn(2, 5, 4)
    mean = ViewFusion(4, 2, mode="mean")
    out, w = mean(xs)
    torch.testing.assert_close(out, xs.mean(0))
    torch.testing.assert_close(w, torch.full((5, 2), 0.5))
    assert list(mean.parameters()) == []
    concat = ViewFusion(4, 2, mode="concat")
    out, w = concat(xs)
    assert out.shape == (5, 4) and w is None
    assert concat.view_weights(xs) is None
    torch.testing.assert_close(out, concat.proj(torch.cat([xs[0], xs[1]], dim=1)))


def test_fusion_reset_parameters_and_repr():
    fusion = ViewFusion(8, 3)
    with torch.no_grad():
        for p in fusion.parameters():
            p.fill_(0.0)
    fusion.reset_parameters()
    assert fusion.proj.weight.abs().sum() > 0 and fusion.query.abs().sum() > 0
    assert torch.equal(fusion.proj.bias, torch.zeros(8))
    assert repr(fusion) == "ViewFusion(dim=8, views=3, mode=attention)"
    with pytest.raises(ValueError):
        fusion(torch.randn(2, 4, 8))
    with pytest.raises(ValueError):
        ViewFusion(8, 3, mode="max")


# ---------------------------------------------------------------- bipartite blocks


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("some_rows", [False, True])
def test_bipartite_propagate_equals_lightgcn_on_the_full_adjacency(layers, some_rows):
    from graphseq.nn.adjacency import bipartite_blocks, sparse_rows
    from graphseq.nn.views import bipartite_propagate

    src, dst = random_bipartite(num_edges=60, seed=3)  # duplicates included: weight 2
    g = torch.Generator().manual_seed(4)
    xs = torch.randn(7, 5, generator=g, dtype=torch.float64)
    xd = torch.randn(11, 5, generator=g, dtype=torch.float64)
    rows = torch.tensor([5, 0, 3]) if some_rows else None
    a_sd, a_ds = (a.to(torch.float64) for a in bipartite_blocks(src, dst, 7, 11))
    full = bipartite_adjacency(src, dst, 7, 11).to(torch.float64)
    torch.testing.assert_close(a_sd.to_dense(), full.to_dense()[:7, 7:])
    torch.testing.assert_close(a_ds.to_dense(), a_sd.to_dense().T)
    if rows is not None:
        torch.testing.assert_close(sparse_rows(a_sd, rows).to_dense(), a_sd.to_dense()[rows])

    x1s, x1d = xs.clone().requires_grad_(), xd.clone().requires_grad_()
    x2s, x2d = xs.clone().requires_grad_(), xd.clone().requires_grad_()
    ref = LightGCNView(layers)(torch.cat([x1s, x1d]), full, symmetric=True)[:7]
    ref = ref if rows is None else ref[rows]
    got = bipartite_propagate(a_sd, a_ds, x2s, x2d, layers, rows)
    torch.testing.assert_close(got, ref)
    w = torch.randn(got.shape, generator=g, dtype=torch.float64)
    (ref * w).sum().backward()
    (got * w).sum().backward()
    torch.testing.assert_close(x2s.grad, x1s.grad)
    torch.testing.assert_close(x2d.grad, x1d.grad)
