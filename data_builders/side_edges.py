"""Side edges of the graph: item tags and user tag events, and knowledge-graph triples."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from data_builders.log import CanonicalLog


def relation_name(rel: str) -> str:
    """Edge-type names: no commas (they separate ``src,rel,dst`` keys), no spaces."""
    return re.sub(r"[,\s]+", "_", str(rel)).strip("_") or "rel"


def add_tags(
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


def add_kg(data: HeteroData, log: CanonicalLog, items: pd.Index, id_maps: dict, top: int) -> None:
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
                    relation_name(rel),
                    "item" if t_is_item else "entity",
                )
                data[et].edge_index = torch.from_numpy(np.stack([h, t]).astype(np.int64))
