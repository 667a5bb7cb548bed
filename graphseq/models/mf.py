"""BPR matrix factorisation and LightGCN: transductive user and item embeddings, BPR loss."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.models.base import Encoded, Recommender
from graphseq.nn.adjacency import bipartite_adjacency, drop_edges
from graphseq.nn.losses import gathered_bpr, gathered_sq_norm, sample_negatives
from graphseq.nn.views import LightGCNView


class MF(Recommender):
    """BPR-MF (Rendle et al. 2009, https://arxiv.org/abs/1205.2618).

    Args:
        num_users, num_items: node counts.
        dim: embedding size (64).
        reg: L2 weight on the batch embeddings (1e-4).
    """

    train_mode = "pairs"

    def __init__(self, num_users: int, num_items: int, dim: int = 64, reg: float = 1e-4) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim, self.reg = num_users, num_items, dim, reg
        self.emb = nn.Embedding(num_users + num_items, dim)  # users first, then items
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.emb.weight, std=0.1)

    def _propagate(self, ctx: GraphContext) -> Tensor:
        """(U + I, d) final node embeddings (MF: the embeddings themselves)."""
        return self.emb.weight

    def encode(self, ctx: GraphContext) -> Encoded:
        out = self._propagate(ctx)
        return Encoded(items=out[self.num_users :], users=out[: self.num_users])

    def user_repr(self, ctx: GraphContext, enc: Encoded, users: Tensor, hist: SeqBatch) -> Tensor:
        return enc.users[users]

    def loss(self, ctx: GraphContext, batch: Tensor) -> Tensor:
        ev = ctx.events
        dev = self.emb.weight.device
        n = len(batch)
        u = ev.user[batch].to(dev)
        i = ev.item[batch].to(dev) + self.num_users
        j = sample_negatives(n, self.num_items, device=dev) + self.num_users
        reg = gathered_sq_norm(self.emb.weight, torch.cat([u, i, j])) / n  # L2 on ego rows
        return gathered_bpr(self._propagate(ctx), u, i, j) + self.reg * reg

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_users}u, {self.num_items}i, dim={self.dim})"


class LightGCN(MF):
    """LightGCN (He et al. 2020, https://arxiv.org/abs/2002.02126) on the scoring graph's
    user–item events (all behaviors), propagated with one SpMM chain per step."""

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        num_layers: int = 2,
        reg: float = 1e-4,
        edge_dropout: float = 0.0,
    ) -> None:
        super().__init__(num_users, num_items, dim, reg)
        self.view = LightGCNView(num_layers)
        self.edge_dropout = edge_dropout
        self.num_layers = num_layers

    def _adjacency(self, ctx: GraphContext) -> Tensor:
        dev = self.emb.weight.device
        vis = ctx.visible
        if self.training and self.edge_dropout > 0:
            src, dst = drop_edges(vis.user, vis.item, self.edge_dropout)
            return bipartite_adjacency(src, dst, self.num_users, self.num_items).to(dev)
        if "ui_adj" not in ctx.cache:
            ctx.cache["ui_adj"] = bipartite_adjacency(
                vis.user, vis.item, self.num_users, self.num_items
            ).to(dev)
        return ctx.cache["ui_adj"]

    def _propagate(self, ctx: GraphContext) -> Tensor:
        return self.view(self.emb.weight, self._adjacency(ctx), symmetric=True)

    def __repr__(self) -> str:
        return f"LightGCN({self.num_users}u, {self.num_items}i, dim={self.dim}, layers={self.num_layers})"
