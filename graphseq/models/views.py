"""The table of item views: which edges each view propagates over, from one scoring graph.

A view is named ``KIND`` or ``KIND:<behavior>``:

| kind | edges | node space | owner (user who made the edge) |
|---|---|---|---|
| ``cooc`` | consecutive items of each user (of one behavior, or of all) | items | that user |
| ``behavior`` | user–item events (of one behavior, or of all) | items, users | that user |
| ``tag`` | item–tag | items, tags | none |
| ``kg`` | item–entity (knowledge graph) | items, entities | none |

Items always come first in a view's node space (item ``i`` is node ``i``). While training,
every edge whose owner is a batch user is left out of the view (the target-in-graph
shortcut), so user-derived views never show a user their own targets. Edges are derived from
events only: the propagation backends keep them per scoring context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable

EXTRA = {"cooc": None, "behavior": "user", "tag": "tag", "kg": "entity"}  # extra node table
VIEW_KINDS = tuple(EXTRA)  # a view is KIND or KIND:<behavior>


@dataclass(frozen=True)
class View:
    """One item view: ``kind`` (a key of :data:`EXTRA`) restricted to ``behavior`` (None: all)."""

    kind: str
    behavior: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.behavior is None else f"{self.kind}:{self.behavior}"

    @property
    def extra(self) -> str | None:
        """The node table placed after the items (``user``, ``tag``, ``entity``) or None."""
        return EXTRA[self.kind]

    @property
    def user_derived(self) -> bool:
        return self.kind in ("cooc", "behavior")


@dataclass
class ViewEdges:
    """Undirected edges ``a -- b`` over ``num_nodes`` nodes (items first); ``owner`` (E,) the
    user who made each edge and ``time`` (E,) its time (None for side graphs)."""

    a: Tensor
    b: Tensor
    num_nodes: int
    owner: Tensor | None = None
    time: Tensor | None = None


def parse_views(
    names: tuple[str, ...] | list[str], behaviors: list[str], side: ItemSide
) -> tuple[list[View], list[str]]:
    """``(views, skipped)``: the views to build, and the names left out because the graph
    lacks their side graph (no tags, no KG). ``KIND:*`` is one view per behavior. An unknown
    kind or behavior is a ValueError."""
    views, skipped = [], []
    expanded = []
    for name in names:
        kind, _, beh = name.partition(":")
        expanded += [f"{kind}:{b}" for b in behaviors] if beh == "*" else [name]
    for name in dict.fromkeys(expanded):
        kind, _, beh = name.partition(":")
        if kind not in VIEW_KINDS or (":" in name and (not beh or kind in ("tag", "kg"))):
            raise ValueError(
                f"unknown view {name!r}; valid: cooc, tag, kg, behavior, cooc:<b>, behavior:<b>"
            )
        if beh and beh not in behaviors:
            raise ValueError(f"view {name!r}: behavior {beh!r} not in the graph ({behaviors})")
        if (kind == "tag" and side.item_tag is None) or (kind == "kg" and side.kg is None):
            skipped.append(name)
            continue
        views.append(View(kind, beh or None))
    return views, skipped


def cooc_pairs(ev: EventTable) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(item, next item, user, time of the next event)`` for consecutive events of each user
    (repeats of the same item skipped). Shapes: each (P,)."""
    perm = torch.argsort(ev.user, stable=True)
    u, i, t = ev.user[perm], ev.item[perm], ev.time[perm]
    same = (u[1:] == u[:-1]) & (i[1:] != i[:-1])
    return i[:-1][same], i[1:][same], u[1:][same], t[1:][same]


def view_problem(names: tuple[str, ...]) -> str | None:
    """What is wrong with the view names of the ``views`` key, or None (config check)."""
    for v in names:
        kind, _, behavior = v.partition(":")
        if kind not in VIEW_KINDS or (":" in v and (not behavior or kind in ("tag", "kg"))):
            return (f"unknown view {v!r}: views are cooc, tag, kg, behavior, or "
                    "cooc:<behavior> / behavior:<behavior>")  # fmt: skip
    return None


def view_edges(view: View, ctx: GraphContext) -> ViewEdges:
    """The edges of ``view`` in the scoring graph ``ctx``."""
    n, side, ev = ctx.events.num_items, ctx.side, ctx.visible
    if view.behavior is not None:
        ev = ev.select(ev.behavior == ev.behaviors.index(view.behavior))
    if view.kind == "cooc":
        a, b, owner, t = cooc_pairs(ev)
        return ViewEdges(a, b, n, owner, t)
    if view.kind == "behavior":
        return ViewEdges(ev.item, n + ev.user, n + ev.num_users, ev.user, ev.time)
    if view.kind == "tag":
        return ViewEdges(side.item_tag[0], n + side.item_tag[1], n + side.num_tags)
    return ViewEdges(side.kg[0], side.kg[1], n + side.num_entities)  # kg: entities after items


def extra_sizes(views: list[View], num_users: int, side: ItemSide) -> dict[str, int]:
    """Rows of each extra node table the views need."""
    size = {"user": num_users, "tag": side.num_tags, "entity": side.num_entities}
    return {v.extra: max(size[v.extra], 1) for v in views if v.extra is not None}
