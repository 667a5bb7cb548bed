"""graphseq.explore: graph statistics and ego graphs with raw ids, checked by hand on a tiny log."""

from __future__ import annotations

import networkx as nx
import pandas as pd
import pytest

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.store import save_graph
from graphseq.explore import degrees, ego_graph, graph_stats


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """u1 clicks then buys a, buys b; u2 buys b, c; u3 buys d (its own component); item e is
    in the catalogue (items table) but has no event."""
    events = pd.DataFrame({
        "user": ["u1", "u1", "u1", "u2", "u2", "u3"],
        "item": ["a", "a", "b", "b", "c", "d"],
        "timestamp": [1, 2, 3, 4, 5, 6],
        "behavior": ["click", "buy", "buy", "buy", "buy", "buy"],
        "value": 1.0,
        "line": range(2, 8),
    })  # fmt: skip
    items = pd.DataFrame({"item": list("abcde"), "title": ["A", "B", "C", "D", "E"],
                          "tags": [["x"], ["x", "y"], ["y"], [], []]})  # fmt: skip
    log = CanonicalLog(events=events, items=items, targets=["buy"])
    out = tmp_path_factory.mktemp("explore") / "g"
    save_graph(out, *build_graph(log), items=items)
    return out


def test_graph_stats_by_hand(tiny):
    s = graph_stats(tiny)
    assert s["events"] == 6 and s["pairs"] == 5
    n_items = s["nodes"]["item"]
    assert s["nodes"]["user"] == 3
    assert s["behaviors"]["buy"] == {"events": 5, "pairs": 5, "users": 3, "items": 4,
                                     "density": 5 / (3 * n_items)}  # fmt: skip
    assert s["behaviors"]["click"]["pairs"] == 1
    # {u1, u2, a, b, c} and {u3, d}, plus one singleton per item without events
    assert s["components"]["largest"] == 5
    assert s["components"]["count"] == 2 + (n_items - 4)
    assert s["degree"]["user"]["max"] == 2 and s["degree"]["user"]["min"] == 1
    assert s["degree"]["item"]["zero"] == n_items - 4
    d = degrees(tiny).set_index(["kind", "id"])
    assert d.loc[("user", "u1"), "degree"] == 2 and d.loc[("user", "u1"), "events"] == 3
    assert d.loc[("item", "b"), "degree"] == 2


def test_ego_graph_raw_ids_behaviors_and_tags(tiny):
    G = ego_graph(tiny, "u1", radius=1, kind="user")
    assert set(G) == {("user", "u1"), ("item", "a"), ("item", "b")}
    assert G.edges[("user", "u1"), ("item", "a")]["behaviors"] == "click+buy"
    assert G.edges[("user", "u1"), ("item", "a")]["events"] == 2
    assert G.nodes[("item", "a")]["label"] == "A"
    G2 = ego_graph(tiny, "u1", radius=2, kind="user")
    assert ("user", "u2") in G2 and ("item", "c") not in G2
    G3 = ego_graph(tiny, "u1", radius=3, kind="user")
    assert ("item", "c") in G3 and ("user", "u3") not in G3
    assert nx.is_connected(G3)
    recent = ego_graph(tiny, "u1", radius=1, kind="user", limit=1)
    assert set(recent) == {("user", "u1"), ("item", "b")}  # b is the most recent
    tagged = ego_graph(tiny, "b", radius=1, kind="item", tags=True)
    assert {("tag", "x"), ("tag", "y")} <= set(tagged) and ("user", "u2") in tagged
    with pytest.raises(DataError, match="unknown user id 'nobody'"):
        ego_graph(tiny, "nobody")
