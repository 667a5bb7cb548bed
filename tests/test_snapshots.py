"""Cumulative snapshots and per-user sequences."""

from __future__ import annotations

import pytest
import torch

from data_builders.build import build_graph
from graphseq.graph.snapshots import snapshot_boundaries, snapshots, user_sequences


@pytest.mark.parametrize("mode", ["count", "time"])
def test_snapshots_are_cumulative_and_respect_time(small_log, mode):
    data, _, _ = build_graph(small_log)
    snaps = snapshots(data, 4, mode)
    assert 1 <= len(snaps) <= 4
    et, rev = ("user", "buy", "item"), ("item", "rev_buy", "user")
    counts = [s[et].edge_index.size(1) for s in snaps]
    assert counts == sorted(counts) and counts[-1] <= data[et].edge_index.size(1)
    last = sum(snaps[-1]["user", b, "item"].edge_index.size(1) for b in data.behaviors)
    assert last < sum(data["user", b, "item"].edge_index.size(1) for b in data.behaviors)
    for s in snaps:
        assert (s[et].time < s.boundary).all()
        assert torch.equal(s[rev].edge_index, s[et].edge_index.flip(0))
        assert s["item", "has_tag", "tag"].edge_index.size(1) == data[
            "item", "has_tag", "tag"
        ].edge_index.size(1)
    if mode == "count":  # equal-count windows: each adds about a quarter of the events
        total = sum(data["user", b, "item"].edge_index.size(1) for b in data.behaviors)
        first = sum(snaps[0]["user", b, "item"].edge_index.size(1) for b in data.behaviors)
        assert 0.15 * total < first < 0.35 * total


def test_boundaries_and_user_sequences(small_log):
    t = torch.tensor([5, 1, 3, 3, 9, 7])
    assert snapshot_boundaries(t, 2, "time").tolist() == [5, 9]
    with pytest.raises(ValueError, match="valid"):
        snapshot_boundaries(t, 2, "weekly")
    data, ids, _ = build_graph(small_log)
    seq = user_sequences(data, torch.tensor([0, 1]), max_len=10)
    assert seq.item.shape[0] == 2 and seq.item.shape[1] <= 10
    u0 = small_log.events[small_log.events["user"] == ids["user"][0]]
    assert seq.length[0] == min(10, len(u0))
    assert (seq.time[0, 1 : int(seq.length[0])] >= seq.time[0, : int(seq.length[0]) - 1]).all()
    last_items = list(u0.sort_values(["timestamp", "line"])["item"].iloc[-int(seq.length[0]) :])
    assert list(ids["item"][seq.item[0, : int(seq.length[0])].numpy()]) == last_items


def test_boundaries_match_torch_quantile_and_pass_2_pow_24():
    from graphseq.graph.events import time_quantiles

    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 7, 1000):
        t = torch.randint(0, 10**9, (n,), generator=g)
        q = torch.cat([torch.rand(5, generator=g), torch.tensor([0.0, 0.5, 0.8, 1.0])]).double()
        assert torch.equal(time_quantiles(t, q), torch.quantile(t.double(), q))
    t = torch.tensor([5, 1, 3, 3, 9, 7])
    assert snapshot_boundaries(t, 4, "count").tolist() == [3, 4, 6, 9]  # torch.quantile's values
    big = torch.arange(2**24 + 1, dtype=torch.int64)  # torch.quantile refuses > 2**24 elements
    assert snapshot_boundaries(big, 4, "count").tolist() == [2**22, 2**23, 3 * 2**22, 2**24]
