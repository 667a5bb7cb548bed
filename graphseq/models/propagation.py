"""The two ways a view propagates item representations: over the whole graph, or sampled.

- :class:`FullGraph`: one normalised CSR per view (LightGCN SpMM chain) over the whole
  scoring graph. Training rebuilds it with edge dropout and without the batch users' own
  edges (from the view's directed edges, sorted once per context:
  :class:`~graphseq.nn.adjacency.EdgeSubsets`); scoring uses one cached adjacency.
- :class:`Sampled` (mini-batch mode): time-respecting sampled trees
  (:func:`graphseq.graph.sampler.sample_subgraph`) and a LightGCN estimate on them
  (:func:`graphseq.nn.sampled.tree_lightgcn`); a step never touches the whole graph.

Both take the layer-0 features of a view's nodes from the item encoder (``node_x``), so item
features (text) and cold-item zeroing reach either backend the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext, PerContext
from graphseq.graph.sampler import TemporalCSR, sample_subgraph
from graphseq.keys import key, rng
from graphseq.models.views import View, ViewEdges, view_edges
from graphseq.nn.adjacency import EdgeSubsets, union_adjacency
from graphseq.nn.sampled import tree_lightgcn
from graphseq.nn.views import LightGCNView

NodeX = Callable[[Tensor], Tensor]  # node ids of a view's node space -> (N, d) features


@dataclass(frozen=True)
class PropagationKeys:
    """Config keys of view propagation (graphseq; ``gnn_layers`` also lightgcn, mbcgcn)."""

    gnn_layers: int = key(2, "propagation depth of every view (and of lightgcn)", low=0,
                          space=rng(1, 3))  # fmt: skip
    edge_dropout: float = key(0.1, "share of view edges dropped at each training step", low=0,
                              high=1, high_open=True, space=rng(0.0, 0.3))  # fmt: skip
    minibatch: bool | Literal["auto"] = key(
        "auto", "true: sampled time-respecting neighbourhoods per batch of users and a chunked "
        "full-catalogue evaluation; false: full-graph propagation; auto: mini-batch when a "
        "full-graph step would propagate more than AUTO_MINIBATCH_EDGES user-derived edges",
    )  # fmt: skip
    fanouts: tuple[int, ...] = key((10, 5), "mini-batch: neighbours sampled per hop (one per "
                                   "gnn layer)", low=1)  # fmt: skip
    eval_chunk: int = key(4096, "mini-batch: items encoded per chunk when scoring", low=1,
                          fixed=True)  # fmt: skip
    sparse_min_rows: int = key(100_000, "mini-batch: embedding tables with at least this many "
                               "rows get sparse gradients and a row-wise AdamW (0: every "
                               "table)", low=0)  # fmt: skip


def kept_edges(owner: Tensor | None, n: int, drop: float, batch_users: Tensor | None) -> Tensor:
    """(n,) bool: edge dropout, and no edge made by a user of the batch being trained on."""
    keep = torch.rand(n) >= drop
    if owner is not None and batch_users is not None and owner.numel():
        users = batch_users.cpu()
        size = max(int(owner.max()), int(users.max()) if users.numel() else 0) + 1
        in_batch = torch.zeros(size, dtype=torch.bool)
        in_batch[users] = True  # a lookup table: ~10x faster than isin on 1M edges
        keep &= ~in_batch[owner]
    return keep


class FullGraph(nn.Module):
    """Propagation over each view's whole graph.

    Args:
        num_layers: propagation depth (2).  edge_dropout: share of edges dropped per step.
    Shapes: ``forward`` x (N, d) over the view's node space → (N, d).
    """

    def __init__(self, num_layers: int = 2, edge_dropout: float = 0.1) -> None:
        super().__init__()
        self.num_layers, self.edge_dropout = num_layers, edge_dropout
        self.prop = LightGCNView(num_layers)
        self._edges: PerContext[dict[str, ViewEdges]] = PerContext()  # per view name
        self._adj: PerContext[dict[str, Tensor]] = PerContext()  # scoring adjacencies
        self._subsets: PerContext[dict[str, EdgeSubsets]] = PerContext()  # training ones

    def edges(self, ctx: GraphContext, view: View) -> ViewEdges:
        """The view's edges in ``ctx`` (derived from events: built once per context)."""
        per = self._edges.get(ctx, dict)
        if view.name not in per:
            per[view.name] = view_edges(view, ctx)
        return per[view.name]

    def forward(
        self,
        ctx: GraphContext,
        view: View,
        x: Tensor,
        batch_users: Tensor | None = None,
    ) -> Tensor:
        e = self.edges(ctx, view)
        if self.training:  # the kept edges' adjacency, from edges sorted once per context
            keep = kept_edges(e.owner, e.a.numel(), self.edge_dropout, batch_users)
            subsets = self._subsets.get(ctx, dict)
            if view.name not in subsets:
                subsets[view.name] = EdgeSubsets(e.a, e.b, e.num_nodes)
            adj = subsets[view.name](keep).to(x.device)
        else:
            per = self._adj.get(ctx, dict)  # scoring: one adjacency per context and view
            if view.name not in per:
                per[view.name] = union_adjacency([(e.a, e.b)], e.num_nodes).to(x.device)
            adj = per[view.name]
        return self.prop(x, adj, symmetric=True)

    def __repr__(self) -> str:
        return f"FullGraph(layers={self.num_layers})"


class Sampled(nn.Module):
    """Propagation on sampled, time-respecting trees (mini-batch mode).

    Args:
        fanouts: neighbours sampled per hop, one entry per layer ((10, 5)).
        edge_dropout: share of sampled edges dropped per step.
        eval_chunk: items encoded per chunk when the whole catalogue is scored (4096).
    Training samples ``uniform``ly; scoring uses the deterministic ``even`` strategy.
    """

    def __init__(
        self, fanouts: tuple[int, ...] = (10, 5), edge_dropout: float = 0.1, eval_chunk: int = 4096
    ) -> None:
        super().__init__()
        self.fanouts, self.edge_dropout, self.eval_chunk = tuple(fanouts), edge_dropout, eval_chunk
        self._csr: PerContext[dict[str, tuple[TemporalCSR, Tensor | None]]] = PerContext()

    @property
    def num_layers(self) -> int:
        return len(self.fanouts)

    def csr(self, ctx: GraphContext, view: View) -> tuple[TemporalCSR, Tensor | None]:
        """The view's time-ordered CSR and each input edge's owner (built once per context;
        the view's edge lists are not kept once the CSR holds them)."""
        per = self._csr.get(ctx, dict)
        if view.name not in per:
            e = view_edges(view, ctx)
            csr = TemporalCSR.from_edges(e.a, e.b, e.num_nodes, e.time, undirected=True)
            owner = None if e.owner is None else e.owner.to(csr.eid.dtype)  # user ids
            per[view.name] = (csr, owner)
        return per[view.name]

    def tree(
        self,
        csr: TemporalCSR,
        owner: Tensor | None,
        seeds: Tensor,
        time: Tensor,
        node_x: NodeX,
        batch_users: Tensor | None,
        drop: float,
    ) -> Tensor:
        """(S, d) sampled LightGCN estimate at ``seeds`` (S,) with seed times ``time`` (S,)."""
        sub = sample_subgraph(
            csr, seeds, time, self.fanouts, "uniform" if self.training else "even"
        )
        x = node_x(sub.node)
        keep = None
        if self.training:
            own = None if owner is None else owner[sub.edge_id].long()
            keep = kept_edges(own, sub.edge_id.numel(), drop, batch_users).to(x.device)
        return tree_lightgcn(x, sub.to(x.device), self.num_layers, keep)

    def forward(
        self,
        ctx: GraphContext,
        view: View,
        seeds: Tensor,
        time: Tensor,
        node_x: NodeX,
        batch_users: Tensor | None = None,
    ) -> Tensor:
        csr, owner = self.csr(ctx, view)
        return self.tree(csr, owner, seeds, time, node_x, batch_users, self.edge_dropout)

    def __repr__(self) -> str:
        return f"Sampled(fanouts={list(self.fanouts)})"
