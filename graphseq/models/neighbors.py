"""Neighbourhood baselines: EASE and ItemKNN score a user's decayed history over an item–item
graph built in closed form from the scoring graph's target events (nothing is trained); their
hyper-parameters are chosen on validation like the fusion weight of the other models."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.nn.history import OwnHistory
from graphseq.nn.itemgraph import ItemGraph, decayed_history, ease_graph, knn_graph


def cached_graph(ctx: GraphContext, key: tuple, build) -> ItemGraph:
    """One item–item graph per scoring context, rebuilt when its parameters change (so a
    validation grid over λ or k keeps one graph in memory at a time)."""
    if ctx.cache.get("item_graph_key") != key:
        ctx.cache.pop("item_graph", None)
        ctx.cache["item_graph"] = build()
        ctx.cache["item_graph_key"] = key
    return ctx.cache["item_graph"]


def target_graph(ctx: GraphContext, key: tuple, make, device: torch.device) -> ItemGraph:
    """``make(users, items, num_users)`` over the scoring graph's target events, cached."""
    vis = ctx.visible
    t = vis.is_target
    return cached_graph(ctx, key, lambda: make(vis.user[t], vis.item[t].to(device), vis.num_users))


class NeighborScorer(nn.Module):
    """``score(u) = h_u G``: EASE (``kind="ease"``: λ ``reg``, at most ``max_items`` items) or
    ItemKNN (``kind="itemknn"``: ``k`` neighbours, ``shrink``). ``decay`` (events; inf: none)
    weights the history. All are buffers, chosen on validation after "training".
    ``history``: an untrained :class:`~graphseq.nn.history.OwnHistory` added to the scores.
    Shapes: ``forward`` → (B, I)."""

    def __init__(
        self,
        num_items: int,
        kind: str = "ease",
        reg: float = 200.0,
        max_items: int = 10_000,
        k: int = 100,
        shrink: float = 10.0,
        decay: float = math.inf,
        history: OwnHistory | None = None,
    ) -> None:
        super().__init__()
        self.history = history  # the untrained own-history pointer, added after the graph
        if kind not in ("ease", "itemknn"):
            raise ValueError(f"unknown neighbour model {kind!r}; valid: ease, itemknn")
        self.num_items, self.kind, self.max_items = num_items, kind, max_items
        for name, v in (("reg", reg), ("k", k), ("shrink", shrink), ("decay", decay)):
            self.register_buffer(name, torch.tensor(float(v)))

    def reset_parameters(self) -> None:
        if self.history is not None:
            self.history.reset_parameters()

    def transform(self, users: Tensor) -> Tensor:
        return users

    def graph(self, ctx: GraphContext, device: torch.device) -> ItemGraph:
        n = self.num_items
        if self.kind == "ease":
            reg, m = float(self.reg), self.max_items
            key = ("ease", reg, m)
            return target_graph(ctx, key, lambda u, i, nu: ease_graph(u, i, nu, n, reg, m), device)
        k, shrink = int(self.k), float(self.shrink)
        key = ("itemknn", k, shrink)
        return target_graph(ctx, key, lambda u, i, nu: knn_graph(u, i, nu, n, k, shrink), device)

    def forward(self, ctx: GraphContext, users: Tensor, items: Tensor, hist: SeqBatch) -> Tensor:
        h = decayed_history(hist, self.num_items, self.decay)  # (B, I)
        scores = self.graph(ctx, h.device).apply(h)
        if self.history is not None:
            scores = scores + self.history(hist, self.num_items)
        return scores

    def __repr__(self) -> str:
        return f"NeighborScorer({self.kind})"
