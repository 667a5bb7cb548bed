"""Canonical log → PyG ``HeteroData``: contiguous ids, one edge type per behavior, tags, KG.

This is where a CSV column becomes an edge: ``events.user``/``events.item`` become
``("user", <behavior>, "item")`` edges carrying ``time`` (int64 s), ``value`` (float32) and
``order`` (int64, the event's position in the stable (timestamp, line) order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from graphseq.typing import edge_key


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


def _kcore(events: pd.DataFrame, k: int) -> pd.DataFrame:
    while True:
        uc = events["user"].map(events["user"].value_counts())
        ic = events["item"].map(events["item"].value_counts())
        keep = (uc >= k) & (ic >= k)
        if keep.all():
            return events
        events = events[keep]


def _filter(log: CanonicalLog, opts: BuildOptions, dropped: dict[str, int]) -> pd.DataFrame:
    ev = log.events
    if opts.dedup:
        dup = ev.duplicated(subset=["user", "item", "timestamp", "behavior", "value"])
        dropped["duplicate_rows"] = dropped.get("duplicate_rows", 0) + int(dup.sum())
        ev = ev[~dup]
    if opts.time_window is not None:
        start, end = opts.time_window
        keep = (ev["timestamp"] >= start) & (ev["timestamp"] < end)
        dropped["outside_time_window"] = int((~keep).sum())
        ev = ev[keep]
    if opts.kcore > 0:
        n = len(ev)
        ev = _kcore(ev, opts.kcore)
        dropped["kcore"] = n - len(ev)
    if len(ev) == 0:
        raise DataError("no events left after filtering", hint="loosen kcore / time_window")
    return ev.sort_values(["timestamp", "line"], kind="stable").reset_index(drop=True)


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

    users = pd.Index(pd.unique(ev["user"]), dtype=object)
    item_raw = pd.unique(ev["item"])
    if log.items is not None:  # catalogue items with no events still get nodes (cold start)
        extra = pd.Index(log.items["item"].astype(str)).difference(pd.Index(item_raw), sort=False)
        item_raw = np.concatenate([item_raw, np.asarray(extra, dtype=object)])
    items = pd.Index(item_raw, dtype=object)
    u_idx = torch.from_numpy(users.get_indexer(ev["user"]).astype(np.int64))
    i_idx = torch.from_numpy(items.get_indexer(ev["item"]).astype(np.int64))
    time = torch.from_numpy(ev["timestamp"].to_numpy(np.int64, copy=True))
    value = torch.from_numpy(ev["value"].to_numpy(np.float32, copy=True))
    order = torch.arange(len(ev), dtype=torch.int64)

    behaviors = sorted(ev["behavior"].astype(str).unique().tolist())
    targets = list(log.targets) if log.targets else list(behaviors)
    unknown = [t for t in targets if t not in behaviors]
    if unknown:
        raise DataError(
            f"target behaviors {unknown} do not occur in the log",
            column="behavior",
            hint=f"behaviors present: {behaviors}",
        )

    data = HeteroData()
    data["user"].num_nodes = len(users)
    data["item"].num_nodes = len(items)
    beh = ev["behavior"].astype(str).to_numpy()
    for b in behaviors:
        m = torch.from_numpy(beh == b)
        store = data["user", _relation_name(b), "item"]
        store.edge_index = torch.stack([u_idx[m], i_idx[m]])
        store.time, store.value, store.order = time[m], value[m], order[m]
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
        "events": int(len(ev)),
        "behaviors": data.behaviors,
        "targets": data.targets,
        "dropped": dropped,
        "time_range": [int(time.min()), int(time.max())],
        "source": log.source,
    }
    return data, id_maps, report


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
