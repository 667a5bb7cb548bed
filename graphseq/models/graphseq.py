"""GraphSeq: multi-view GNN item representations + multi-scale sequence user states.

Items: ID embedding plus a learned, zero-initialised scale times the attention-fused outputs
of LightGCN-style views — item co-occurrence (consecutive events of users), item–tag–item,
item–entity–item (KG), and optionally the user–item behavior graph. While training, the
user-derived views (co-occurrence, behavior) leave out the batch users' own edges, so no
target can be read from the graph that scores it. Users: a causal Transformer over their last
events (fine scale), optionally gated with a GRU over their GNN embeddings at graph
snapshots strictly before each position (coarse scale). Score = dot product, late-fused
with a closed-form item–item graph over the user's recency-decayed history
(:class:`~graphseq.nn.itemgraph.ItemGraphScorer`; its weight is chosen on validation after
training and is 0 while training, so early stopping sees the learned model alone).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch
from graphseq.graph.snapshots import snapshot_boundaries
from graphseq.models.base import Encoded
from graphseq.models.sasrec import SASRec
from graphseq.nn.adjacency import bipartite_blocks, union_adjacency
from graphseq.nn.fusion import ViewFusion
from graphseq.nn.itemgraph import ItemGraphScorer
from graphseq.nn.sequence import ScaleGate
from graphseq.nn.views import LightGCNView, bipartite_propagate

VIEWS = ("cooc", "tag", "kg", "behavior")


def _cooc_pairs(ctx: GraphContext) -> tuple[Tensor, Tensor, Tensor]:
    """Consecutive (item, next item, user) triples within each user's visible events."""
    vis = ctx.visible
    perm = torch.argsort(vis.user, stable=True)
    u, i = vis.user[perm], vis.item[perm]
    same = (u[1:] == u[:-1]) & (i[1:] != i[:-1])
    return i[:-1][same], i[1:][same], u[1:][same]


class GraphSeq(SASRec):
    """Args (beyond :class:`SASRec`):
    views: item views to use, from ``cooc``, ``tag``, ``kg``, ``behavior``.
    num_tags, num_entities: side-graph sizes (0 when absent).
    gnn_layers: propagation depth (2).  fusion: ``attention`` | ``mean`` | ``concat``.
    edge_dropout: share of view edges dropped per training step (0.1).
    coarse: add the snapshot scale; num_snapshots: how many snapshots (8).
    item_graph: late-fuse the item–item graph scorer (True); item_graph_reg: its λ (200);
    item_graph_max_items: larger catalogues skip it (10,000).
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
        item_graph: bool = True,
        item_graph_reg: float = 200.0,
        item_graph_max_items: int = 10_000,
        **seq_kwargs,
    ) -> None:
        super().__init__(num_users, num_items, num_behaviors, **seq_kwargs)
        unknown = set(views) - set(VIEWS)
        if unknown:
            raise ValueError(f"unknown views {sorted(unknown)}; valid: {', '.join(VIEWS)}")
        self.views, self.edge_dropout, self.coarse = views, edge_dropout, coarse
        self.num_snapshots = num_snapshots
        d = self.dim
        self.tag_emb = nn.Embedding(max(num_tags, 1), d) if "tag" in views else None
        self.ent_emb = nn.Embedding(max(num_entities, 1), d) if "kg" in views else None
        self.user_emb = nn.Embedding(num_users, d) if ("behavior" in views or coarse) else None
        self.prop = LightGCNView(gnn_layers)
        self.fusion = ViewFusion(d, len(views), fusion) if views else None
        # item = ID embedding + view_scale * fused views; the scale starts at 0, so training
        # starts from the sequence model and the views enter as far as they help
        self.view_scale = nn.Parameter(torch.zeros(d)) if views else None
        self.snap_gru = nn.GRU(d, d, batch_first=True) if coarse else None
        self.gate = ScaleGate(d) if coarse else None
        ig = ItemGraphScorer(num_items, item_graph_reg, item_graph_max_items)
        self.item_graph = ig if item_graph and ig.enabled else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if getattr(self, "view_scale", None) is not None:
            nn.init.zeros_(self.view_scale)
        for name in ("tag_emb", "ent_emb", "user_emb"):
            emb = getattr(self, name, None)  # absent while SASRec.__init__ runs
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)

    # ---- item side -------------------------------------------------------------------------
    def _edges(self, ctx: GraphContext, view: str) -> tuple[Tensor, Tensor, Tensor | None, int]:
        """``(a, b, owner, num_nodes)``: the view's undirected edges over its node space
        (items first), and the user whose events made each edge (``None`` for side graphs)."""
        key = f"edges_{view}"
        if key not in ctx.cache:
            n, side = self.num_items, ctx.side
            if view == "cooc":
                a, b, owner = _cooc_pairs(ctx)
                out = (a, b, owner, n)
            elif view == "tag":
                out = (side.item_tag[0], n + side.item_tag[1], None, n + side.num_tags)
            elif view == "kg":
                out = (side.kg[0], side.kg[1], None, n + side.num_entities)
            else:  # behavior: users are placed after the items
                vis = ctx.visible
                out = (vis.item, n + vis.user, vis.user, n + self.num_users)
            ctx.cache[key] = out
        return ctx.cache[key]

    def _adj(self, ctx: GraphContext, view: str, batch_users: Tensor | None) -> Tensor:
        """The view's normalised adjacency. Eval: all edges, cached per context. Training:
        edge dropout, and no edge made by the batch's own users — their targets must not be
        readable from the graph that scores them (the target-in-graph shortcut)."""
        dev = self.item_emb.weight.device
        a, b, owner, n = self._edges(ctx, view)
        if not self.training:
            key = f"adj_{view}"
            if key not in ctx.cache:
                ctx.cache[key] = union_adjacency([(a, b)], n).to(dev)
            return ctx.cache[key]
        keep = torch.rand(a.numel()) >= self.edge_dropout
        if owner is not None and batch_users is not None:
            keep &= ~torch.isin(owner, batch_users.cpu())
        return union_adjacency([(a[keep], b[keep])], n).to(dev)

    def _view(
        self, ctx: GraphContext, view: str, base: Tensor, batch_users: Tensor | None = None
    ) -> Tensor:
        """(I, d) item representations propagated by one view from the item inputs ``base``."""
        parts = [base]
        if view == "tag":
            parts.append(self.tag_emb.weight[: ctx.side.num_tags])
        elif view == "kg":
            parts.append(self.ent_emb.weight[: ctx.side.num_entities])
        elif view == "behavior":
            parts.append(self.user_emb.weight)
        out = self.prop(torch.cat(parts), self._adj(ctx, view, batch_users), symmetric=True)
        return out[: self.num_items]

    def item_table(self, ctx: GraphContext, batch_users: Tensor | None = None) -> Tensor:
        base = self.item_input()  # (I, d): ID embedding (+ item features)
        if self.fusion is None:
            return base
        absent = {"tag": ctx.side.item_tag is None, "kg": ctx.side.kg is None}
        xs = []
        for v in self.views:  # a view whose side graph is absent falls back to the item inputs
            xs.append(base if absent.get(v) else self._view(ctx, v, base, batch_users))
        return base + self.view_scale * self.fusion(torch.stack(xs))  # (I, d)

    def view_weights(self) -> Tensor | None:
        """(I, V) fusion weights over ``views`` from the last item encoding."""
        return None if self.fusion is None else self.fusion.last_weights

    # ---- coarse scale ----------------------------------------------------------------------
    def _snapshot_states(
        self, ctx: GraphContext, items: Tensor, users: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """GRU states over users' GNN embeddings at cumulative equal-count snapshots.

        Returns ``(boundaries (S,), states (B, S+1, d))`` for ``users`` (B,), or (U, S+1, d)
        for every user when ``None``; state ``k`` has seen snapshots whose boundary is among
        the first ``k`` — built from events strictly before that boundary.
        """
        vis = ctx.visible
        dev = items.device
        if "snap_bounds" not in ctx.cache:
            bounds = snapshot_boundaries(vis.time, self.num_snapshots, "count")
            ctx.cache["snap_bounds"] = bounds
            ctx.cache["snap_blocks"] = [
                tuple(
                    a.to(dev)
                    for a in bipartite_blocks(
                        vis.user[vis.time < b],
                        vis.item[vis.time < b],
                        self.num_users,
                        self.num_items,
                    )
                )
                for b in bounds
            ]
        bounds, blocks = ctx.cache["snap_bounds"], ctx.cache["snap_blocks"]
        layers = self.prop.num_layers
        u0 = self.user_emb.weight
        z = torch.stack(
            [bipartite_propagate(a_ui, a_iu, u0, items, layers, users) for a_ui, a_iu in blocks],
            1,
        )  # (B, S, d)
        h, _ = self.snap_gru(z)
        h = torch.cat([torch.zeros_like(h[:, :1]), h], 1)  # (B, S+1, d)
        return bounds.to(dev), h

    def states(self, ctx: GraphContext, enc: Encoded, seq: SeqBatch, users: Tensor) -> Tensor:
        fine = super().states(ctx, enc, seq, users)  # (B, L, d)
        if not self.coarse:
            return fine
        if self.training:  # only the batch's users: their snapshot embeddings and GRU
            bounds, h = self._snapshot_states(ctx, enc.items, users)
            rows = torch.arange(len(users), device=users.device)
        else:  # fixed weights: one snapshot pass per scoring context (evaluation, serving)
            if "snap_states" not in ctx.cache:
                ctx.cache["snap_states"] = self._snapshot_states(ctx, enc.items)
            bounds, h = ctx.cache["snap_states"]
            rows = users
        k = torch.searchsorted(
            bounds, seq.time.contiguous(), right=True
        )  # (B, L) boundaries <= event time
        coarse = h[rows[:, None], k]  # (B, L, d)
        return self.gate(fine, coarse)

    # ---- ranking ---------------------------------------------------------------------------
    def rank_scores(self, ctx: GraphContext, enc: Encoded, users: Tensor, hist: SeqBatch) -> Tensor:
        scores = super().rank_scores(ctx, enc, users, hist)  # (B, I)
        if self.item_graph is None or float(self.item_graph.weight) == 0.0:
            return scores
        if "item_graph" not in ctx.cache:  # one (I, I) graph per scoring context
            vis = ctx.visible
            t = vis.is_target
            dev = scores.device
            ctx.cache["item_graph"] = self.item_graph.graph(
                vis.user[t].to(dev), vis.item[t].to(dev), self.num_users
            )
        return self.item_graph(scores, hist, ctx.cache["item_graph"])

    def __repr__(self) -> str:
        seq = self.sequence_name + ("+snapshots" if self.coarse else "")
        seq += "+itemgraph" if self.item_graph is not None else ""
        text = f", text={self.item_feat.proj.in_features}" if self.item_feat is not None else ""
        return f"GraphSeq({self.num_users}u, {self.num_items}i, dim={self.dim}, views={len(self.views)}, seq={seq}{text})"
