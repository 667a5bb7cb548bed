"""benchmarks/segments.py: the own-edge segment is what a brute-force scan of each test
user's earlier events says, and the per-segment table averages the right users."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_builders.store import load_id_maps, read_graph
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split


def _shop_rows() -> list[tuple]:
    """6 users, 4 purchases each; users 0–2 carted their last purchase earlier, 3–5 did not
    (user 3 carted an item it never bought)."""
    rows, t = [], 0
    for u in range(6):
        bought = [f"i{u}{k}" for k in range(4)]
        if u < 3:
            rows.append((f"u{u}", bought[-1], t, "cart"))
        if u == 3:
            rows.append((f"u{u}", "i99", t, "cart"))
        for it in bought:
            t += 1
            rows.append((f"u{u}", it, t, "buy"))
        t += 1
    return rows


def test_own_edge_users_match_the_carts_and_a_scan_of_earlier_events(tmp_path, bench, event_graph):
    graph = event_graph(_shop_rows(), tmp_path / "g")
    own = bench("segments").own_edge_users(graph, "leave_last_out", (0.8, 0.9))
    assert own.to_dict() == {f"u{u}": u < 3 for u in range(6)}
    ev = EventTable.from_graph(read_graph(graph))
    split = make_split(ev, "leave_last_out")
    raw = load_id_maps(graph)["user"]
    scan = {}
    for t in split.targets["test"].tolist():
        u, i = int(ev.user[t]), int(ev.item[t])
        earlier = (ev.user[:t] == u) & split.graph_mask("test")[:t]
        scan[raw[u]] = bool((ev.item[:t][earlier] == i).any())
    assert own.to_dict() == scan


def test_segment_table_averages_each_segment(bench):
    users = pd.Index(["a", "b", "c", "d"], name="user")
    own = pd.Series([True, False, False, True], index=users)
    ref = pd.DataFrame({0: [1.0, 0.0, 0.2, 0.6], 1: [0.8, 0.2, 0.2, 0.6]}, index=users)
    other = pd.DataFrame({0: [0.0, 0.5, 0.5, 0.0]}, index=users)
    t = bench("segments").segment_table({"ref": ref, "other": other}, own, "ref")
    assert t["own-edge"]["users"] == 2 and t["other"]["share"] == 0.5
    assert np.isclose(t["own-edge"]["models"]["ref"]["mean"], (0.9 + 0.6) / 2)
    assert np.isclose(t["other"]["models"]["other"]["mean"], 0.5)
    assert np.isclose(t["all"]["vs"]["other"]["diff"], ref.to_numpy().mean() - 0.25)


def test_own_item_stats_rank_the_own_items_by_recency(tmp_path, bench, event_graph):
    """Users 0–2 carted their last purchase and nothing else: one own item, the target, the
    most recent; a cart of an item bought earlier is excluded like the item itself."""
    rows = []
    for u in range(3):
        rows += [(f"u{u}", "old", 0, "buy"), (f"u{u}", "old", 1, "cart"),
                 (f"u{u}", "x", 2, "cart"), (f"u{u}", "y", 3, "cart")]  # fmt: skip
        rows += [(f"u{u}", f"b{u}", 4, "buy"), (f"u{u}", "x" if u else "y", 5, "buy")]
    graph = event_graph(rows, tmp_path / "g")
    st = bench("segments").own_item_stats(graph, "leave_last_out", (0.8, 0.9))
    # own items x (rank 1) and y (rank 0, most recent); "old" was bought: not an own item
    assert st["users"] == 3 and st["own_items_mean"] == 2.0
    assert st["target_most_recent"] == 1 / 3  # u0 bought y; u1, u2 bought x
    want = (1.0 + 2 / np.log2(3.0)) / 3
    assert abs(st["recency_rank_NDCG@10"] - want) < 1e-9
