"""Scorer: a head (dot or MLP on the user side) plus the optional item–item graph fusion and
the own-history pointer.

The fusion (:class:`~graphseq.nn.itemgraph.ItemGraphScorer`, EASE or ItemKNN over the user's
recency-decayed history) works for every model with per-user scores; its weight and decay are
chosen on validation after training (:mod:`graphseq.training.posthoc`), weight 0 while training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.graph.shape import GraphShape
from graphseq.keys import key, pick, rng
from graphseq.nn.heads import DotHead, MLPHead
from graphseq.nn.history import OwnHistory
from graphseq.nn.itemgraph import ItemGraphScorer

if TYPE_CHECKING:
    from graphseq.config import TrainConfig

Head = Literal["dot", "mlp"]


@dataclass(frozen=True)
class HeadKeys:
    """Config key of the scoring head (sequence models)."""

    head: Head = key("dot", "mlp: an MLP on the user state, still one matmul over items")


@dataclass(frozen=True)
class ItemGraphKeys:
    """Config keys of the item–item graph fusion (every model with per-user scores)."""

    item_graph: bool | None = key(None, "late-fuse a closed-form item–item graph scorer, its "
                                  "weight and decay chosen on validation; None = the model's "
                                  "default (on for graphseq only)", space=pick(False, True))  # fmt: skip
    item_graph_kind: Literal["ease", "itemknn"] = key(
        "ease", "the fused graph: ease (dense, over item_graph_max_items items) | itemknn "
        "(sparse shrunk cosine over every item)",
    )  # fmt: skip
    item_graph_knn: int = key(100, "itemknn: neighbours kept per item", low=1)
    item_graph_shrink: float = key(10.0, "itemknn: cosine shrinkage", low=0)
    item_graph_reg: float = key(200.0, "ease: its L2 weight λ", low=0, low_open=True,
                                space=rng(50.0, 1000.0, log=True))  # fmt: skip
    item_graph_max_items: int = key(10_000, "ease (dense, cubic) over at most this many of the "
                                    "most popular items; the others get no item–item weights "
                                    "(0 = no EASE graph)", low=0)  # fmt: skip
    item_graph_weights: tuple[float, ...] = key((0.0, 0.25, 0.5, 1.0, 2.0), "fusion weights "
                                                "tried on validation", low=0)  # fmt: skip
    item_graph_decays: tuple[float, ...] = key((5.0, 20.0), "history decays (events) tried on "
                                               "validation", low=0, low_open=True)  # fmt: skip


@dataclass(frozen=True)
class OwnHistoryKeys:
    """Config keys of the own-history pointer (every model)."""

    own_history: bool | None = key(None, "score the user's own earlier edges of each behavior "
                                   "(a weight and decay per behavior, learned by models that "
                                   "train a softmax); None = the model's default (on for "
                                   "graphseq only)")  # fmt: skip
    own_history_scales: tuple[float, ...] = key((1.0, 10.0, 100.0, 1000.0), "tried on validation "
                                                "after training: the pointer's weights times "
                                                "each (1 first: it wins ties)", low=0,
                                                low_open=True)  # fmt: skip
    own_history_sharpen: tuple[float, ...] = key((1.0, 4.0, 16.0), "... and its decays divided "
                                                 "by each", low=0, low_open=True)  # fmt: skip


def item_graph_of(c: TrainConfig, shape: GraphShape) -> ItemGraphScorer | None:
    """The fusion when the (resolved) config asks for it."""
    if not c.item_graph:
        return None
    return ItemGraphScorer(shape.num_items, c.item_graph_reg, c.item_graph_max_items,
                           c.item_graph_kind, c.item_graph_knn, c.item_graph_shrink,
                           c.item_graph_weights, c.item_graph_decays)  # fmt: skip


def own_history_of(c: TrainConfig, shape: GraphShape, trained: bool) -> OwnHistory | None:
    """The pointer when the (resolved) config asks for it; ``trained``: by the model's softmax."""
    if not c.own_history:
        return None
    return OwnHistory(len(shape.behaviors), skip_targets=c.exclude_seen, trained=trained,
                      scales=c.own_history_scales, sharpen=c.own_history_sharpen)  # fmt: skip


class Scorer(nn.Module):
    """Args:
        dim: user / item size.  head: ``dot`` | ``mlp``.
        item_graph: an :class:`ItemGraphScorer` to late-fuse, or None.
        history: an :class:`~graphseq.nn.history.OwnHistory` term, or None.
    Shapes: ``forward`` users (B, d), items (I, d) → (B, I).
    """

    config_keys: ClassVar[tuple[str, ...]] = (
        *ItemGraphKeys.__dataclass_fields__, *OwnHistoryKeys.__dataclass_fields__, "exclude_seen"
    )  # fmt: skip

    def __init__(
        self,
        dim: int,
        head: str = "dot",
        item_graph: ItemGraphScorer | None = None,
        history: OwnHistory | None = None,
    ):
        super().__init__()
        if head not in get_args(Head):
            raise ValueError(f"unknown head {head!r}; valid: {', '.join(get_args(Head))}")
        self.head = MLPHead(dim) if head == "mlp" else DotHead()
        self.item_graph = item_graph
        self.history = history

    @classmethod
    def from_config(
        cls, c: TrainConfig, shape: GraphShape, trained: bool, dim: int | None = None
    ) -> Scorer:
        """The scorer of a model whose softmax trains the pointer (``trained``) or not; ``dim``
        the head's size (``c.dim``; the head is ``dot`` unless the model reads ``head``)."""
        head = c.head if trained else "dot"
        return cls(c.dim if dim is None else dim, head, item_graph_of(c, shape),
                   own_history_of(c, shape, trained))  # fmt: skip

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for m in (self.history, self.item_graph):
            if m is not None:
                m.reset_parameters()

    def posthoc_parts(self) -> list[nn.Module]:
        """What validation chooses after training, in order. The pointer comes first: it is
        added on top of the fused scores, so the item–item graph is best chosen for the
        ranking below a pointer already at its strength (docs: results, Tmall)."""
        return [p for p in (self.history, self.item_graph) if p is not None and p.posthoc_grid()]

    def transform(self, users: Tensor) -> Tensor:
        """The user side as scored. Shapes: (N, d) → (N, d)."""
        return self.head.transform(users)

    def fusing(self) -> bool:
        return self.item_graph is not None and float(self.item_graph.weight) != 0.0

    def forward(self, ctx: GraphContext, users: Tensor, items: Tensor, hist: SeqBatch) -> Tensor:
        """``fuse(head) + history``: the item–item graph is fused with the network's scores
        and the own-history pointer added after it (standardising a total that holds the
        pointer would squeeze every other item beside the user's own items)."""
        scores = self.head(users, items)  # (B, I)
        if self.fusing():
            graph = self.item_graph.graph_of(ctx, scores.device)
            scores = self.item_graph(scores, hist, graph)
        if self.history is not None:  # the user's own earlier edges
            scores = scores + self.history(hist, items.size(0))
        return scores

    def __repr__(self) -> str:
        parts = "+itemgraph" if self.item_graph is not None else ""
        parts += "+history" if self.history is not None else ""
        return f"Scorer({type(self.head).__name__}{parts})"
