"""The flat, time-ordered event table behind every split, sequence and view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # PyG is imported by whoever builds or loads the graph, not here
    from torch_geometric.data import HeteroData

    from data_builders.store import StoredGraph


@dataclass
class EventTable:
    """All behavior events of a graph, sorted by event order (stable on timestamp, input line).

    Attributes (all (E,) tensors):
        user, item: node indices (int64).
        time: int64 seconds.
        behavior: index into ``behaviors`` (int64).
        is_target: whether the behavior is a target behavior (bool).
        stage: the log's own stage per event (int8: 0 train, 1 valid, 2 test), or ``None``
            when the graph has none (``split=predefined`` needs it).
        time_kind: ``"timestamp"``, or ``"input_order"`` when ``time`` is the input position.
    """

    user: Tensor
    item: Tensor
    time: Tensor
    behavior: Tensor
    is_target: Tensor
    behaviors: list[str]
    num_users: int
    num_items: int
    stage: Tensor | None = None
    time_kind: str = "timestamp"

    def __len__(self) -> int:
        return int(self.user.numel())

    @classmethod
    def from_graph(cls, data: HeteroData | StoredGraph) -> EventTable:
        """Gather the ``(user, <behavior>, item)`` edge types into one table in event order."""
        behaviors = list(data.behaviors)
        parts = []
        stores = [data["user", b, "item"] for b in behaviors]
        staged = all("stage" in s for s in stores)
        for b_idx, store in enumerate(stores):
            n = store.edge_index.size(1)
            parts.append((store.edge_index, store.time, store.order, torch.full((n,), b_idx)))
        ei = torch.cat([p[0] for p in parts], 1)
        time = torch.cat([p[1] for p in parts])
        order = torch.cat([p[2] for p in parts])
        beh = torch.cat([p[3] for p in parts])
        perm = torch.argsort(order, stable=True)
        target_ids = torch.tensor([behaviors.index(t) for t in data.targets])
        beh = beh[perm]
        return cls(
            user=ei[0, perm].contiguous(),
            item=ei[1, perm].contiguous(),
            time=time[perm].contiguous(),
            behavior=beh,
            is_target=torch.isin(beh, target_ids),
            behaviors=behaviors,
            num_users=int(data["user"].num_nodes),
            num_items=int(data["item"].num_nodes),
            stage=torch.cat([s.stage for s in stores])[perm].contiguous() if staged else None,
            time_kind=str(getattr(data, "time_kind", None) or "timestamp"),
        )

    def select(self, mask: Tensor) -> EventTable:
        """The events where ``mask`` is true, order kept."""
        return EventTable(
            self.user[mask],
            self.item[mask],
            self.time[mask],
            self.behavior[mask],
            self.is_target[mask],
            self.behaviors,
            self.num_users,
            self.num_items,
            None if self.stage is None else self.stage[mask],
            self.time_kind,
        )


def time_quantiles(time: Tensor, q: Tensor | float) -> Tensor:
    """Quantiles of ``time`` with linear interpolation, equal to ``torch.quantile`` (which
    refuses inputs above 2**24 elements): one sort, then a lerp between neighbours.

    Shapes: ``time`` (E,) any numeric dtype, ``q`` (Q,) or scalar in [0, 1] → (Q,) / () float64.
    """
    s = torch.sort(time.reshape(-1).double()).values
    q = torch.as_tensor(q, dtype=torch.float64)
    ranks = q * (s.numel() - 1)
    below = ranks.long()
    above = ranks.ceil().long()
    return torch.lerp(s[below], s[above], ranks - below)


def user_csr(user: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
    """Group event indices by user, keeping event order.

    Returns ``(indptr (U+1,), perm (E,))``: the events of user ``u`` are
    ``perm[indptr[u]:indptr[u+1]]``, in event order.
    """
    perm = torch.argsort(user, stable=True)
    counts = torch.bincount(user, minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, perm


def csr_rows(ptr: Tensor, idx: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The sub-CSR of ``rows``: ``(sub_ptr (B+1,), sub_idx)`` with row ``b`` holding
    ``idx[ptr[rows[b]]:ptr[rows[b]+1]]``, order kept."""
    counts = ptr[rows + 1] - ptr[rows]
    sub_ptr = torch.zeros(len(rows) + 1, dtype=torch.int64)
    sub_ptr[1:] = torch.cumsum(counts, 0)
    offs = torch.arange(int(sub_ptr[-1])) - torch.repeat_interleave(sub_ptr[:-1], counts)
    return sub_ptr, idx[torch.repeat_interleave(ptr[rows], counts) + offs]


def target_counts(ev: EventTable) -> Tensor:
    """(I,) number of target-behavior events of each item (popularity)."""
    return torch.bincount(ev.item[ev.is_target], minlength=ev.num_items)
