"""What a model needs to know of its graph: sizes, behavior names and the item side graphs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from graphseq.graph.context import ItemSide
from graphseq.graph.events import EventTable


@dataclass(frozen=True)
class GraphShape:
    """Sizes and behaviors of a graph, and its item side graphs.

    ``overlap``: per behavior, the share of its user–item pairs that are also target pairs
    (how close a behavior is to the target). ``behavior_events``: events per behavior in the
    graph the model trains on (what ``minibatch=auto`` decides on). ``timed``: False when
    the log had no timestamps (time = input position).
    """

    num_users: int
    num_items: int
    behaviors: tuple[str, ...]
    side: ItemSide
    targets: tuple[str, ...] = ()
    overlap: tuple[float, ...] = ()
    timed: bool = True
    behavior_events: tuple[int, ...] = ()

    @classmethod
    def of(cls, ev: EventTable, side: ItemSide, mask: Tensor | None = None) -> GraphShape:
        """The shape of ``ev`` (events per behavior counted over ``mask`` when given)."""
        pair = ev.user * ev.num_items + ev.item
        tgt = torch.isin(pair, pair[ev.is_target])
        overlap = [float(tgt[ev.behavior == b].float().mean()) if bool((ev.behavior == b).any())
                   else 0.0 for b in range(len(ev.behaviors))]  # fmt: skip
        targets = sorted({ev.behaviors[b] for b in ev.behavior[ev.is_target].unique().tolist()})
        beh = ev.behavior if mask is None else ev.behavior[mask]
        counts = tuple(torch.bincount(beh, minlength=len(ev.behaviors)).tolist())
        return cls(ev.num_users, ev.num_items, tuple(ev.behaviors), side, tuple(targets),
                   tuple(overlap), ev.time_kind != "input_order", counts)  # fmt: skip

    def with_side(self, side: ItemSide) -> GraphShape:
        return replace(self, side=side)
