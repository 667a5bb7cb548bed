"""Neighbourhood baselines: EASE and ItemKNN score a user's decayed history over an item–item
graph built in closed form from the scoring graph's target events (nothing is trained); their
hyper-parameters are chosen on validation like the fusion weight of the other models."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.graph.shape import GraphShape
from graphseq.keys import key
from graphseq.nn.history import OwnHistory
from graphseq.nn.itemgraph import GraphCache, ItemGraph, decayed_history, ease_graph, knn_graph

if TYPE_CHECKING:
    from graphseq.config import TrainConfig


@dataclass(frozen=True)
class NeighborKeys:
    """Config keys of the ease / itemknn models: the grids chosen on validation."""

    ease_regs: tuple[float, ...] = key((50.0, 200.0, 500.0, 1000.0), "ease: λ tried on "
                                       "validation", low=0, low_open=True)  # fmt: skip
    knn_neighbors: tuple[int, ...] = key((50, 100, 200), "itemknn: k tried on validation", low=1)
    knn_shrinks: tuple[float, ...] = key((0.0, 10.0, 50.0), "itemknn: shrinkage tried on "
                                         "validation", low=0)  # fmt: skip
    neighbor_decays: tuple[float, ...] = key((5.0, 20.0, math.inf), "ease / itemknn: history "
                                             "decays (events) tried on validation; inf = every "
                                             "earlier target event weighs 1", low=0,
                                             low_open=True)  # fmt: skip


class NeighborScorer(nn.Module):
    """``score(u) = h_u G``: EASE (``kind="ease"``: λ ``reg``, at most ``max_items`` items) or
    ItemKNN (``kind="itemknn"``: ``k`` neighbours, ``shrink``). ``decay`` (events; inf: none)
    weights the history. All are buffers, chosen on validation after "training" from the
    grids ``regs`` (ease) or ``ks`` × ``shrinks`` (itemknn), × ``decays``; they start at each
    grid's first entry. ``history``: an untrained :class:`~graphseq.nn.history.OwnHistory`
    added to the scores. Shapes: ``forward`` → (B, I)."""

    posthoc_key = "neighbors"  # where metrics.json reports what validation chose
    item_graph = None  # a neighbour model is its own item graph: no fusion on top
    config_keys: ClassVar[tuple[str, ...]] = (
        *NeighborKeys.__dataclass_fields__, "item_graph_max_items"
    )  # fmt: skip

    def __init__(
        self,
        num_items: int,
        kind: str = "ease",
        regs: Sequence[float] = (200.0,),
        max_items: int = 10_000,
        ks: Sequence[int] = (100,),
        shrinks: Sequence[float] = (10.0,),
        decays: Sequence[float] = (math.inf,),
        history: OwnHistory | None = None,
    ) -> None:
        super().__init__()
        self.history = history  # the untrained own-history pointer, added after the graph
        if kind not in ("ease", "itemknn"):
            raise ValueError(f"unknown neighbour model {kind!r}; valid: ease, itemknn")
        self.num_items, self.kind, self.max_items = num_items, kind, max_items
        self.grid = {"reg": tuple(regs), "k": tuple(ks), "shrink": tuple(shrinks),
                     "decay": tuple(decays)}  # fmt: skip
        for name, values in self.grid.items():
            self.register_buffer(name, torch.tensor(float(values[0])))
        self._graphs = GraphCache()

    @classmethod
    def from_config(
        cls, c: TrainConfig, shape: GraphShape, kind: str, history: OwnHistory | None
    ) -> NeighborScorer:
        return cls(shape.num_items, kind, c.ease_regs, c.item_graph_max_items, c.knn_neighbors,
                   c.knn_shrinks, c.neighbor_decays, history)  # fmt: skip

    def posthoc_grid(self) -> list[dict[str, float]]:
        """Every setting tried on validation: λ × decay (ease) or k × shrink × decay."""
        g = {k: [float(v) for v in vs] for k, vs in self.grid.items()}
        if self.kind == "ease":
            return [{"reg": r, "decay": d} for r in g["reg"] for d in g["decay"]]
        return [{"k": k, "shrink": sh, "decay": d}
                for k in g["k"] for sh in g["shrink"] for d in g["decay"]]  # fmt: skip

    def posthoc_parts(self) -> list[nn.Module]:
        """What validation chooses after training, in order: the pointer, then the graph."""
        return [p for p in (self.history, self) if p is not None and p.posthoc_grid()]

    def reset_parameters(self) -> None:
        if self.history is not None:
            self.history.reset_parameters()

    def transform(self, users: Tensor) -> Tensor:
        return users

    def graph(self, ctx: GraphContext, device: torch.device) -> ItemGraph:
        n = self.num_items
        if self.kind == "ease":
            reg, m = float(self.reg), self.max_items
            make = lambda u, i, nu: ease_graph(u, i, nu, n, reg, m)  # noqa: E731
            return self._graphs.get(ctx, ("ease", reg, m), make, device)
        k, shrink = int(self.k), float(self.shrink)
        make = lambda u, i, nu: knn_graph(u, i, nu, n, k, shrink)  # noqa: E731
        return self._graphs.get(ctx, ("itemknn", k, shrink), make, device)

    def forward(self, ctx: GraphContext, users: Tensor, items: Tensor, hist: SeqBatch) -> Tensor:
        h = decayed_history(hist, self.num_items, self.decay)  # (B, I)
        scores = self.graph(ctx, h.device).apply(h)
        if self.history is not None:
            scores = scores + self.history(hist, self.num_items)
        return scores

    def __repr__(self) -> str:
        return f"NeighborScorer({self.kind})"
