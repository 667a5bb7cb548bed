"""User encoders: a sequence model over the user's events (with an optional snapshot scale),
or an ID table (mf, lightgcn) with a fold-in for ad-hoc histories.

Every encoder maps ``(ctx, enc, users, hist)`` to (B, d) user states; ``users`` is None for an
anonymous history (``recommend --history``), which each encoder handles explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseq.graph.context import GraphContext, PerContext
from graphseq.graph.sampler import TemporalCSR
from graphseq.graph.sequences import SeqBatch
from graphseq.graph.shape import GraphShape
from graphseq.graph.snapshots import snapshot_boundaries
from graphseq.keys import key, pick, rng
from graphseq.models.base import Encoded
from graphseq.models.propagation import Sampled
from graphseq.nn.adjacency import bipartite_blocks
from graphseq.nn.sequence import CausalTransformer, GRUSequence, ScaleGate, TimeGapEncoding
from graphseq.nn.views import bipartite_propagate

if TYPE_CHECKING:
    from graphseq.config import TrainConfig

SequenceKind = Literal["transformer", "gru", "none"]


@dataclass(frozen=True)
class SequenceKeys:
    """Config keys of the sequence encoder (sasrec, gru4rec, graphseq)."""

    num_layers: int = key(2, "Transformer / GRU layers", low=0, space=rng(1, 3))
    num_heads: int = key(1, "attention heads (must divide dim)", low=1, space=pick(1, 2))
    dropout: float = key(0.3, "embedding and Transformer dropout", low=0, high=1,
                         high_open=True, space=rng(0.0, 0.6))  # fmt: skip
    sequence: SequenceKind = key("transformer", "the sequence module (none: a bag of events)")
    time_encoding: bool = key(True, "embed log time gaps between events")


@dataclass(frozen=True)
class SnapshotKeys:
    """Config keys of the snapshot scale (graphseq)."""

    snapshot_scale: bool = key(True, "a GRU over the user's graph embeddings at snapshots "
                               "before each event, gated into its states", space=pick(False, True))  # fmt: skip
    num_snapshots: int = key(8, "graph snapshots of the snapshot scale", low=1)


@dataclass
class SnapshotStates:
    """GRU states over users' graph embeddings at cumulative snapshots.
    Shapes: bounds (S,) int64; states (U, S+1, d) — state ``k`` has seen the first ``k``."""

    bounds: Tensor
    states: Tensor


class SnapshotScale(nn.Module):
    """Coarse scale: each user's LightGCN embedding at cumulative equal-count snapshots of the
    graph (built from events strictly before each boundary), summarised by a GRU and gated
    into the per-event states (``fine + sigmoid(W[fine; snapshot]) * snapshot``).

    Args:
        num_users, num_items, dim: sizes.  num_snapshots: snapshots (8).
        num_layers: propagation depth (2).  sampled: a :class:`Sampled` backend for
            mini-batch mode (users embedded from sampled trees; item inputs at hop 1), or None
            (full-graph: bipartite blocks per snapshot over the fused item table).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int,
        num_snapshots: int = 8,
        num_layers: int = 2,
        sampled: Sampled | None = None,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items, self.num_snapshots = num_users, num_items, num_snapshots
        self.num_layers, self.sampled = num_layers, sampled
        self.user_emb = nn.Embedding(num_users, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.gate = ScaleGate(dim)
        self._bounds_of: PerContext[Tensor] = PerContext()
        self._blocks_of: PerContext[list[tuple[Tensor, Tensor]]] = PerContext()
        self._csr_of: PerContext[TemporalCSR] = PerContext()
        self.reset_parameters()

    config_keys: ClassVar[tuple[str, ...]] = ("dim", "snapshot_scale", "num_snapshots",
                                              "gnn_layers", "minibatch", "fanouts", "eval_chunk")  # fmt: skip

    @classmethod
    def from_config(cls, c: TrainConfig, shape: GraphShape) -> SnapshotScale | None:
        """The scale ``c`` asks for (None with ``snapshot_scale=false``); mini-batch runs
        embed users from sampled trees."""
        if not c.snapshot_scale:
            return None
        sampled = Sampled(c.fanouts, 0.0, c.eval_chunk) if c.minibatch else None
        return cls(shape.num_users, shape.num_items, c.dim, c.num_snapshots, c.gnn_layers, sampled)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=0.02)
        self.gru.reset_parameters()
        self.gate.reset_parameters()

    def _bounds(self, ctx: GraphContext) -> Tensor:
        return self._bounds_of.get(
            ctx, lambda: snapshot_boundaries(ctx.visible.time, self.num_snapshots)
        )

    def _blocks(self, ctx: GraphContext, dev: torch.device) -> list[tuple[Tensor, Tensor]]:
        """The bipartite blocks of every snapshot (derived from events: one set a context)."""

        def build() -> list[tuple[Tensor, Tensor]]:
            vis, u, i = ctx.visible, self.num_users, self.num_items
            return [
                tuple(a.to(dev) for a in bipartite_blocks(vis.user[vis.time < b],
                                                          vis.item[vis.time < b], u, i))
                for b in self._bounds(ctx)
            ]  # fmt: skip

        return self._blocks_of.get(ctx, build)

    def _snap_csr(self, ctx: GraphContext) -> TemporalCSR:
        def build() -> TemporalCSR:  # users first, then items
            vis, u = ctx.visible, self.num_users
            return TemporalCSR.from_edges(
                vis.user, u + vis.item, u + self.num_items, vis.time, True
            )

        return self._csr_of.get(ctx, build)

    def embed(self, ctx: GraphContext, items: Tensor, users: Tensor | None, item_x=None) -> Tensor:
        """(B, S, d) graph embeddings of ``users`` (all when None) at every snapshot."""
        bounds = self._bounds(ctx)
        if self.sampled is None:
            z = [
                bipartite_propagate(a, b, self.user_emb.weight, items, self.num_layers, users)
                for a, b in self._blocks(ctx, items.device)
            ]
            return torch.stack(z, 1)
        B, S, u = users.numel(), bounds.numel(), self.num_users

        def node_x(ids: Tensor) -> Tensor:
            ids = ids.to(self.user_emb.weight.device)
            is_user = ids < u
            rest = item_x((ids - u).clamp(min=0))
            return torch.where(is_user[:, None], self.user_emb(ids.clamp(max=u - 1)), rest)

        seeds = users.cpu().repeat_interleave(S)
        z = self.sampled.tree(self._snap_csr(ctx), None, seeds, bounds.repeat(B), node_x, None, 0.0)
        return z.view(B, S, -1)

    def states(self, z: Tensor) -> Tensor:
        h, _ = self.gru(z)  # (B, S, d)
        return torch.cat([torch.zeros_like(h[:, :1]), h], 1)  # (B, S+1, d)

    def encode(self, ctx: GraphContext, items: Tensor) -> SnapshotStates | None:
        """Every user's states (full-graph backend); None in mini-batch mode, where they are
        computed per batch of users."""
        if self.sampled is not None:
            return None
        return SnapshotStates(
            self._bounds(ctx).to(items.device), self.states(self.embed(ctx, items, None))
        )

    def forward(
        self, ctx: GraphContext, enc: Encoded, fine: Tensor, seq: SeqBatch, users: Tensor | None,
        item_x=None,
    ) -> Tensor:  # fmt: skip
        """Gate the snapshot states into ``fine`` (B, L, d): position t reads the state of the
        snapshots whose boundary is <= its event time. Anonymous users have no snapshots."""
        if users is None:
            return self.gate(fine, torch.zeros_like(fine))
        if self.training or enc.snapshots is None:  # only the batch's users
            bounds = self._bounds(ctx).to(fine.device)
            h = self.states(self.embed(ctx, enc.items, users, item_x))
            rows = torch.arange(len(users), device=fine.device)
        else:
            bounds, h, rows = enc.snapshots.bounds, enc.snapshots.states, users
        k = torch.searchsorted(bounds, seq.time.contiguous(), right=True)  # (B, L)
        return self.gate(fine, h[rows[:, None], k])

    def __repr__(self) -> str:
        return f"SnapshotScale({self.num_snapshots} snapshots)"


class SequenceEncoder(nn.Module):
    """Per-event states over a user's events (SASRec, https://arxiv.org/abs/1808.09781, or a
    GRU, https://arxiv.org/abs/1511.06939): item + position + behavior (+ log time-gap)
    embeddings → LayerNorm → dropout → causal module (→ optional snapshot scale).

    Args:
        num_behaviors, dim, max_len: sizes (max_len positions, the most recent events kept).
        num_layers, num_heads, dropout: module settings (2, 1, 0.3).
        sequence: ``transformer`` | ``gru`` | ``none`` (cumulative mean: an order-free bag).
        time_encoding: add log time-gap embeddings (True).
        snapshots: a :class:`SnapshotScale`, or None.
    Shapes: ``states`` seq fields (B, L) → (B, L, d); ``forward`` → (B, d) at each last event.
    """

    def __init__(
        self,
        num_behaviors: int,
        dim: int = 64,
        max_len: int = 200,
        num_layers: int = 2,
        num_heads: int = 1,
        dropout: float = 0.3,
        sequence: str = "transformer",
        time_encoding: bool = True,
        snapshots: SnapshotScale | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.max_len, self.sequence = dim, max_len, sequence
        self.pos_emb = nn.Embedding(max_len, dim)
        self.beh_emb = nn.Embedding(num_behaviors + 1, dim)
        self.time_enc = TimeGapEncoding(dim) if time_encoding else None
        self.drop = nn.Dropout(dropout)
        self.in_norm = nn.LayerNorm(dim)
        if sequence == "transformer":
            self.seq: nn.Module | None = CausalTransformer(dim, num_layers, num_heads, dropout)
        elif sequence == "gru":
            self.seq = GRUSequence(dim, num_layers, dropout)
        elif sequence == "none":
            self.seq = None
        else:
            raise ValueError(
                f"unknown sequence {sequence!r}; valid: {', '.join(get_args(SequenceKind))}"
            )
        self.snapshots = snapshots
        self.reset_parameters()

    config_keys: ClassVar[tuple[str, ...]] = (
        "dim",
        "max_seq_len",
        *SequenceKeys.__dataclass_fields__,
    )

    @classmethod
    def from_config(
        cls, c: TrainConfig, shape: GraphShape, snapshots: SnapshotScale | None = None
    ) -> SequenceEncoder:
        return cls(len(shape.behaviors), c.dim, c.max_seq_len, c.num_layers, c.num_heads,
                   c.dropout, c.sequence, c.time_encoding, snapshots)  # fmt: skip

    def reset_parameters(self) -> None:
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        nn.init.normal_(self.beh_emb.weight, std=0.02)
        for m in (self.time_enc, self.in_norm, self.seq, self.snapshots):
            if m is not None:
                m.reset_parameters()

    def states(
        self, ctx: GraphContext, enc: Encoded, seq: SeqBatch, users: Tensor | None, item_x=None
    ) -> Tensor:
        """Per-position states; position t depends on events <= t only (and on snapshots
        strictly before its event time). ``seq.item`` indexes ``enc.items``."""
        items = F.pad(enc.items, (0, 0, 0, 1))  # pad row for the padding index
        pos = torch.arange(seq.item.size(1), device=seq.item.device)
        x = items[seq.item] + self.pos_emb(pos)[None] + self.beh_emb(seq.behavior)  # (B, L, d)
        if self.time_enc is not None:
            x = x + self.time_enc(seq.time, seq.mask)
        x = self.drop(self.in_norm(x)) * seq.mask[..., None]
        if self.seq is None:  # cumulative mean: an order-free bag of the history
            h = x.cumsum(1) / seq.mask.cumsum(1).clamp(min=1)[..., None]
        else:
            h = self.seq(x, seq.mask)
        if self.snapshots is None:
            return h
        return self.snapshots(ctx, enc, h, seq, users, item_x)

    def forward(
        self, ctx: GraphContext, enc: Encoded, users: Tensor | None, hist: SeqBatch, item_x=None
    ) -> Tensor:
        h = self.states(ctx, enc, hist, users, item_x)  # (B, L, d)
        return h[torch.arange(len(h), device=h.device), hist.last]

    def __repr__(self) -> str:
        snap = "+snapshots" if self.snapshots is not None else ""
        return f"SequenceEncoder({self.sequence}{snap}, dim={self.dim}, max_len={self.max_len})"


class UserTable(nn.Module):
    """Transductive user vectors from :class:`Encoded` ``users`` (mf, lightgcn). An anonymous
    history is folded in as the mean of its target items' representations (the least-squares
    user vector of an item-only model is not defined without retraining; the mean is the
    common fold-in and keeps one matmul ranking). Shapes: → (B, d)."""

    snapshots = None  # no snapshot scale
    config_keys: ClassVar[tuple[str, ...]] = ()

    def reset_parameters(self) -> None:
        pass

    def forward(
        self, ctx: GraphContext, enc: Encoded, users: Tensor | None, hist: SeqBatch, item_x=None
    ) -> Tensor:
        if users is not None:
            return enc.users[users]
        w = (hist.mask & hist.is_target).to(enc.items.dtype)  # (B, L)
        items = F.pad(enc.items, (0, 0, 0, 1))[hist.item]  # (B, L, d)
        return (w[..., None] * items).sum(1) / w.sum(1, keepdim=True).clamp(min=1)

    def __repr__(self) -> str:
        return "UserTable()"


class ConstantUser(nn.Module):
    """Every user is the same all-ones vector (pop: the score is the item's own value)."""

    snapshots = None  # no snapshot scale
    config_keys: ClassVar[tuple[str, ...]] = ()

    def reset_parameters(self) -> None:
        pass

    def forward(
        self, ctx: GraphContext, enc: Encoded, users: Tensor | None, hist: SeqBatch, item_x=None
    ) -> Tensor:
        return torch.ones(len(hist.item), enc.items.size(1), device=enc.items.device)

    def __repr__(self) -> str:
        return "ConstantUser()"
