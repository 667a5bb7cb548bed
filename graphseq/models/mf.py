"""The ID-table item side of BPR-MF and LightGCN: one embedding per user and item, optionally
propagated over the user–item graph, trained with BPR on (user, item, negative) rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext, PerContext
from graphseq.graph.shape import GraphShape
from graphseq.keys import key, rng
from graphseq.models.base import Encoded
from graphseq.nn.adjacency import bipartite_adjacency, drop_edges
from graphseq.nn.losses import gathered_bpr, gathered_sq_norm
from graphseq.nn.views import LightGCNView

if TYPE_CHECKING:
    from graphseq.config import TrainConfig


@dataclass(frozen=True)
class CollaborativeKeys:
    """Config keys of the ID-table models (mf, lightgcn; ``reg`` also mbcgcn)."""

    reg: float = key(1e-4, "L2 weight on the batch's embeddings", low=0,
                     space=rng(1e-6, 1e-2, log=True))  # fmt: skip
    lightgcn_edge_dropout: float = key(0.0, "lightgcn: share of edges dropped per step", low=0,
                                       high=1, high_open=True, space=rng(0.0, 0.3))  # fmt: skip
    lightgcn_behaviors: Literal["all", "target"] = key(
        "all", "lightgcn: propagate over every behavior's user–item edges, or over the target "
        "behaviors' only",
    )  # fmt: skip


class NodeTable(nn.Module):
    """One embedding row per user, then per item, propagated by the subclass's
    ``propagate(ctx) → (U + I, d)``: the item input, the encoding and the BPR pair loss
    (with L2 on the batch's ego rows) that MF, LightGCN and MB-CGCN share."""

    sampled = False
    has_item_vectors = True
    views: ClassVar[list] = []
    num_users: int
    reg: float
    emb: nn.Embedding

    def propagate(self, ctx: GraphContext) -> Tensor:
        raise NotImplementedError

    def set_trained_items(self, mask: Tensor) -> None:
        """No item features: every item has its ID row."""

    def input(self, ids: Tensor | None = None) -> Tensor:
        items = self.emb.weight[self.num_users :]
        return items if ids is None else items[ids.to(items.device)]

    def encode(self, ctx: GraphContext) -> Encoded:
        out = self.propagate(ctx)
        return Encoded(items=out[self.num_users :], users=out[: self.num_users])

    def pair_loss(self, ctx: GraphContext, batch) -> Tensor:
        """BPR of each row's (user, item) against the row's own negative, plus L2 on the
        rows' ego embeddings."""
        dev = self.emb.weight.device
        u = batch.users.to(dev)
        i, j = batch.pos.to(dev) + self.num_users, batch.neg.to(dev) + self.num_users
        reg = gathered_sq_norm(self.emb.weight, torch.cat([u, i, j])) / len(u)
        return gathered_bpr(self.propagate(ctx), u, i, j) + self.reg * reg


class CollaborativeTable(NodeTable):
    """BPR-MF (Rendle et al. 2009, https://arxiv.org/abs/1205.2618) with ``num_layers=0``;
    LightGCN (He et al. 2020, https://arxiv.org/abs/2002.02126) otherwise, propagated over
    the scoring graph's user–item events (all behaviors) with one SpMM chain per step.

    Args:
        num_users, num_items: node counts.  dim: embedding size (64).
        num_layers: LightGCN layers (0: MF).  reg: L2 weight on the batch's ego rows (1e-4).
        edge_dropout: share of edges dropped per training step (0.0).
        targets_only: propagate over the target behaviors' edges only (False: every behavior).
    Shapes: ``encode`` → users (U, d), items (I, d); ``pair_loss`` → scalar.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        num_layers: int = 0,
        reg: float = 1e-4,
        edge_dropout: float = 0.0,
        targets_only: bool = False,
    ) -> None:
        super().__init__()
        self.targets_only = targets_only
        self.num_users, self.num_items, self.dim, self.reg = num_users, num_items, dim, reg
        self.num_layers, self.edge_dropout = num_layers, edge_dropout
        self.emb = nn.Embedding(num_users + num_items, dim)  # users first, then items
        self.view = LightGCNView(num_layers) if num_layers else None
        self._adj: PerContext[Tensor] = PerContext()  # the scoring adjacency
        self.reset_parameters()

    config_keys: ClassVar[tuple[str, ...]] = ("dim", "reg")
    lightgcn_keys: ClassVar[tuple[str, ...]] = ("gnn_layers", "lightgcn_edge_dropout",
                                                "lightgcn_behaviors")  # fmt: skip

    @classmethod
    def from_config(cls, c: TrainConfig, shape: GraphShape, lightgcn: bool) -> CollaborativeTable:
        """BPR-MF, or LightGCN (``lightgcn``) on every behavior's edges or the targets'."""
        if not lightgcn:
            return cls(shape.num_users, shape.num_items, c.dim, 0, c.reg)
        return cls(shape.num_users, shape.num_items, c.dim, c.gnn_layers, c.reg,
                   c.lightgcn_edge_dropout, c.lightgcn_behaviors == "target")  # fmt: skip

    def reset_parameters(self) -> None:
        nn.init.normal_(self.emb.weight, std=0.1)

    def _adjacency(self, ctx: GraphContext) -> Tensor:
        dev = self.emb.weight.device
        vis = ctx.visible
        if self.targets_only:
            vis = vis.select(vis.is_target)
        if self.training and self.edge_dropout > 0:
            src, dst = drop_edges(vis.user, vis.item, self.edge_dropout)
            return bipartite_adjacency(src, dst, self.num_users, self.num_items).to(dev)
        return self._adj.get(
            ctx,
            lambda: bipartite_adjacency(vis.user, vis.item, self.num_users, self.num_items).to(dev),
        )

    def propagate(self, ctx: GraphContext) -> Tensor:
        """(U + I, d) final node embeddings (MF: the embeddings themselves)."""
        if self.view is None:
            return self.emb.weight
        return self.view(self.emb.weight, self._adjacency(ctx), symmetric=True)

    def __repr__(self) -> str:
        return f"CollaborativeTable({self.num_users}u, {self.num_items}i, layers={self.num_layers})"
