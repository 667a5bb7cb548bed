"""One composed model for every recommender: an item side, a user encoder and a scorer.

This file is where an edge becomes a score::

    encode(ctx)                      item side: ID + features → views → fusion  (Encoded)
      → user_repr(ctx, enc, u, hist)  user encoder: sequence (+ snapshots) or an ID table
      → rank_scores(...)              scorer: dot / MLP head (+ item–item graph fusion)
    loss(ctx, batch)                  the same path on a training batch, then the objective

``encode`` returns everything that depends on the weights (:class:`Encoded`); parts keep
only structures derived from events, per scoring context
(:class:`~graphseq.graph.context.PerContext`). The parts' interfaces are the protocols
below; which parts a model has is decided in one place, ``graphseq/models/registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch


class ItemPart(Protocol):
    """What every item side has (``ItemEncoder``, ``CollaborativeTable``, ``CascadeTable``,
    ``PopularityTable``)."""

    sampled: bool  # encodes sampled neighbourhoods per batch (mini-batch mode)
    has_item_vectors: bool  # items have embeddings to compare (similar items)
    views: list  # the item views (none for tables)

    def encode(self, ctx: GraphContext) -> Encoded: ...
    def input(self, ids: Tensor | None = None) -> Tensor: ...
    def set_trained_items(self, mask: Tensor) -> None: ...
    def reset_parameters(self) -> None: ...


class UserEncoder(Protocol):
    """What every user encoder has (``SequenceEncoder``, ``UserTable``, ``ConstantUser``)."""

    snapshots: Any  # a SnapshotScale, or None

    def __call__(
        self, ctx: GraphContext, enc: Encoded, users: Tensor | None, hist: SeqBatch, item_x=None
    ) -> Tensor: ...
    def reset_parameters(self) -> None: ...


class Tunable(Protocol):
    """A scorer part with settings chosen on validation after training
    (:mod:`graphseq.training.posthoc` sets its buffers)."""

    posthoc_key: str  # the metrics.json key of what validation chose

    def posthoc_grid(self) -> list[dict[str, float]]: ...


class ScorerPart(Protocol):
    """What every scorer has (``Scorer``, ``NeighborScorer``)."""

    history: Any  # the own-history pointer (an OwnHistory), or None
    item_graph: Any  # the item–item graph fusion (an ItemGraphScorer), or None

    def __call__(
        self, ctx: GraphContext, users: Tensor, items: Tensor, hist: SeqBatch
    ) -> Tensor: ...
    def transform(self, users: Tensor) -> Tensor: ...
    def posthoc_parts(self) -> list[Tunable]: ...
    def reset_parameters(self) -> None: ...


@dataclass
class Encoded:
    """Weight-dependent results of one encoding. Shapes: items (I, d); users (U, d) for
    ID-table models; view_weights (I, V) for models with views; snapshots: the snapshot
    scale's per-user states (:class:`~graphseq.models.users.SnapshotStates`) when computed."""

    items: Tensor
    users: Tensor | None = None
    view_weights: Tensor | None = None
    snapshots: Any = None

    def detach(self) -> Encoded:
        snaps = self.snapshots
        if snaps is not None:
            snaps = type(snaps)(snaps.bounds, snaps.states.detach())
        return Encoded(
            self.items.detach(),
            None if self.users is None else self.users.detach(),
            None if self.view_weights is None else self.view_weights.detach(),
            snaps,
        )


class Recommender(nn.Module):
    """A recommender composed of parts (see the module docstring).

    Args:
        name: the model's name in reprs (``GraphSeq``, ``SASRec``, ``MF`` ...).
        num_users, num_items: sizes.
        items: the item side: an :class:`~graphseq.models.items.ItemEncoder`, or a model's
            own table (``CollaborativeTable``, ``PopularityTable``) with ``encode(ctx)``.
        users: the user encoder (``SequenceEncoder``, ``UserTable``, ``ConstantUser``).
        scorer: :class:`~graphseq.models.scorer.Scorer`.
        objective: the sequence loss (``SequenceObjective``) or None (the item side's own
            ``pair_loss`` for mf/lightgcn; nothing to train for pop).
        train_mode: what a batch is: ``sequences`` | ``pairs`` | ``none``.
        details: extra ``key=value`` parts for the one-line repr.
    """

    def __init__(
        self,
        name: str,
        num_users: int,
        num_items: int,
        items: ItemPart,
        users: UserEncoder,
        scorer: ScorerPart,
        objective: nn.Module | None = None,
        train_mode: str = "sequences",
        details: str = "",
    ) -> None:
        super().__init__()
        self.name, self.num_users, self.num_items = name, num_users, num_items
        self.items, self.users, self.scorer, self.objective = items, users, scorer, objective
        self.train_mode, self.details = train_mode, details

    # ---- the scoring path -----------------------------------------------------------------
    def encode(self, ctx: GraphContext) -> Encoded:
        enc = self.items.encode(ctx)
        if self.users.snapshots is not None:
            enc.snapshots = self.users.snapshots.encode(ctx, enc.items)
        return enc

    def user_repr(
        self, ctx: GraphContext, enc: Encoded, users: Tensor | None, hist: SeqBatch
    ) -> Tensor:
        """(B, d) user states; ``users`` None for anonymous histories."""
        return self.users(ctx, enc, users, hist, self.items.input)

    def states(self, ctx: GraphContext, enc: Encoded, seq: SeqBatch, users: Tensor) -> Tensor:
        """(B, L, d) per-event states of sequence models."""
        return self.users.states(ctx, enc, seq, users, self.items.input)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """(B, d), (I, d) → (B, I): the head alone (one matmul ranks the catalogue)."""
        return self.scorer.head(users, items)

    def rank_scores(
        self, ctx: GraphContext, enc: Encoded, users: Tensor | None, hist: SeqBatch
    ) -> Tensor:
        """(B, I) scores that rank the whole catalogue (what evaluation, ``recommend`` and
        serving call): head + the validated item–item graph fusion."""
        return self.scorer(ctx, self.user_repr(ctx, enc, users, hist), enc.items, hist)

    # ---- training --------------------------------------------------------------------------
    def loss(self, ctx: GraphContext, batch: Any) -> Tensor:
        """Scalar training loss of a batch from :mod:`graphseq.training.batches`."""
        if self.train_mode == "pairs":
            return self.items.pair_loss(ctx, batch)
        if self.train_mode != "sequences":
            raise RuntimeError(f"{self.name} has nothing to train")
        return self._sequence_loss(ctx, batch)

    def _sequence_loss(self, ctx: GraphContext, b: Any) -> Tensor:
        """Every position predicts the next target event (full or sampled softmax over the
        items the step encodes); in mini-batch mode only the items the loss needs are
        encoded, from neighbourhoods before the batch's latest event."""
        dev = next(self.parameters()).device
        seq, neg, log_q = b.seq, b.negatives, b.log_q
        need = t = None
        if self.items.sampled:
            need = self.objective.needed(seq, neg, self.num_items)  # sorted (n,)
            t = seq.time[seq.mask].max().expand(need.numel())  # only edges before the
            # batch's latest event
            seq = seq.localise(need)
            neg = None if neg is None else torch.searchsorted(need, neg)
            log_q = None if log_q is None else log_q[need]
        inp, label, use = seq.to(dev).shift()
        table, h = self._step_states(ctx, b.users, inp, use, need, t)  # h: (N, d)
        hist = self.scorer.history
        bias = hist.train_terms(inp, use) if hist is not None else None  # own earlier edges
        return self.objective(
            self.scorer.transform(h), table.items, label[use], inp, use,
            None if neg is None else neg.to(dev), None if log_q is None else log_q.to(dev), bias,
        )  # fmt: skip

    def _step_states(
        self, ctx: GraphContext, users: Tensor, inp: SeqBatch, use: Tensor,
        need: Tensor | None, t: Tensor | None,
    ) -> tuple[Any, Tensor]:  # fmt: skip
        """The step's item table and the (N, d) states of the ``use``d positions; ``need``
        and ``t``: the items to encode and their time bounds (mini-batch backend)."""
        table = self.items(ctx, users) if need is None else self.items(ctx, users, need, t)
        enc = Encoded(items=table.items)
        h = self.users.states(ctx, enc, inp, users.to(inp.item.device), self.items.input)
        return table, h[use]

    def forward(self, ctx: GraphContext, batch: Any) -> Tensor:
        """The training loss (what ``DistributedDataParallel`` calls)."""
        return self.loss(ctx, batch)

    def set_trained_items(self, mask: Tensor) -> None:
        self.items.set_trained_items(mask)

    def posthoc_parts(self) -> list[Tunable]:
        """The scorer parts whose settings validation chooses after training, in order."""
        return self.scorer.posthoc_parts()

    def reset_parameters(self) -> None:
        for m in (self.items, self.users, self.scorer):
            m.reset_parameters()

    @property
    def item_graph(self) -> nn.Module | None:
        """The scorer's item–item graph fusion (None when the model has none)."""
        return self.scorer.item_graph

    @property
    def views(self) -> list[str]:
        return [v.name for v in self.items.views]

    def __repr__(self) -> str:
        return f"{self.name}({self.num_users}u, {self.num_items}i{self.details})"
