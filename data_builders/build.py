"""Canonical log → PyG ``HeteroData``: contiguous ids, one edge type per behavior, tags, KG.

This is where a CSV column becomes an edge: ``events.user``/``events.item`` become
``("user", <behavior>, "item")`` edges carrying ``time`` (int64 s), ``value`` (float32),
``order`` (int64, the event's position in the stable (timestamp, line) order) and, when the
log has stages (``split=predefined``), ``stage`` (int8: 0 train, 1 valid, 2 test).
Duplicate events are dropped here, and only here (``BuildOptions.dedup``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from data_builders.aliases import edge_key
from data_builders.event_filter import FilteredEvents, filter_events, first_seen
from data_builders.log import CanonicalLog, check_targets
from data_builders.readers.columns import release_memory
from data_builders.side_edges import add_kg, add_tags, relation_name

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """How a log becomes a graph.

    Attributes:
        dedup: drop exact duplicate events (same user, item, time, behavior, value).
        kcore: keep only users and items with at least this many events (0: off).
        time_window: keep events with ``start <= timestamp < end`` (``None``: all).
        kg_top_relations: keep the most frequent KG relations (0: none, -1: all).
        reverse: add reverse edges ``rev_<rel>``.
    """

    dedup: bool = True  # duplicate rows are noise in every log we have seen
    kcore: int = 0  # off: filtering changes the task, users opt in
    time_window: tuple[int, int] | None = None  # off
    kg_top_relations: int = 20  # the long tail of Freebase relations is mostly singletons
    reverse: bool = True  # GNN encoders need both directions


def build_graph(
    log: CanonicalLog, options: BuildOptions | None = None
) -> tuple[HeteroData, dict[str, pd.Index], dict]:
    """Build the temporal heterogeneous graph.

    Args:
        log: a validated canonical log (from any reader in ``data_builders.readers``).
        options: filtering and KG options (defaults: :class:`BuildOptions`).

    Returns:
        ``(graph, id_maps, report)``: ``id_maps[node_type][index]`` is the raw id (str) of
        node ``index``; ``report`` is the dict written to ``report.json``. Graph-level
        attributes: ``graph.behaviors`` (list[str]) and ``graph.targets`` (list[str]).
    """
    opts = options or BuildOptions()
    dropped = dict(log.dropped)
    ev = filter_events(
        log, dropped, dedup=opts.dedup, kcore=opts.kcore, time_window=opts.time_window
    )
    rows, keep, n_events = ev.rows, ev.keep, ev.n
    notes = _notes(log, ev, dropped)

    # ids by first appearance in event order
    u_remap, u_first = first_seen(ev.kept(ev.user), len(ev.user_names))
    users = pd.Index(np.asarray(ev.user_names.take(u_first), dtype=object), dtype=object)
    i_remap, i_first = first_seen(ev.kept(ev.item), len(ev.item_names))
    item_raw = np.asarray(ev.item_names.take(i_first), dtype=object)
    if log.items is not None:  # catalogue items with no events still get nodes (cold start)
        extra = pd.Index(log.items["item"].astype(str)).difference(pd.Index(item_raw), sort=False)
        item_raw = np.concatenate([item_raw, np.asarray(extra, dtype=object)])
    items = pd.Index(item_raw, dtype=object)

    beh_code = ev.kept(ev.behavior)
    names = [str(b) for b in ev.behavior_names]
    present = np.flatnonzero(np.bincount(beh_code, minlength=len(names)))
    behaviors = sorted({names[c] for c in present})
    targets = list(log.targets) if log.targets else list(behaviors)
    check_targets(targets, behaviors, column="behavior")

    data = HeteroData()
    data["user"].num_nodes = len(users)
    data["item"].num_nodes = len(items)
    t_lo, t_hi = None, None
    for b in behaviors:  # each view's events in event order; `sel` are event-order positions
        codes = [c for c, name in enumerate(names) if name == b]
        if len(behaviors) == 1:
            sel = np.arange(n_events, dtype=np.int64)
        else:
            sel = np.flatnonzero(_is_any(beh_code, codes))
        if rows is not None:
            idx = rows[sel]
        elif keep is not None:  # the same events as positions among all rows
            idx = np.flatnonzero(keep & _is_any(ev.behavior, codes))
        else:
            idx = sel
        store = data["user", relation_name(b), "item"]
        ei = np.empty((2, len(sel)), dtype=np.int64)
        np.take(u_remap, ev.user[idx], out=ei[0])
        np.take(i_remap, ev.item[idx], out=ei[1])
        store.edge_index = torch.from_numpy(ei)
        time = ev.timestamp[idx]
        store.time = torch.from_numpy(time)
        store.value = torch.from_numpy(ev.value[idx].astype(np.float32))
        store.order = torch.from_numpy(sel)
        if ev.stage is not None:
            store.stage = torch.from_numpy(ev.stage[idx])
        lo, hi = int(time.min()), int(time.max())
        t_lo, t_hi = min(lo, t_lo if t_lo is not None else lo), max(hi, t_hi or hi)
        del idx, ei, time
    del beh_code
    id_maps: dict[str, pd.Index] = {"user": users, "item": items}

    add_tags(data, log, users, items, id_maps)
    add_kg(data, log, items, id_maps, opts.kg_top_relations)
    if opts.reverse:
        for (src, rel, dst), store in list(data.edge_items()):
            data[dst, f"rev_{rel}", src].edge_index = store.edge_index.flip(0)
    data.behaviors = [relation_name(b) for b in behaviors]
    data.targets = [relation_name(t) for t in targets]
    report = {
        "nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "edges": {edge_key(et): int(data[et].edge_index.size(1)) for et in data.edge_types},
        "events": n_events,
        "behaviors": data.behaviors,
        "targets": data.targets,
        "dropped": dropped,
        "time_range": [t_lo, t_hi],
        "source": log.source,
        **notes,
    }
    data.time_kind = notes["time"]
    release_memory()
    return data, id_maps, report


def _is_any(codes: np.ndarray, values: list[int]) -> np.ndarray:
    """``np.isin(codes, values)`` for a few values (comparisons beat isin's sort by far)."""
    out = codes == values[0]
    for v in values[1:]:
        out |= codes == v
    return out


def _notes(log: CanonicalLog, ev: FilteredEvents, dropped: dict[str, int]) -> dict:
    """Report keys about time and ids: ``time`` (``timestamp`` | ``input_order``), and when they
    apply ``time_resolution``, ``same_timestamp_events``, ``float_ids``, ``id_dtypes``,
    ``stages``."""
    info = log.info
    notes: dict = {"time": info.get("time", "timestamp")}
    if info.get("time_resolution") == "day":
        notes["time_resolution"] = "day"
        user = ev.kept(ev.user).astype(np.int64)
        t = ev.kept(ev.timestamp)
        same = int(pd.Series((t - t.min()) * (int(user.max()) + 1) + user).duplicated().sum())
        notes["same_timestamp_events"] = same
        _log.warning(
            "timestamps are whole days: %d events share their user's day with an earlier one "
            "and are kept in file order; %d rows identical to an earlier one (same day, user, "
            "item, behavior and value) were dropped as duplicate_rows, and may be distinct "
            "events of that day (BuildOptions(dedup=False) keeps them)",
            same,
            dropped.get("duplicate_rows", 0),
        )
    if info.get("float_ids"):
        notes["float_ids"] = dict(info["float_ids"])
    if info.get("id_dtypes"):  # integer raw ids (a DataFrame log): outputs give them back so
        notes["id_dtypes"] = dict(info["id_dtypes"])
    if ev.stage is not None:
        counts = np.bincount(ev.kept(ev.stage), minlength=3)
        notes["stages"] = {s: int(c) for s, c in zip(("train", "valid", "test"), counts)}
    return notes
