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
from data_builders.readers.columns import release_memory
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
        cat = col.array  # its codes, not a copy (`col.cat.codes` copies)
        return cat.codes, pd.Index(cat.categories, dtype=object)
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
    """``(remap, first)``: ``remap[code]`` numbers codes by first appearance in ``codes``
    (-1 for codes that never appear); ``first[k]`` is the code numbered ``k``."""
    first = pd.unique(codes)
    remap = np.full(n_codes, -1, dtype=np.int64)
    remap[first] = np.arange(len(first))
    return remap, first


DEDUP_WINDOW = 4_000_000  # events per dedup window (bounds the hash table's memory)


def _dedup(ev: pd.DataFrame, cols: dict, order: np.ndarray | None) -> np.ndarray:
    """Duplicate events in event order (mask over ``order``, or over rows when ``None``):
    equal to an earlier event on user, item, timestamp, behavior and value.

    Duplicates share a timestamp, so the event-ordered rows are cut into windows of about
    ``DEDUP_WINDOW`` events at timestamp changes and each window is hashed on its own.
    """
    ts = cols["timestamp"]
    t_sorted = _take(ts, order)
    n = len(t_sorted)
    dup = np.zeros(n, dtype=bool)
    value = ev["value"].to_numpy(np.float64)
    cuts = [0]
    while cuts[-1] < n:
        end = min(cuts[-1] + DEDUP_WINDOW, n)
        if end < n:  # move the cut to the next timestamp change
            end = int(np.searchsorted(t_sorted, t_sorted[end - 1], side="right"))
        cuts.append(max(end, cuts[-1] + 1))
    for a, b in zip(cuts[:-1], cuts[1:]):
        idx = slice(a, b) if order is None else order[a:b]
        t = ts[idx]
        keys = [(t - t.min(), int(t.max() - t.min()) + 1)]
        for name in ("behavior", "user", "item"):
            c, n_c = cols[name], len(cols[name + "_names"])
            keys.append((c[idx].astype(np.int64), n_c))
        v_codes, v_names = pd.factorize(value[idx])
        keys.append((v_codes.astype(np.int64), len(v_names)))
        dup[a:b] = _duplicated(keys)
    return dup


def _filter(log: CanonicalLog, opts: BuildOptions, dropped: dict[str, int]) -> dict:
    """Event order (stable on timestamp, line), then dedup, time window and k-core.

    Works on integer codes of the user/item/behavior columns (a Categorical's codes, else
    ``pd.factorize``). Returns the column arrays *unsubsetted* (``user``, ``item``,
    ``behavior`` codes into the ``*_names`` uniques, ``timestamp``, ``value``, optionally
    ``stage``), and the kept events in event order as ``rows`` (row indices) or ``keep``
    (a mask over the rows, which are then in event order), or neither (every row, as is);
    ``n`` is how many.
    """
    ev = log.events
    user, user_names = _codes(ev["user"])
    item, item_names = _codes(ev["item"])
    beh, beh_names = _codes(ev["behavior"])
    ts = ev["timestamp"].to_numpy(np.int64)
    cols = {
        "user": user,
        "item": item,
        "behavior": beh,
        "timestamp": ts,
        "user_names": user_names,
        "item_names": item_names,
        "behavior_names": beh_names,
    }
    line = ev["line"].to_numpy(np.int64)
    rows = None if _in_event_order(ts, line) else np.lexsort((line, ts))  # event order
    del line
    keep: np.ndarray | None = None  # over `rows` (or over rows as they are): kept events
    if opts.dedup:
        dup = _dedup(ev, cols, rows) if len(ev) else np.zeros(0, dtype=bool)
        dropped["duplicate_rows"] = dropped.get("duplicate_rows", 0) + int(dup.sum())
        if dup.any():
            keep = ~dup
        del dup
        release_memory()  # the windows' hash tables
    if opts.time_window is not None:
        start, end = opts.time_window
        t = _take(ts, rows)
        inside = (t >= start) & (t < end)
        dropped["outside_time_window"] = int((~inside if keep is None else keep & ~inside).sum())
        keep = inside if keep is None else keep & inside
    if opts.kcore > 0:
        if keep is not None:  # rare at scale: make the kept rows explicit
            rows = np.flatnonzero(keep) if rows is None else rows[keep]
            keep = None
        n = len(ev) if rows is None else len(rows)
        core = _kcore(_take(user, rows), _take(item, rows), opts.kcore)
        rows = core if rows is None else rows[core]
        dropped["kcore"] = n - len(rows)
    if rows is not None and keep is not None:
        rows, keep = rows[keep], None
    n_kept = int(keep.sum()) if keep is not None else len(ev) if rows is None else len(rows)
    if n_kept == 0:
        raise DataError("no events left after filtering", hint="loosen kcore / time_window")
    cols["keep"] = keep
    cols["n"] = n_kept
    cols["rows"] = rows
    cols["value"] = ev["value"].to_numpy(np.float64)
    if "stage" in ev:
        cols["stage"] = ev["stage"].to_numpy(np.int8)
    return cols


def _take(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``a[rows]`` (an index or a mask); ``rows=None`` means every row, as is (no copy)."""
    return a if rows is None else a[rows]


def _kept(ev: dict, name: str) -> np.ndarray:
    """Column ``name`` of the kept events, in event order."""
    a = ev[name]
    if ev["rows"] is not None:
        return a[ev["rows"]]
    return a if ev["keep"] is None else a[ev["keep"]]


def _in_event_order(t: np.ndarray, line: np.ndarray) -> bool:
    """Whether rows are already sorted on (timestamp, line), so the stable sort is a no-op."""
    step, n = 1 << 22, len(t) - 1  # blocks: no (E,) temporaries
    for a in range(0, max(n, 0), step):
        b = min(a + step, n)
        t0, t1, l0, l1 = t[a:b], t[a + 1 : b + 1], line[a:b], line[a + 1 : b + 1]
        if not ((t1 > t0) | ((t1 == t0) & (l1 >= l0))).all():
            return False
    return True


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
    rows, keep, n_events = ev["rows"], ev["keep"], ev["n"]
    notes = _notes(log, ev, dropped)

    # ids by first appearance in event order
    u_remap, u_first = _first_seen(_kept(ev, "user"), len(ev["user_names"]))
    users = pd.Index(np.asarray(ev["user_names"].take(u_first), dtype=object), dtype=object)
    i_remap, i_first = _first_seen(_kept(ev, "item"), len(ev["item_names"]))
    item_raw = np.asarray(ev["item_names"].take(i_first), dtype=object)
    if log.items is not None:  # catalogue items with no events still get nodes (cold start)
        extra = pd.Index(log.items["item"].astype(str)).difference(pd.Index(item_raw), sort=False)
        item_raw = np.concatenate([item_raw, np.asarray(extra, dtype=object)])
    items = pd.Index(item_raw, dtype=object)

    beh_code = _kept(ev, "behavior")
    names = [str(b) for b in ev["behavior_names"]]
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
            sel = np.flatnonzero(np.isin(beh_code, codes))
        if rows is not None:
            idx = rows[sel]
        elif keep is not None:  # the same events as positions among all rows
            idx = np.flatnonzero(keep & np.isin(ev["behavior"], codes))
        else:
            idx = sel
        store = data["user", _relation_name(b), "item"]
        ei = np.empty((2, len(sel)), dtype=np.int64)
        np.take(u_remap, ev["user"][idx], out=ei[0])
        np.take(i_remap, ev["item"][idx], out=ei[1])
        store.edge_index = torch.from_numpy(ei)
        time = ev["timestamp"][idx]
        store.time = torch.from_numpy(time)
        store.value = torch.from_numpy(ev["value"][idx].astype(np.float32))
        store.order = torch.from_numpy(sel)
        if "stage" in ev:
            store.stage = torch.from_numpy(ev["stage"][idx])
        lo, hi = int(time.min()), int(time.max())
        t_lo, t_hi = min(lo, t_lo if t_lo is not None else lo), max(hi, t_hi or hi)
        del idx, ei, time
    del beh_code
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
        "time_range": [t_lo, t_hi],
        "source": log.source,
        **notes,
    }
    data.time_kind = notes["time"]
    release_memory()
    return data, id_maps, report


def _notes(log: CanonicalLog, ev: dict, dropped: dict[str, int]) -> dict:
    """Report keys about time and ids: ``time`` (``timestamp`` | ``input_order``), and when they
    apply ``time_resolution``, ``same_timestamp_events``, ``float_ids``, ``stages``."""
    info = log.info
    notes: dict = {"time": info.get("time", "timestamp")}
    if info.get("time_resolution") == "day":
        notes["time_resolution"] = "day"
        user = _kept(ev, "user").astype(np.int64)
        t = _kept(ev, "timestamp")
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
        counts = np.bincount(_kept(ev, "stage"), minlength=3)
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
