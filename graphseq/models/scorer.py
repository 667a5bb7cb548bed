"""Scorer: a head (dot or MLP on the user side) plus the optional item–item graph fusion.

The fusion (:class:`~graphseq.nn.itemgraph.ItemGraphScorer`, EASE over the user's
recency-decayed history) works for every model with per-user scores; its weight and decay are
chosen on validation after training (``graphseq.train.tune``), weight 0 while training.
"""

from __future__ import annotations

from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.models.neighbors import target_graph
from graphseq.nn.heads import DotHead, MLPHead
from graphseq.nn.history import OwnHistory
from graphseq.nn.itemgraph import ItemGraphScorer


class Scorer(nn.Module):
    """Args:
        dim: user / item size.  head: ``dot`` | ``mlp``.
        item_graph: an :class:`ItemGraphScorer` to late-fuse, or None.
        history: an :class:`~graphseq.nn.history.OwnHistory` term (trained with the model), or
            None.
    Shapes: ``forward`` users (B, d), items (I, d) → (B, I).
    """

    def __init__(
        self,
        dim: int,
        head: str = "dot",
        item_graph: ItemGraphScorer | None = None,
        history: OwnHistory | None = None,
    ):
        super().__init__()
        if head not in ("dot", "mlp"):
            raise ValueError(f"unknown head {head!r}; valid: dot, mlp")
        self.head = MLPHead(dim) if head == "mlp" else DotHead()
        self.item_graph = item_graph
        self.history = history

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        if self.history is not None:
            self.history.reset_parameters()
        if self.item_graph is not None:
            self.item_graph.reset_parameters()

    def transform(self, users: Tensor) -> Tensor:
        """The user side as scored. Shapes: (N, d) → (N, d)."""
        return self.head.transform(users)

    def fusing(self) -> bool:
        return self.item_graph is not None and float(self.item_graph.weight) != 0.0

    def forward(self, ctx: GraphContext, users: Tensor, items: Tensor, hist: SeqBatch) -> Tensor:
        """``fuse(head) + history``: the item–item graph is fused with the network's
        scores and the own-history pointer is added after it. Standardising a total that
        holds the pointer squeezes every other item into a sliver beside the user's own
        carted/faved items, and the graph then outranked them (Tmall seed 0: valid
        NDCG@10 0.085 at weight 0.25, against 0.187 in this order)."""
        scores = self.head(users, items)  # (B, I)
        if self.fusing():
            ig = self.item_graph  # one item–item graph per context (it depends on events only)
            graph = target_graph(
                ctx, ig.graph_key(), lambda u, i, nu: ig.graph(u, i, nu), scores.device
            )
            scores = ig(scores, hist, graph)
        if self.history is not None:  # the user's own earlier edges, learned with the model
            scores = scores + self.history(hist, items.size(0))
        return scores

    def __repr__(self) -> str:
        ig = "+itemgraph" if self.item_graph is not None else ""
        ig += "+history" if self.history is not None else ""
        return f"Scorer({type(self.head).__name__}{ig})"
