"""Canonical log → PyG ``HeteroData``: contiguous ids, one edge type per behavior, tags, KG.

This is where a CSV column becomes an edge: ``events.user``/``events.item`` become
``("user", <behavior>, "item")`` edges carrying ``time`` (int64 s), ``value`` (float32),
``order`` (int64, the event's position in the stable (timestamp, line) order) and, when the
log has stages (``split=predefined``), ``stage`` (int8: 0 train, 1 valid, 2 test).
Duplicate events are dropped here, and only here (``BuildOptions.dedup``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from data_builders.errors import DataError
from data_builders.log import CanonicalLog, check_targets
from graphseq.typing import edge_key

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


def _relation_name(rel: str) -> str:
    """Edge-type names: no commas (they separate ``src,rel,dst`` keys), no spaces."""
    return re.sub(r"[,\s]+", "_", str(rel)).strip("_") or "rel"


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``(codes, uniques)`` of a column: int codes into ``uniques`` (a Categorical's own codes
    and categories, else by first appearance in row order). Callers renumber by first
    appearance in event order, so the two give the same graph."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes), pd.Index(col.cat.categories, dtype=object)
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), uniques


def _duplicated(cols: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Rows equal to an earlier row on every ``(codes, n_codes)`` column (``keep="first"``).

    The columns are packed into one int64 key (re-compressed whenever the product of the
    code ranges would overflow), so no string is hashed twice and no DataFrame is copied.
    """
    key, n = cols[0]
    for codes, m in cols[1:]:
        if n * m >= 2**62:
            key, uniq = pd.factorize(key)
            n = len(uniq)
        key, n = key * m + codes, n * m
    return pd.Series(key, copy=False).duplicated().to_numpy()


def _kcore(user: np.ndarray, item: np.ndarray, k: int) -> np.ndarray:
    """Positions of the rows left when users and items with < ``k`` events are peeled off."""
    rows = np.arange(len(user))
    while True:
        u, i = user[rows], item[rows]
        keep = (np.bincount(u)[u] >= k) & (np.bincount(i)[i] >= k)
        if keep.all():
            return rows
        rows = rows[keep]


def _first_seen(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes by first appearance: ``(new codes, old code of each new code)``."""
    first = pd.unique(codes)
    remap = np.full(n_codes, -1, dtype=np.int64)
    remap[first] = np.arange(len(first))
    return remap[codes], first


def _filter(log: CanonicalLog, opts: BuildOptions, dropped: dict[str, int]) -> dict:
    """Dedup, time window, k-core, then the stable (timestamp, line) order.

    Works on integer codes of the user/item/behavior columns (strings are hashed once, by
    ``pd.factorize``) and returns the kept events in event order as numpy arrays: ``user``,
    ``item``, ``behavior`` (codes into the ``*_names`` uniques), ``timestamp``, ``value``.
    """
    ev = log.events
    user, user_names = _codes(ev["user"])
    item, item_names = _codes(ev["item"])
    beh, beh_names = _codes(ev["behavior"])
    ts = ev["timestamp"].to_numpy(np.int64)
    rows: np.ndarray | None = None  # kept rows; None: all, in row order
    if opts.dedup:
        dup = np.zeros(len(ev), dtype=bool)
        if len(ev):
            value, value_names = _codes(ev["value"])
            lo, hi = int(ts.min()), int(ts.max())
            if hi - lo < 2**40:  # seconds since the first event are already compact codes
                t_key = (ts - lo, hi - lo + 1)
            else:
                t_codes, t_names = _codes(ev["timestamp"])
                t_key = (t_codes, len(t_names))
            dup = _duplicated(
                [
                    (beh, len(beh_names)),
                    (value, len(value_names)),
                    (user, len(user_names)),
                    (item, len(item_names)),
                    t_key,
                ]
            )
        dropped["duplicate_rows"] = dropped.get("duplicate_rows", 0) + int(dup.sum())
        if dup.any():
            rows = np.flatnonzero(~dup)
    if opts.time_window is not None:
        start, end = opts.time_window
        t = _take(ts, rows)
        keep = (t >= start) & (t < end)
        dropped["outside_time_window"] = int((~keep).sum())
        rows = np.flatnonzero(keep) if rows is None else rows[keep]
    if opts.kcore > 0:
        n = len(ev) if rows is None else len(rows)
        core = _kcore(_take(user, rows), _take(item, rows), opts.kcore)
        rows = core if rows is None else rows[core]
        dropped["kcore"] = n - len(rows)
    if (len(ev) if rows is None else len(rows)) == 0:
        raise DataError("no events left after filtering", hint="loosen kcore / time_window")
    t, line = _take(ts, rows), _take(ev["line"].to_numpy(np.int64), rows)
    if not _in_event_order(t, line):
        order = np.lexsort((line, t))  # stable, like sort_values(kind="stable")
        rows = order if rows is None else rows[order]
        t = ts[rows]
    del line
    out = {
        "user": _take(user, rows),
        "item": _take(item, rows),
        "behavior": _take(beh, rows),
        "timestamp": t,
        "value": _take(ev["value"].to_numpy(np.float64), rows).astype(np.float32),
        "user_names": user_names,
        "item_names": item_names,
        "behavior_names": beh_names,
    }
    if "stage" in ev:
        out["stage"] = _take(ev["stage"].to_numpy(np.int8), rows)
    return out


def _take(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``a[rows]``; ``rows=None`` means every row, in row order (no copy)."""
    return a if rows is None else a[rows]


def _in_event_order(t: np.ndarray, line: np.ndarray) -> bool:
    """Whether rows are already sorted on (timestamp, line), so the stable sort is a no-op."""
    if not (t[1:] >= t[:-1]).all():
        return False
    tie = np.flatnonzero(t[1:] == t[:-1])
    return bool((line[tie + 1] >= line[tie]).all())


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
    ev = _filter(log, opts, dropped)
    n_events = len(ev["timestamp"])
    notes = _notes(log, ev, dropped)

    # ids by first appearance in event order
    u_idx, u_first = _first_seen(ev.pop("user"), len(ev["user_names"]))
    users = pd.Index(np.asarray(ev["user_names"].take(u_first), dtype=object), dtype=object)
    i_idx, i_first = _first_seen(ev.pop("item"), len(ev["item_names"]))
    item_raw = np.asarray(ev["item_names"].take(i_first), dtype=object)
    if log.items is not None:  # catalogue items with no events still get nodes (cold start)
        extra = pd.Index(log.items["item"].astype(str)).difference(pd.Index(item_raw), sort=False)
        item_raw = np.concatenate([item_raw, np.asarray(extra, dtype=object)])
    items = pd.Index(item_raw, dtype=object)
    time, value = ev["timestamp"], ev["value"]

    beh_code = ev.pop("behavior")
    names = [str(b) for b in ev["behavior_names"]]
    present = np.flatnonzero(np.bincount(beh_code, minlength=len(names)))
    behaviors = sorted({names[c] for c in present})
    targets = list(log.targets) if log.targets else list(behaviors)
    check_targets(targets, behaviors, column="behavior")

    data = HeteroData()
    data["user"].num_nodes = len(users)
    data["item"].num_nodes = len(items)
    if len(behaviors) == 1:
        groups = [np.arange(n_events)]
    else:  # one stable counting sort by behavior: each view's events stay in event order
        slot = {b: j for j, b in enumerate(behaviors)}
        b_idx = np.array([slot.get(s, -1) for s in names], dtype=np.int64)[beh_code]
        by_beh = np.argsort(b_idx, kind="stable")
        groups = np.split(by_beh, np.cumsum(np.bincount(b_idx, minlength=len(behaviors)))[:-1])
    del beh_code
    for b, sel in zip(behaviors, groups):
        store = data["user", _relation_name(b), "item"]
        store.edge_index = torch.from_numpy(np.stack([u_idx[sel], i_idx[sel]]))
        store.time = torch.from_numpy(time[sel])
        store.value = torch.from_numpy(value[sel])
        store.order = torch.from_numpy(np.ascontiguousarray(sel, dtype=np.int64))
        if "stage" in ev:
            store.stage = torch.from_numpy(np.ascontiguousarray(ev["stage"][sel]))
    id_maps: dict[str, pd.Index] = {"user": users, "item": items}

    _add_tags(data, log, users, items, id_maps)
    _add_kg(data, log, items, id_maps, opts.kg_top_relations)
    if opts.reverse:
        for (src, rel, dst), store in list(data.edge_items()):
            data[dst, f"rev_{rel}", src].edge_index = store.edge_index.flip(0)
    data.behaviors = [_relation_name(b) for b in behaviors]
    data.targets = [_relation_name(t) for t in targets]
    report = {
        "nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "edges": {edge_key(et): int(data[et].edge_index.size(1)) for et in data.edge_types},
        "events": n_events,
        "behaviors": data.behaviors,
        "targets": data.targets,
        "dropped": dropped,
        "time_range": [int(time.min()), int(time.max())],
        "source": log.source,
        **notes,
    }
    data.time_kind = notes["time"]
    return data, id_maps, report


def _notes(log: CanonicalLog, ev: dict, dropped: dict[str, int]) -> dict:
    """Report keys about time and ids: ``time`` (``timestamp`` | ``input_order``), and when they
    apply ``time_resolution``, ``same_timestamp_events``, ``float_ids``, ``stages``."""
    info = log.info
    notes: dict = {"time": info.get("time", "timestamp")}
    if info.get("time_resolution") == "day":
        notes["time_resolution"] = "day"
        user, t = ev["user"].astype(np.int64), ev["timestamp"]
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
    if "stage" in ev:
        counts = np.bincount(ev["stage"], minlength=3)
        notes["stages"] = {s: int(c) for s, c in zip(("train", "valid", "test"), counts)}
    return notes


def _add_tags(
    data: HeteroData, log: CanonicalLog, users: pd.Index, items: pd.Index, id_maps: dict
) -> None:
    item_tags = pd.DataFrame(columns=["item", "tag"])
    if log.items is not None and "tags" in log.items:
        item_tags = (
            log.items[["item", "tags"]].explode("tags").dropna().rename(columns={"tags": "tag"})
        )
        item_tags = item_tags[item_tags["tag"].astype(str).str.len() > 0]
    tag_ev = log.tag_events
    if tag_ev is not None:
        tag_ev = tag_ev[tag_ev["user"].isin(users)]
    names = list(item_tags["tag"].astype(str))
    if tag_ev is not None:
        names += list(tag_ev["tag"].astype(str))
    if not names:
        return
    tags = pd.Index(pd.unique(pd.Series(names, dtype=object)), dtype=object)
    id_maps["tag"] = tags
    data["tag"].num_nodes = len(tags)
    if len(item_tags):
        it = item_tags.drop_duplicates()
        data["item", "has_tag", "tag"].edge_index = torch.stack(
            [
                torch.from_numpy(items.get_indexer(it["item"].astype(str)).astype(np.int64)),
                torch.from_numpy(tags.get_indexer(it["tag"].astype(str)).astype(np.int64)),
            ]
        )
    if tag_ev is not None and len(tag_ev):
        tag_ev = tag_ev.sort_values(["timestamp", "line"], kind="stable")
        store = data["user", "tagged", "tag"]
        store.edge_index = torch.stack(
            [
                torch.from_numpy(users.get_indexer(tag_ev["user"]).astype(np.int64)),
                torch.from_numpy(tags.get_indexer(tag_ev["tag"].astype(str)).astype(np.int64)),
            ]
        )
        store.time = torch.from_numpy(tag_ev["timestamp"].to_numpy(np.int64))


def _add_kg(data: HeteroData, log: CanonicalLog, items: pd.Index, id_maps: dict, top: int) -> None:
    """Triples whose head/tail is linked to an item attach to that item node; others to entities."""
    if log.kg is None or len(log.kg) == 0 or top == 0:
        return
    kg = log.kg.astype(str)
    link = (
        {}
        if log.links is None
        else dict(zip(log.links["entity"].astype(str), log.links["item"].astype(str)))
    )
    counts = kg["relation"].value_counts()
    keep = counts.index if top < 0 else counts.index[:top]
    kg = kg[kg["relation"].isin(keep)]
    head_item = kg["head"].map(link)
    tail_item = kg["tail"].map(link)
    head_item = head_item.where(head_item.isin(items))
    tail_item = tail_item.where(tail_item.isin(items))
    ent_names = pd.concat([kg["head"][head_item.isna()], kg["tail"][tail_item.isna()]])
    entities = pd.Index(pd.unique(ent_names), dtype=object)
    if len(entities):
        id_maps["entity"] = entities
        data["entity"].num_nodes = len(entities)
    for rel, grp in kg.groupby("relation", sort=True):
        hi, ti = head_item[grp.index], tail_item[grp.index]
        for h_is_item in (True, False):
            for t_is_item in (True, False):
                m = (hi.notna() == h_is_item) & (ti.notna() == t_is_item)
                if not m.any():
                    continue
                h = items.get_indexer(hi[m]) if h_is_item else entities.get_indexer(grp["head"][m])
                t = items.get_indexer(ti[m]) if t_is_item else entities.get_indexer(grp["tail"][m])
                et = (
                    "item" if h_is_item else "entity",
                    _relation_name(rel),
                    "item" if t_is_item else "entity",
                )
                data[et].edge_index = torch.from_numpy(np.stack([h, t]).astype(np.int64))
