"""``GraphContext``: everything a model may look at when it encodes — the events of one
scoring graph (never a held-out event, see ``splits.check_leakage``) and the item side graphs."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

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


@dataclass(eq=False)  # hashed by identity: parts key their caches by the context
class GraphContext:
    """The scoring graph: ``events.select(mask)`` are the visible events.

    It holds what every part reads (the visible events, each user's events); a structure one
    part alone derives from the events (an adjacency, a CSR, an item–item graph) is that
    part's own :class:`PerContext` cache, freed with the context or by :meth:`release`.
    """

    events: EventTable
    mask: Tensor  # (E,) bool
    side: ItemSide
    _visible: EventTable | None = field(default=None, repr=False)
    _user_csr: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    @property
    def visible(self) -> EventTable:
        if self._visible is None:
            self._visible = self.events.select(self.mask)
        return self._visible

    def user_sequences(self, users: Tensor, max_len: int) -> SeqBatch:
        """Each user's last ``max_len`` visible events (for training)."""
        if self._user_csr is None:
            idx = torch.nonzero(self.mask).flatten()
            ptr, perm = user_csr(self.events.user[idx], self.events.num_users)
            self._user_csr = (ptr, idx[perm])
        ptr, idx = self._user_csr
        return pad_from_csr(self.events, ptr, idx, users, max_len)

    def release(self) -> None:
        """Drop every part's cached structures of this context (they are rebuilt on use)."""
        for cache in list(_CACHES):
            cache.forget(self)

    def cached(self) -> int:
        """How many part caches hold a structure of this context."""
        return sum(c.peek(self) is not None for c in list(_CACHES))


T = TypeVar("T")
_CACHES: weakref.WeakSet[PerContext] = weakref.WeakSet()


class PerContext(Generic[T]):
    """A part's own cache: one value per :class:`GraphContext`, built on first use and freed
    with the context (weakly keyed), as PyG layers cache their normalised adjacency. A part
    keeps one per structure it derives from events (weights never enter it).

    Example::

        self._adj = PerContext()
        adj = self._adj.get(ctx, lambda: build_adjacency(ctx.visible))
    """

    def __init__(self) -> None:
        self._values: weakref.WeakKeyDictionary[GraphContext, T] = weakref.WeakKeyDictionary()
        _CACHES.add(self)

    def get(self, ctx: GraphContext, build: Callable[[], T]) -> T:
        if ctx not in self._values:
            self._values[ctx] = build()
        return self._values[ctx]

    def set(self, ctx: GraphContext, value: T) -> None:
        self._values[ctx] = value

    def peek(self, ctx: GraphContext) -> T | None:
        return self._values.get(ctx)

    def forget(self, ctx: GraphContext) -> None:
        self._values.pop(ctx, None)

    def __getstate__(self) -> dict:  # copies and pickles start empty
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __deepcopy__(self, memo: dict) -> PerContext[T]:
        return PerContext()
