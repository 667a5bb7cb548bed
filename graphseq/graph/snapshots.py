"""Per-timestep graphs: cumulative snapshots of a temporal graph, and user sequences."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable, time_quantiles
from graphseq.graph.sequences import SeqBatch

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData


def snapshot_boundaries(time: Tensor, num_steps: int, mode: str = "count") -> Tensor:
    """Right ends of ``num_steps`` cumulative windows over ``time`` (int64 seconds).

    ``count``: equal numbers of events per window (time quantiles); ``time``: equal spans.
    Snapshot ``s`` holds the events with ``time < boundaries[s]``; duplicates are merged, so
    fewer boundaries may come back. The last boundary is the largest time, so the last
    snapshot excludes the final second (callers scoring "now" use all events instead).
    """
    if time.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    t = time.double()
    if mode == "count":
        q = torch.linspace(0, 1, num_steps + 1)[1:].double()
        bounds = time_quantiles(t, q)
    elif mode == "time":
        bounds = torch.linspace(float(t.min()), float(t.max()), num_steps + 1)[1:].double()
    else:
        raise ValueError(f"unknown snapshot mode {mode!r}; valid: count, time")
    return torch.unique(bounds.long())


def snapshots(graph: HeteroData, num_steps: int, mode: str = "count") -> list[HeteroData]:
    """Cumulative per-timestep graphs: snapshot ``s`` keeps every timed edge (behavior and
    tag events, with their reverse edges) with ``time < boundary_s``; untimed side edges
    (item tags, KG) are kept whole. ``snapshot.boundary`` holds the window's right end."""
    ev = EventTable.from_graph(graph)
    out = []
    for b in snapshot_boundaries(ev.time, num_steps, mode).tolist():
        snap = graph.clone()
        for et in graph.edge_types:
            store = graph[et]
            src_et = (et[2], et[1][4:], et[0]) if et[1].startswith("rev_") else et
            time = graph[src_et].time if "time" in graph[src_et] else None
            if time is None:
                continue
            keep = time < b
            for key, value in store.items():
                if isinstance(value, Tensor) and value.size(-1) == keep.numel():
                    snap[et][key] = value[..., keep]
        snap.boundary = int(b)
        out.append(snap)
    return out


def user_sequences(graph: HeteroData, users: Tensor, max_len: int = 200) -> SeqBatch:
    """Each user's time-ordered events (item, time, behavior), the last ``max_len`` of them.

    Shapes: ``users`` (B,) → a :class:`SeqBatch` of (B, L) tensors, left-aligned.
    """
    ev = EventTable.from_graph(graph)
    ctx = GraphContext(ev, torch.ones(len(ev), dtype=torch.bool), ItemSide())
    return ctx.user_sequences(users, max_len)
