"""GraphSeq in mini-batch mode: no full-graph embedding is materialised while training.

Per batch of seed users, the items the loss needs get their view representations from
sampled, time-respecting neighbourhoods (:func:`graphseq.graph.sampler.sample_subgraph`, seed
time = the batch's latest event, so no edge at or after it enters), estimated with
:func:`graphseq.nn.sampled.tree_lightgcn`. With ``loss=ce`` (the default) that is every
item — a full softmax, whose cost grows with the catalogue × fan-outs but not with the
graph; with ``loss=sampled`` only the batch's sequence items and its shared negatives (for
large catalogues; logQ-corrected when the negatives follow popularity). As in full-graph
mode, the user-derived views (co-occurrence, behavior) drop every sampled edge made by a
batch user, so no target is read from the graph that scores it. The coarse scale embeds
each batch user at every snapshot boundary from its neighbourhood strictly before that
boundary (item ID embeddings at hop 1, where full-graph mode uses the fused item table).

Evaluation ranks the full catalogue: :meth:`encode` computes every item's representation
in chunks of ``eval_chunk`` seeds, with deterministic ``even`` sampling over the whole
scoring graph (which holds no held-out event; see ``splits.check_leakage``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphseq.graph.context import GraphContext
from graphseq.graph.sampler import ALL_TIME, TemporalCSR, sample_subgraph
from graphseq.graph.sequences import SeqBatch, earlier_targets
from graphseq.graph.snapshots import snapshot_boundaries
from graphseq.models.base import Encoded
from graphseq.models.graphseq import GraphSeq
from graphseq.models.sasrec import SASRec
from graphseq.nn.losses import full_softmax_ce, sample_negatives, sampled_softmax_ce
from graphseq.nn.sampled import tree_lightgcn


def _cooc_timed(ctx: GraphContext) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Consecutive (item, next item, user, time of the next event) within users' events."""
    vis = ctx.visible
    perm = torch.argsort(vis.user, stable=True)
    u, i, t = vis.user[perm], vis.item[perm], vis.time[perm]
    same = (u[1:] == u[:-1]) & (i[1:] != i[:-1])
    return i[:-1][same], i[1:][same], u[1:][same], t[1:][same]


class MiniBatchGraphSeq(GraphSeq):
    """Args (beyond :class:`GraphSeq`):
    fanouts: neighbours sampled per hop, one entry per propagation layer ((10, 5)).
    loss (from :class:`SASRec`): ``ce`` (full softmax, default) | ``sampled``.
    negatives: ``uniform`` | ``popularity`` (sampled-softmax negatives; logQ-corrected).
    eval_chunk: items encoded per chunk at evaluation (4096).
    Shapes: as :class:`SASRec`; ``items_repr`` (n,) items → (n, d).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_behaviors: int,
        fanouts: tuple[int, ...] = (10, 5),
        negatives: str = "uniform",
        eval_chunk: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_users, num_items, num_behaviors, **kwargs)
        if len(fanouts) != self.prop.num_layers:
            raise ValueError(
                f"fanouts {tuple(fanouts)} need one entry per gnn layer ({self.prop.num_layers})"
            )
        if self.loss_name not in ("ce", "sampled"):
            raise ValueError(
                f"mini-batch mode trains with loss ce or sampled, not {self.loss_name!r}"
            )
        if negatives not in ("uniform", "popularity"):
            raise ValueError(f"unknown negatives {negatives!r}; valid: uniform, popularity")
        self.fanouts, self.negatives, self.eval_chunk = tuple(fanouts), negatives, eval_chunk

    # ---- sampled views ---------------------------------------------------------------------
    def _csr(self, ctx: GraphContext, view: str) -> tuple[TemporalCSR, Tensor | None]:
        """The view's time-ordered CSR over its node space (items first) and each input
        edge's owner user (``None`` for side graphs); cached per context."""
        key = f"csr_{view}"
        if key not in ctx.cache:
            n, side, vis = self.num_items, ctx.side, ctx.visible
            owner = None
            if view == "cooc":
                a, b, owner, t = _cooc_timed(ctx)
                csr = TemporalCSR.from_edges(a, b, n, t, undirected=True)
            elif view == "tag":
                a, b = side.item_tag
                csr = TemporalCSR.from_edges(a, n + b, n + side.num_tags, undirected=True)
            elif view == "kg":
                csr = TemporalCSR.from_edges(
                    side.kg[0], side.kg[1], n + side.num_entities, undirected=True
                )
            elif view == "behavior":
                csr = TemporalCSR.from_edges(
                    vis.item, n + vis.user, n + self.num_users, vis.time, True
                )
                owner = vis.user
            else:  # snap: users first, as in full-graph mode's snapshot graphs
                u = self.num_users
                csr = TemporalCSR.from_edges(vis.user, u + vis.item, u + n, vis.time, True)
            ctx.cache[key] = (csr, owner)
        return ctx.cache[key]

    def _node_x(self, view: str, ids: Tensor) -> Tensor:
        """(N, d) layer-0 features of the view's nodes ``ids`` (items first, then the rest)."""
        first, n = self.item_emb, self.num_items
        rest = {"tag": self.tag_emb, "kg": self.ent_emb, "behavior": self.user_emb}.get(view)
        if view == "snap":
            first, rest, n = self.user_emb, self.item_emb, self.num_users
        if rest is None:
            return first(ids)
        is_first = ids < n
        return torch.where(
            is_first[:, None], first(ids.clamp(max=n - 1)), rest((ids - n).clamp(min=0))
        )

    def _sampled(
        self, ctx: GraphContext, view: str, seeds: Tensor, time: Tensor, batch_users: Tensor | None
    ) -> Tensor:
        """(S, d) sampled LightGCN estimate of the view at ``seeds`` (CPU index tensors)."""
        dev = self.item_emb.weight.device
        csr, owner = self._csr(ctx, view)
        strategy = "uniform" if self.training else "even"
        sub = sample_subgraph(csr, seeds, time, self.fanouts, strategy)
        keep = None
        if self.training:
            drop = self.edge_dropout if view != "snap" else 0.0  # snapshots: no dropout
            keep = torch.rand(sub.edge_id.numel()) >= drop
            if owner is not None and batch_users is not None:
                keep &= ~torch.isin(owner[sub.edge_id], batch_users.cpu())
            keep = keep.to(dev)
        return tree_lightgcn(
            self._node_x(view, sub.node.to(dev)), sub.to(dev), len(self.fanouts), keep
        )

    def items_repr(
        self, ctx: GraphContext, items: Tensor, time: Tensor, batch_users: Tensor | None = None
    ) -> Tensor:
        """(n, d) representations of ``items`` (n,) from neighbourhoods before ``time`` (n,)."""
        base = self.item_emb(items.to(self.item_emb.weight.device))
        if self.fusion is None:
            return base
        absent = {"tag": ctx.side.item_tag is None, "kg": ctx.side.kg is None}
        xs = [
            base if absent.get(v) else self._sampled(ctx, v, items, time, batch_users)
            for v in self.views
        ]
        return base + self.view_scale * self.fusion(torch.stack(xs))

    def encode(self, ctx: GraphContext) -> Encoded:
        """The whole catalogue, encoded chunk by chunk over the full scoring graph."""
        items = torch.arange(self.num_items)
        chunks = [
            self.items_repr(ctx, c, torch.full_like(c, ALL_TIME))
            for c in items.split(self.eval_chunk)
        ]
        return Encoded(items=torch.cat(chunks))

    # ---- coarse scale ----------------------------------------------------------------------
    def states(self, ctx: GraphContext, enc: Encoded, seq: SeqBatch, users: Tensor) -> Tensor:
        fine = SASRec.states(self, ctx, enc, seq, users)  # (B, L, d)
        if not self.coarse:
            return fine
        if "snap_bounds" not in ctx.cache:
            ctx.cache["snap_bounds"] = snapshot_boundaries(ctx.visible.time, self.num_snapshots)
        bounds = ctx.cache["snap_bounds"]
        B, S = users.numel(), bounds.numel()
        seeds = users.cpu().repeat_interleave(S)
        z = self._sampled(ctx, "snap", seeds, bounds.repeat(B), None).view(B, S, -1)
        h, _ = self.snap_gru(z)
        h = torch.cat([torch.zeros_like(h[:, :1]), h], 1)  # (B, S+1, d)
        k = torch.searchsorted(bounds.to(fine.device), seq.time.contiguous(), right=True)
        coarse = h[torch.arange(B, device=fine.device)[:, None], k]  # (B, L, d)
        return self.gate(fine, coarse)

    # ---- training --------------------------------------------------------------------------
    def _popularity(self, ctx: GraphContext) -> Tensor:
        if "item_pop" not in ctx.cache:
            vis = ctx.visible
            ctx.cache["item_pop"] = (
                torch.bincount(vis.item[vis.is_target], minlength=self.num_items) + 1.0
            )
        return ctx.cache["item_pop"]

    def loss(self, ctx: GraphContext, batch: Tensor) -> Tensor:
        """``ce``: full softmax over the whole catalogue, every item encoded from its sampled
        neighbourhood (cost ∝ catalogue × fan-outs per step, no full-graph propagation);
        ``sampled``: only the batch's sequence items and ``num_negatives`` shared negatives
        are encoded (cost independent of the catalogue; logQ-corrected with popularity
        negatives). Either way the row's earlier targets leave its softmax
        (``train_exclude_seen``), as evaluation leaves them out of the ranking."""
        dev = self.item_emb.weight.device
        seq = ctx.user_sequences(batch, self.max_len + 1)  # CPU, global item ids
        pop, neg = None, None
        if self.loss_name == "ce":
            need = torch.arange(self.num_items)
        else:  # sampled
            pop = self._popularity(ctx) if self.negatives == "popularity" else None
            neg = sample_negatives(self.num_negatives, self.num_items, pop)
            need = torch.unique(torch.cat([seq.item[seq.mask], neg]))  # sorted, (n,)
        t = seq.time[seq.mask].max()  # the batch's latest event: only edges before it
        reps = self.items_repr(ctx, need, t.expand(need.numel()), batch)  # (n, d)
        local = torch.where(seq.mask, torch.searchsorted(need, seq.item), need.numel())
        fields = (local, seq.behavior, seq.time, seq.is_target, seq.mask)
        inp = SeqBatch(*(f[:, :-1] for f in fields)).to(dev)
        label, use = local[:, 1:].to(dev), (seq.is_target[:, 1:] & seq.mask[:, :-1]).to(dev)
        h = self.head.transform(self.states(ctx, Encoded(items=reps), inp, batch.to(dev))[use])
        target, n, ex = label[use], need.numel(), self.train_exclude_seen
        if neg is None:
            return full_softmax_ce(
                h, reps, target, earlier_targets(inp, use, target, n) if ex else None
            )
        neg_local = torch.searchsorted(need, neg).to(dev)
        seen = earlier_targets(inp, use, target, n, neg_local) if ex else None
        log_q = None if pop is None else (pop / pop.sum()).log()[need].to(dev)
        return sampled_softmax_ce(h, reps, target, neg_local, log_q, seen)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", minibatch={list(self.fanouts)})"
