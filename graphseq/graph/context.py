"""``GraphContext``: everything a model may look at when it encodes — the events of one
scoring graph (never a held-out event, see ``splits.check_leakage``) and the item side graphs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from graphseq.graph.events import EventTable, user_csr
from graphseq.graph.sequences import SeqBatch, pad_from_csr

if TYPE_CHECKING:  # PyG is imported by whoever builds or loads the graph, not here
    from torch_geometric.data import HeteroData

    from data_builders.store import StoredGraph


@dataclass
class ItemSide:
    """Item–tag and item–entity (KG) graphs; they hold no user events, so no leakage.

    ``item_tag`` (2, n): item index → tag index. ``kg`` (2, m): undirected pairs over the
    node space ``[items | entities]`` (entity ``e`` is node ``num_items + e``).
    ``item_features`` (I, F): item text embeddings when ``item_text`` is set (not read from
    the graph; the trainer and ``load_run`` attach them).
    """

    item_tag: Tensor | None = None
    num_tags: int = 0
    kg: Tensor | None = None
    num_entities: int = 0
    item_features: Tensor | None = None  # (I, F) fixed item features (graphseq.text), or None

    @classmethod
    def from_graph(cls, data: HeteroData | StoredGraph) -> ItemSide:
        side = cls()
        if ("item", "has_tag", "tag") in data.edge_types:
            side.item_tag = data["item", "has_tag", "tag"].edge_index
            side.num_tags = int(data["tag"].num_nodes)
        n_items = int(data["item"].num_nodes)
        offset = {"item": 0, "entity": n_items}
        pairs = [
            data[et].edge_index + torch.tensor([[offset[et[0]]], [offset[et[2]]]])
            for et in data.edge_types
            if et[0] in offset and et[2] in offset and not et[1].startswith("rev_")
        ]
        if pairs:
            side.kg = torch.cat(pairs, 1)
            side.num_entities = int(data["entity"].num_nodes) if "entity" in data.node_types else 0
        return side


@dataclass
class GraphContext:
    """The scoring graph: ``events.select(mask)`` are the visible events.

    ``cache`` holds matrices derived from the visible events (adjacencies), built once per
    context by the models that need them.
    """

    events: EventTable
    mask: Tensor  # (E,) bool
    side: ItemSide
    cache: dict = field(default_factory=dict)

    @property
    def visible(self) -> EventTable:
        if "visible" not in self.cache:
            self.cache["visible"] = self.events.select(self.mask)
        return self.cache["visible"]

    def user_sequences(self, users: Tensor, max_len: int) -> SeqBatch:
        """Each user's last ``max_len`` visible events (for training)."""
        if "user_csr" not in self.cache:
            idx = torch.nonzero(self.mask).flatten()
            ptr, perm = user_csr(self.events.user[idx], self.events.num_users)
            self.cache["user_csr"] = (ptr, idx[perm])
        ptr, idx = self.cache["user_csr"]
        return pad_from_csr(self.events, ptr, idx, users, max_len)
