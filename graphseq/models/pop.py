"""Popularity: every user gets the items most often seen (target behaviors) in the graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.events import target_counts
from graphseq.models.base import Encoded


class PopularityTable(nn.Module):
    """Item "vectors" of width 1: log(1 + count) of target events per item in the scoring
    graph (a :class:`~graphseq.models.users.ConstantUser` scores them as they are).
    Shapes: ``encode`` → items (I, 1)."""

    sampled = False
    has_item_vectors = False  # one column: a count, nothing to compare
    views: list = []
    config_keys: tuple[str, ...] = ()

    def __init__(self, num_items: int) -> None:
        super().__init__()
        self.num_items = num_items
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)  # carries the device

    def reset_parameters(self) -> None:
        pass

    def set_trained_items(self, mask: Tensor) -> None:
        """No item rows to mask."""

    def input(self, ids: Tensor | None = None) -> Tensor:
        raise RuntimeError("pop has no item inputs")

    def encode(self, ctx: GraphContext) -> Encoded:
        counts = target_counts(ctx.visible).float()
        return Encoded(items=torch.log1p(counts)[:, None].to(self.dummy.device))

    def __repr__(self) -> str:
        return f"PopularityTable({self.num_items}i)"
