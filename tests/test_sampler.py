"""Time-respecting CSR neighbour sampler: no future edge, fan-out bounds, exactness, speed."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphseq.graph.sampler import (
    ALL_TIME,
    TemporalCSR,
    pyg_link_loader,
    pyg_sampler_available,
    sample_hop,
    sample_subgraph,
)
from graphseq.nn.adjacency import union_adjacency
from graphseq.nn.sampled import tree_lightgcn
from graphseq.nn.views import LightGCNView


def _random_graph(n: int, e: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(n, (e,), generator=g)
    dst = torch.randint(n, (e,), generator=g)
    t = torch.randint(0, 50, (e,), generator=g)
    return src, dst, t


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 30),
    e=st.integers(0, 200),
    seed=st.integers(0, 10_000),
    fanouts=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    strategy=st.sampled_from(["uniform", "even", "recent"]),
)
def test_no_sampled_edge_at_or_after_seed_time(n, e, seed, fanouts, strategy):
    src, dst, t = _random_graph(n, e, seed)
    csr = TemporalCSR.from_edges(src, dst, n, t, undirected=True)
    g = torch.Generator().manual_seed(seed)
    seeds = torch.randint(n, (7,), generator=g)
    seed_time = torch.randint(0, 55, (7,), generator=g)
    sub = sample_subgraph(csr, seeds, seed_time, fanouts, strategy, g)
    child, parent = sub.edge_index
    assert bool((sub.edge_time < sub.node_time[parent]).all())  # strictly before the seed
    assert bool((sub.node_time[child] == sub.node_time[parent]).all())  # root time carried
    # each sampled edge is a real edge of its parent, and the child is its other end
    pair = sub.node[parent] * n + sub.node[child]
    assert bool(torch.isin(pair, torch.cat([src * n + dst, dst * n + src])).all())
    # fan-out bounds: at most k per parent, exactly min(k, valid degree)
    for h, k in enumerate(fanouts):
        lo, hi = int(sub.hop_ptr[h]), int(sub.hop_ptr[h + 1])
        in_hop = (parent >= lo) & (parent < hi)
        counts = torch.bincount(parent[in_hop] - lo, minlength=hi - lo)
        assert bool((counts == sub.degree[lo:hi].clamp(max=k)).all())
    # the weights estimate the valid degree exactly (they sum to it)
    w = torch.zeros(len(sub.node)).index_add(0, parent, sub.weight)
    has = sub.degree[: int(sub.hop_ptr[-2])] > 0
    assert torch.allclose(
        w[: int(sub.hop_ptr[-2])][has], sub.degree[: int(sub.hop_ptr[-2])][has].float()
    )


def test_all_neighbours_when_fanout_covers_degree():
    src, dst, t = _random_graph(20, 150, 1)
    csr = TemporalCSR.from_edges(src, dst, 20, t)
    nodes, ts = torch.arange(20), torch.full((20,), 30)
    parent, slot, w, n = sample_hop(csr, nodes, ts, k=1000)
    for v in range(20):  # reference: a plain filter per node (test only)
        want = sorted(dst[(src == v) & (t < 30)].tolist())
        assert sorted(csr.col[slot[parent == v]].tolist()) == want
    assert bool((w == 1).all()) and n.sum() == len(slot)


def test_recent_takes_the_latest_edges():
    src = torch.zeros(6, dtype=torch.long)
    dst, t = torch.arange(1, 7), torch.tensor([5, 1, 4, 2, 9, 3])
    csr = TemporalCSR.from_edges(src, dst, 7, t)
    _, slot, _, _ = sample_hop(csr, torch.tensor([0]), torch.tensor([5]), 2, "recent")
    assert sorted(csr.time[slot].tolist()) == [3, 4]  # the two latest before 5 (5 excluded)


def test_seeded_generator_is_deterministic():
    src, dst, t = _random_graph(50, 2000, 2)
    csr = TemporalCSR.from_edges(src, dst, 50, t, undirected=True)
    seeds, ts = torch.arange(50), torch.full((50,), 40)

    def run(s):
        return sample_subgraph(csr, seeds, ts, (4, 3), generator=torch.Generator().manual_seed(s))

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a.node, b.node) and torch.equal(a.edge_id, b.edge_id)
    assert not torch.equal(a.edge_id, c.edge_id)


def test_uniform_inclusion_is_one_over_stratum_width():
    csr = TemporalCSR.from_edges(
        torch.zeros(10, dtype=torch.long), torch.arange(10), 11, torch.arange(10)
    )
    g = torch.Generator().manual_seed(0)
    seeds = torch.zeros(20_000, dtype=torch.long)
    _, slot, _, _ = sample_hop(csr, seeds, torch.full((20_000,), ALL_TIME), 3, "uniform", g)
    freq = torch.bincount(csr.col[slot], minlength=10).float() / 20_000
    # strata [0, 3), [3, 6), [6, 10): inclusion 1/3, 1/3, 1/4 (the weight is its inverse)
    want = torch.tensor([1 / 3] * 6 + [1 / 4] * 4)
    assert torch.allclose(freq, want, atol=0.02)


def test_tree_lightgcn_equals_full_propagation_when_fanout_covers_degree():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randint(0, 15, (60,), generator=g), torch.randint(15, 30, (60,), generator=g)
    x = torch.randn(30, 8, generator=g)
    full = LightGCNView(2)(x, union_adjacency([(a, b)], 30), symmetric=True)
    csr = TemporalCSR.from_edges(a, b, 30, undirected=True)
    seeds = torch.arange(30)
    sub = sample_subgraph(csr, seeds, torch.full((30,), ALL_TIME), (100, 100))
    est = tree_lightgcn(x[sub.node], sub, 2)
    assert torch.allclose(est, full, atol=1e-5)


def test_one_call_samples_every_seed():
    """One vectorised call serves every seed (timing vs a per-seed loop: python -m benchmarks speed --variants sampler)."""
    src, dst, t = _random_graph(5_000, 30_000, 4)
    csr = TemporalCSR.from_edges(src, dst, 5_000, t, undirected=True)
    seeds, ts = torch.randint(5_000, (1_000,)), torch.full((1_000,), 25)
    sub = sample_subgraph(csr, seeds, ts, (10, 5))
    assert sub.num_seeds == 1_000 and sub.edge_index.size(1) > 1_000 * 10
    one = [sample_subgraph(csr, seeds[i : i + 1], ts[i : i + 1], (10, 5)) for i in range(3)]
    assert all(o.num_seeds == 1 for o in one)


def test_pyg_loader_path_says_what_it_needs():
    if pyg_sampler_available():
        pytest.skip("pyg-lib / torch-sparse present: the PyG path is PyG's own")
    with pytest.raises(RuntimeError, match="pyg-lib or torch-sparse"):
        pyg_link_loader(None, ("user", "buy", "item"), (10, 5))
