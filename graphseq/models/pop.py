"""Popularity: every user gets the items most often seen (target behaviors) in the graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.models.base import Encoded, Recommender


class Pop(Recommender):
    """Scores are log(1 + count) of target events per item in the scoring graph."""

    train_mode = "none"

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)  # carries the device

    def encode(self, ctx: GraphContext) -> Encoded:
        vis = ctx.visible
        counts = torch.bincount(vis.item[vis.is_target], minlength=self.num_items).float()
        return Encoded(items=torch.log1p(counts)[:, None].to(self.dummy.device))

    def user_repr(self, ctx: GraphContext, enc: Encoded, users: Tensor, hist: SeqBatch) -> Tensor:
        return torch.ones(len(users), 1, device=enc.items.device)

    def __repr__(self) -> str:
        return f"Pop({self.num_users}u, {self.num_items}i)"
