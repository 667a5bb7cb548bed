"""The one model interface every recommender implements, so one trainer compares them fairly.

``encode(ctx)`` → :class:`Encoded` (item table and, for transductive models, user table);
``user_repr(ctx, enc, users, hist)`` → (B, d) user states; ``score(u, items)`` → (B, I);
``rank_scores(ctx, enc, users, hist)`` → (B, I) the scores that rank the catalogue (by
default ``score(user_repr(...), items)``); ``loss(ctx, batch)`` → scalar. ``train_mode`` says what a batch is: ``"sequences"`` (user
indices), ``"pairs"`` (indices of training target events) or ``"none"`` (nothing to train).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch


@dataclass
class Encoded:
    items: Tensor  # (I, d)
    users: Tensor | None = None  # (U, d) for transductive models


class Recommender(nn.Module):
    """Base class: subclasses implement ``encode``, ``user_repr`` and ``loss``."""

    train_mode: str = "sequences"

    def encode(self, ctx: GraphContext) -> Encoded:
        raise NotImplementedError

    def user_repr(self, ctx: GraphContext, enc: Encoded, users: Tensor, hist: SeqBatch) -> Tensor:
        raise NotImplementedError

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """(B, d), (I, d) → (B, I) dot products."""
        return users @ items.T

    def rank_scores(self, ctx: GraphContext, enc: Encoded, users: Tensor, hist: SeqBatch) -> Tensor:
        """(B, I) scores that rank the whole catalogue for ``users`` with histories ``hist``
        (what evaluation, recommendation and serving call)."""
        return self.score(self.user_repr(ctx, enc, users, hist), enc.items)

    def loss(self, ctx: GraphContext, batch: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, ctx: GraphContext, batch: Tensor) -> Tensor:
        """The training loss (what ``DistributedDataParallel`` calls)."""
        return self.loss(ctx, batch)

    def reset_parameters(self) -> None:
        for m in self.children():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
