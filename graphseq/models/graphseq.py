"""GraphSeq: multi-view GNN item representations + multi-scale sequence user states.

Items: ID embedding fused (learned attention) with what LightGCN-style views propagate to
them — item co-occurrence (consecutive events of users), item–tag–item, item–entity–item (KG),
and optionally the user–item behavior graph. Users: a causal Transformer over their last
events (fine scale), optionally gated with a GRU over their GNN embeddings at graph
snapshots strictly before each position (coarse scale). Score = dot product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.models.base import Encoded
from graphseq.models.sasrec import SASRec
from graphseq.nn.adjacency import bipartite_adjacency, drop_edges, union_adjacency
from graphseq.nn.fusion import ViewFusion
from graphseq.nn.sequence import ScaleGate
from graphseq.nn.views import LightGCNView

VIEWS = ("cooc", "tag", "kg", "behavior")


def _cooc_pairs(ctx: GraphContext) -> tuple[Tensor, Tensor]:
    """Consecutive (item, next item) pairs within each user's visible events."""
    vis = ctx.visible
    perm = torch.argsort(vis.user, stable=True)
    u, i = vis.user[perm], vis.item[perm]
    same = (u[1:] == u[:-1]) & (i[1:] != i[:-1])
    return i[:-1][same], i[1:][same]


class GraphSeq(SASRec):
    """Args (beyond :class:`SASRec`):
    views: item views to use, from ``cooc``, ``tag``, ``kg``, ``behavior``.
    num_tags, num_entities: side-graph sizes (0 when absent).
    gnn_layers: propagation depth (2).  fusion: ``attention`` | ``mean`` | ``concat``.
    edge_dropout: share of view edges dropped per training step (0.1).
    coarse: add the snapshot scale; num_snapshots: how many snapshots (8).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_behaviors: int,
        views: tuple[str, ...] = ("cooc", "tag", "kg"),
        num_tags: int = 0,
        num_entities: int = 0,
        gnn_layers: int = 2,
        fusion: str = "attention",
        edge_dropout: float = 0.1,
        coarse: bool = False,
        num_snapshots: int = 8,
        **seq_kwargs,
    ) -> None:
        super().__init__(num_users, num_items, num_behaviors, **seq_kwargs)
        unknown = set(views) - set(VIEWS)
        if unknown:
            raise ValueError(f"unknown views {sorted(unknown)}; valid: {', '.join(VIEWS)}")
        # a view whose side graph is absent (no tags, no KG) falls back to the ID embedding
        self.views, self.edge_dropout, self.coarse = views, edge_dropout, coarse
        self.num_snapshots = num_snapshots
        d = self.dim
        self.tag_emb = nn.Embedding(max(num_tags, 1), d) if "tag" in views else None
        self.ent_emb = nn.Embedding(max(num_entities, 1), d) if "kg" in views else None
        self.user_emb = nn.Embedding(num_users, d) if ("behavior" in views or coarse) else None
        self.prop = LightGCNView(gnn_layers)
        self.fusion = ViewFusion(d, 1 + len(views), fusion) if views else None
        self.snap_gru = nn.GRU(d, d, batch_first=True) if coarse else None
        self.gate = ScaleGate(d) if coarse else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for name in ("tag_emb", "ent_emb", "user_emb"):
            emb = getattr(self, name, None)  # absent while SASRec.__init__ runs
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)

    # ---- item side -------------------------------------------------------------------------
    def _adj(self, ctx: GraphContext, name: str, build) -> Tensor:
        """Adjacency ``name``: cached per context at eval, rebuilt with edge dropout in training."""
        dev = self.item_emb.weight.device
        if self.training and self.edge_dropout > 0:
            return build(self.edge_dropout).to(dev)
        if name not in ctx.cache:
            ctx.cache[name] = build(0.0).to(dev)
        return ctx.cache[name]

    def _view(self, ctx: GraphContext, view: str) -> Tensor:
        n_items = self.num_items
        items = self.item_emb.weight
        side = ctx.side
        if view == "cooc":
            a, b = _cooc_pairs(ctx)

            def build(p):
                return union_adjacency([drop_edges(a, b, p) if p else (a, b)], n_items)

            return self.prop(items, self._adj(ctx, "cooc_adj", build), symmetric=True)
        if view == "tag":
            it = side.item_tag

            def build(p):
                s, t = drop_edges(it[0], it[1], p) if p else (it[0], it[1])
                return bipartite_adjacency(s, t, n_items, side.num_tags)

            x = torch.cat([items, self.tag_emb.weight])
            return self.prop(x, self._adj(ctx, "tag_adj", build), symmetric=True)[:n_items]
        if view == "kg":
            kg = side.kg

            def build(p):
                a, b = drop_edges(kg[0], kg[1], p) if p else (kg[0], kg[1])
                return union_adjacency([(a, b)], n_items + side.num_entities)

            x = torch.cat([items, self.ent_emb.weight[: side.num_entities]])
            return self.prop(x, self._adj(ctx, "kg_adj", build), symmetric=True)[:n_items]
        vis = ctx.visible  # behavior: the user–item graph (all visible events)

        def build(p):
            s, t = drop_edges(vis.user, vis.item, p) if p else (vis.user, vis.item)
            return bipartite_adjacency(s, t, self.num_users, n_items)

        x = torch.cat([self.user_emb.weight, items])
        return self.prop(x, self._adj(ctx, "ui_adj", build), symmetric=True)[self.num_users :]

    def item_table(self, ctx: GraphContext) -> Tensor:
        usable = [
            v
            for v in self.views
            if not (v == "tag" and ctx.side.item_tag is None)
            and not (v == "kg" and ctx.side.kg is None)
        ]
        if not usable:
            return self.item_emb.weight
        xs = [self.item_emb.weight] + [self._view(ctx, v) for v in usable]
        xs += [self.item_emb.weight] * (1 + len(self.views) - len(xs))  # absent side graphs
        return self.fusion(torch.stack(xs))  # (I, d)

    def view_weights(self) -> Tensor | None:
        """(I, V) attention weights of the last item encoding (id first, then ``views``)."""
        return None if self.fusion is None else self.fusion.last_weights

    # ---- coarse scale ----------------------------------------------------------------------
    def _snapshot_states(self, ctx: GraphContext, items: Tensor) -> tuple[Tensor, Tensor]:
        """GRU states over users' GNN embeddings at cumulative equal-count snapshots.

        Returns ``(boundaries (S,), states (U, S+1, d))``; state ``k`` has seen snapshots whose
        boundary is among the first ``k`` — built from events strictly before that boundary.
        """
        vis = ctx.visible
        dev = items.device
        if "snap_bounds" not in ctx.cache:
            q = torch.linspace(0, 1, self.num_snapshots + 1)[1:].double()
            bounds = (
                torch.quantile(vis.time.double(), q).long()
                if len(vis)
                else torch.zeros(0, dtype=torch.long)
            )
            bounds = torch.unique(bounds)
            ctx.cache["snap_bounds"] = bounds
            ctx.cache["snap_adjs"] = [
                bipartite_adjacency(
                    vis.user[vis.time < b], vis.item[vis.time < b], self.num_users, self.num_items
                ).to(dev)
                for b in bounds
            ]
        bounds, adjs = ctx.cache["snap_bounds"], ctx.cache["snap_adjs"]
        x = torch.cat([self.user_emb.weight, items])
        z = torch.stack(
            [self.prop(x, a, symmetric=True)[: self.num_users] for a in adjs], 1
        )  # (U, S, d)
        h, _ = self.snap_gru(z)
        h = torch.cat([torch.zeros_like(h[:, :1]), h], 1)  # (U, S+1, d)
        return bounds.to(dev), h

    def states(self, ctx: GraphContext, enc: Encoded, seq: SeqBatch, users: Tensor) -> Tensor:
        fine = super().states(ctx, enc, seq, users)  # (B, L, d)
        if not self.coarse:
            return fine
        bounds, h = self._snapshot_states(ctx, enc.items)
        k = torch.searchsorted(bounds, seq.time.contiguous(), right=True)  # (B, L) boundaries <= event time
        coarse = h[users[:, None], k]  # (B, L, d)
        return self.gate(fine, coarse)

    def __repr__(self) -> str:
        seq = self.sequence_name + ("+snapshots" if self.coarse else "")
        return f"GraphSeq({self.num_users}u, {self.num_items}i, dim={self.dim}, views={len(self.views)}, seq={seq})"
