"""The item–item graph as a scale of the model, trained with it: ``s · h_u(τ) B``.

EASE (Steck 2019) is a closed-form linear autoencoder of each user's whole history. Instead
of fusing its scores after training (:class:`~graphseq.nn.itemgraph.ItemGraphScorer`), this
adds them to every training logit with a learned weight ``s`` and history decay ``τ``, so the
sequence network learns what the autoencoder misses.

No target is read from the graph that scores it: while training, the users are split into
``folds`` and a position of a user in fold ``k`` is scored with ``B_k``, the EASE graph of the
training events of the *other* folds (cross-fitting), so the user's own row — which holds the
target — never shaped the weights that score it. Scoring (validation, test, serving) uses
the EASE graph of the whole scoring graph, as the post-hoc fusion does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.models.neighbors import cached_graph
from graphseq.nn.history import STEP
from graphseq.nn.itemgraph import ItemGraph, decayed_history, ease_graph, top_items


class ItemGraphScale(nn.Module):
    """Args:
        num_items: catalogue size.  reg: EASE λ (200).
        max_items: EASE over at most this many of the most popular items (10,000).
        folds: user folds for the cross-fitted training graphs (5).  decay: initial τ (20).
    Shapes: ``train_bias`` → (columns or None, (N, M)); ``forward`` → (B, I).
    """

    def __init__(
        self,
        num_items: int,
        reg: float = 200.0,
        max_items: int = 10_000,
        folds: int = 5,
        decay: float = 20.0,
    ) -> None:
        super().__init__()
        self.num_items, self.reg, self.max_items, self.folds = num_items, reg, max_items, folds
        self.init_decay = decay
        self.scale = nn.Parameter(torch.zeros(()))
        self.log_decay = nn.Parameter(torch.tensor(math.log(decay)))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.scale)
        nn.init.constant_(self.log_decay, math.log(self.init_decay))

    def _graph(
        self, users: Tensor, items: Tensor, num_users: int, index: Tensor | None = None
    ) -> ItemGraph:
        return ease_graph(users, items, num_users, self.num_items, self.reg, self.max_items, index)

    def scoring_graph(self, ctx: GraphContext, device: torch.device) -> ItemGraph:
        vis = ctx.visible
        t = vis.is_target
        key = ("ease-scale", self.reg, self.max_items)
        build = lambda: self._graph(vis.user[t], vis.item[t], vis.num_users).to(device)  # noqa: E731
        return cached_graph(ctx, key, build)

    def fold_graphs(
        self, ctx: GraphContext, device: torch.device
    ) -> tuple[Tensor, list[ItemGraph]]:
        """``(fold of each user (U,), the graph of every fold)`` from the training events of
        the other folds (cached per context: derived from events only)."""
        key = f"ease-folds:{self.reg:g}:{self.max_items}:{self.folds}"
        if key not in ctx.cache:
            vis = ctx.visible
            t = vis.is_target
            u, i = vis.user[t], vis.item[t]
            g = torch.Generator().manual_seed(0)
            fold = torch.randint(self.folds, (vis.num_users,), generator=g)
            index = top_items(i, self.num_items, self.max_items)  # the same items in every fold
            graphs = []
            for k in range(self.folds):
                other = fold[u] != k
                graphs.append(self._graph(u[other], i[other], vis.num_users, index).to(device))
            ctx.cache[key] = (fold.to(device), graphs)
        return ctx.cache[key]

    def train_bias(
        self, ctx: GraphContext, inp: SeqBatch, use: Tensor, users: Tensor
    ) -> tuple[Tensor | None, Tensor]:
        """Dense logit terms of every used position: ``s · h_t(τ) B_fold(user)``.

        ``h_t B = Σ_{p ≤ t} exp(-(t - p)/τ) B[i_p]`` over the row's target events, computed
        for every position at once as ``exp(-t/τ) · cumsum_p(exp(p/τ) B[i_p])`` (float64),
        so the cost is B × L × M rather than a sparse product per position.
        Shapes: inp fields (B, L), use (B, L), users (B,) → (N, M)."""
        dev = inp.item.device
        fold, graphs = self.fold_graphs(ctx, dev)
        index = graphs[0].index
        item = inp.item.clamp(max=self.num_items - 1)
        ok = inp.mask & inp.is_target
        if index is not None:  # only the graph's items take part
            local = torch.full((self.num_items,), -1, dtype=torch.long, device=dev)
            local[index] = torch.arange(len(index), device=dev)
            item = local[item]
            ok &= item >= 0
            item = item.clamp(min=0)
        tau = self.log_decay.exp().double().clamp(min=1.0)
        L = inp.item.size(1)
        pos = torch.arange(L, device=dev, dtype=torch.float64)
        up = torch.exp(pos / tau)[None, :] * ok  # (B, L) exp(p/τ) on target events
        b_all, t_all = use.nonzero(as_tuple=True)
        out = []
        row_order = []
        for k, g in enumerate(graphs):
            rows = torch.nonzero(fold[users] == k).flatten()  # this fold's sequences
            if rows.numel() == 0:
                continue
            x = g.weights.double()[item[rows]] * up[rows][..., None]  # (b, L, M)
            acc = x.cumsum(1) * torch.exp(-pos / tau)[None, :, None]  # (b, L, M)
            sel = torch.isin(b_all, rows)
            local_b = torch.searchsorted(rows, b_all[sel])
            out.append(acc[local_b, t_all[sel]].float())
            row_order.append(torch.nonzero(sel).flatten())
        order = torch.cat(row_order)
        dense = torch.empty(len(b_all), out[0].size(1), device=dev)
        dense = dense.index_copy(0, order, torch.cat(out))
        return index, self.weight() * dense

    def weight(self) -> Tensor:
        return STEP * self.scale

    def forward(self, ctx: GraphContext, hist: SeqBatch) -> Tensor:
        """(B, I) ``s · h_u(τ) B`` over each row's whole history, B of the scoring graph."""
        h = decayed_history(hist, self.num_items, self.log_decay.exp())
        return self.weight() * self.scoring_graph(ctx, h.device).apply(h)

    def summary(self) -> dict[str, float]:
        return {
            "weight": float(self.weight().detach()),
            "decay": float(self.log_decay.detach().exp()),
        }

    def __repr__(self) -> str:
        return f"ItemGraphScale({self.num_items}i, reg={self.reg:g}, folds={self.folds})"
