"""Graph statistics and ego-graph views for notebooks (networkx, raw ids throughout).

``source`` is a graph directory, a run directory, or a loaded
:class:`~graphseq.recommend.Run`. Nodes of the networkx graphs are ``(type, raw id)``
tuples, e.g. ``("user", "196")`` / ``("item", "50")`` / ``("tag", "Comedy")``, with
attributes ``kind`` and ``label`` (the item's title when the log has one)::

    from graphseq.explore import ego_graph, graph_stats

    graph_stats("graphs/ml100k")["components"]
    G = ego_graph("runs/gs", "196", radius=1, kind="user", limit=10, tags=True)
    nx.draw_networkx(G, labels=dict(G.nodes(data="label")))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from data_builders.errors import DataError

if TYPE_CHECKING:
    import networkx as nx

    from graphseq.graph.context import ItemSide
    from graphseq.graph.events import EventTable

NodeKey = tuple[str, str]  # (node type, raw id)


@dataclass
class _Source:
    ev: EventTable
    ids: dict[str, pd.Index]
    side: ItemSide
    titles: pd.Series | None  # raw item id -> title


def _source(source: Any) -> _Source:
    if hasattr(source, "ev") and hasattr(source, "id_maps"):  # a loaded Run
        return _Source(source.ev, source.id_maps, source.side, _titles(source.cfg.graph))
    from graphseq.graph.data import open_graph

    path = Path(source)
    if (path / "config.yaml").exists():  # a run directory: its graph
        from graphseq.config import load_config
        from graphseq.training.run import resolve_graph

        path = resolve_graph(path, load_config(path / "config.yaml").graph)
    data = open_graph(path, require_targets=False)  # no PyG import needed
    return _Source(data.events, data.ids, data.side, _titles(path))


def _titles(graph_dir: str | Path) -> pd.Series | None:
    from data_builders.store import load_items

    items = load_items(graph_dir)
    if items is None or "title" not in items:
        return None
    return items.set_index(items["item"].astype(str))["title"]


def _pairs(ev: EventTable) -> pd.DataFrame:
    """Distinct (user, item) pairs with their event count, behaviors and last time."""
    df = pd.DataFrame({
        "user": ev.user.numpy(), "item": ev.item.numpy(), "time": ev.time.numpy(),
        "behavior": np.asarray(ev.behaviors, dtype=object)[ev.behavior.numpy()],
    })  # fmt: skip
    g = df.groupby(["user", "item"], sort=False)
    return g.agg(events=("time", "size"), last=("time", "max"),
                 behaviors=("behavior", lambda b: "+".join(dict.fromkeys(b)))).reset_index()  # fmt: skip


def _summary(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.25, 0.5, 0.75, 0.9]) if len(x) else [0.0] * 4
    return {"min": float(x.min()) if len(x) else 0.0, "p25": float(q[0]), "median": float(q[1]),
            "p75": float(q[2]), "p90": float(q[3]), "max": float(x.max()) if len(x) else 0.0,
            "mean": float(x.mean()) if len(x) else 0.0}  # fmt: skip


def degrees(source: Any) -> pd.DataFrame:
    """One row per user and item: ``kind``, raw ``id``, ``degree`` (distinct neighbours over
    every behavior) and ``events`` (for histograms in notebooks)."""
    s = _source(source)
    pairs = _pairs(s.ev)
    rows = []
    for kind, n in (("user", s.ev.num_users), ("item", s.ev.num_items)):
        deg = np.bincount(pairs[kind].to_numpy(), minlength=n)
        evs = np.bincount(getattr(s.ev, kind).numpy(), minlength=n)
        rows.append(pd.DataFrame({"kind": kind, "id": s.ids[kind].astype(str),
                                  "degree": deg, "events": evs}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def graph_stats(source: Any) -> dict[str, Any]:
    """Sizes, per-behavior density, degree distributions and connected components of the
    user–item graph (every behavior's edges; users and items without events count as
    components of their own)."""
    import networkx as nx

    s = _source(source)
    ev, nu, ni = s.ev, s.ev.num_users, s.ev.num_items
    pairs = _pairs(ev)
    per = {}
    for b, name in enumerate(ev.behaviors):
        m = (ev.behavior == b).numpy()
        u, i = ev.user.numpy()[m], ev.item.numpy()[m]
        n_pairs = len(np.unique(u.astype(np.int64) * ni + i))
        per[name] = {"events": int(m.sum()), "pairs": n_pairs, "users": len(np.unique(u)),
                     "items": len(np.unique(i)), "density": n_pairs / (nu * ni) if nu * ni else 0.0}  # fmt: skip
    G = nx.Graph()
    G.add_nodes_from(("user", u) for u in range(nu))
    G.add_nodes_from(("item", i) for i in range(ni))
    G.add_edges_from(zip(zip(["user"] * len(pairs), pairs["user"]),
                         zip(["item"] * len(pairs), pairs["item"])))  # fmt: skip
    sizes = sorted((len(c) for c in nx.connected_components(G)), reverse=True)
    deg = {
        k: np.bincount(pairs[k].to_numpy(), minlength=n) for k, n in (("user", nu), ("item", ni))
    }
    return {
        "nodes": {nt: len(idx) for nt, idx in s.ids.items()},
        "events": len(ev),
        "pairs": len(pairs),
        "density": len(pairs) / (nu * ni) if nu * ni else 0.0,
        "behaviors": per,
        "degree": {k: {**_summary(d), "zero": int((d == 0).sum())} for k, d in deg.items()},
        "components": {
            "count": len(sizes),
            "largest": sizes[0] if sizes else 0,
            "largest_share": sizes[0] / (nu + ni) if sizes else 0.0,
            "isolated": int(sum(1 for x in sizes if x == 1)),
        },  # fmt: skip
    }


def _label(kind: str, raw: str, titles: pd.Series | None) -> str:
    if kind == "item" and titles is not None and raw in titles.index:
        return str(titles[raw])
    return f"{kind} {raw}"


def ego_graph(
    source: Any,
    node: str,
    radius: int = 1,
    kind: str = "user",
    limit: int | None = None,
    tags: bool = False,
) -> nx.Graph:
    """The user–item graph within ``radius`` hops of the ``kind`` node with raw id ``node``.

    Edges carry ``behaviors`` (e.g. ``"click+buy"``), ``events`` and ``last`` (time of the
    latest event). ``limit`` keeps each expanded node's ``limit`` most recent neighbours (a
    readable plot); ``tags`` adds the items' tags (``("tag", raw)`` nodes).
    """
    import networkx as nx

    if kind not in ("user", "item"):
        raise DataError(f"kind must be user or item, got {kind!r}")
    s = _source(source)
    pos = s.ids[kind].get_indexer([str(node)])[0]
    if pos < 0:
        raise DataError(f"unknown {kind} id {str(node)!r}")
    pairs = _pairs(s.ev).sort_values("last", ascending=False, kind="stable")
    keep: dict[str, set[int]] = {"user": set(), "item": set()}
    keep[kind].add(int(pos))
    frontier, side, edges = {int(pos)}, kind, []
    for _ in range(radius):
        other = "item" if side == "user" else "user"
        hop = pairs[pairs[side].isin(frontier)]
        if limit is not None:
            hop = hop.groupby(side, sort=False).head(limit)
        edges.append(hop)
        frontier = set(hop[other].tolist()) - keep[other]
        keep[other] |= frontier
        side = other
    G = nx.Graph()
    for k, members in keep.items():
        for n in sorted(members):
            raw = str(s.ids[k][n])
            G.add_node((k, raw), kind=k, label=_label(k, raw, s.titles))
    for e in (pd.concat(edges) if edges else pairs.iloc[:0]).itertuples():
        G.add_edge(("user", str(s.ids["user"][e.user])), ("item", str(s.ids["item"][e.item])),
                   behaviors=e.behaviors, events=int(e.events), last=int(e.last))  # fmt: skip
    if tags and s.side.item_tag is not None:
        for i, t in s.side.item_tag.T.tolist():
            if i in keep["item"]:
                raw = str(s.ids["tag"][t])
                G.add_node(("tag", raw), kind="tag", label=raw)
                G.add_edge(("item", str(s.ids["item"][i])), ("tag", raw))
    return G


__all__ = ["degrees", "ego_graph", "graph_stats"]
