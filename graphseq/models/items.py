"""Item encoder: ID embedding + item features → views → fusion, on either propagation backend.

``item = input + view_gain ⊙ fuse(view_1(input), ..., view_V(input))`` where ``input`` is the
ID embedding plus a projection of fixed item features (text), and each view propagates the
inputs over its graph (:mod:`graphseq.models.views`) with the full-graph or the sampled
backend (:mod:`graphseq.models.propagation`). ``view_gain`` starts at 0, so training starts
from the ID model and the views enter as far as they help. With no views this is the plain
item table of SASRec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sampler import ALL_TIME
from graphseq.graph.shape import GraphShape
from graphseq.keys import key, pick
from graphseq.models.base import Encoded
from graphseq.models.propagation import FullGraph, Sampled
from graphseq.models.views import View, extra_sizes, parse_views, view_problem
from graphseq.nn.features import ItemFeatures
from graphseq.nn.fusion import ViewFusion

if TYPE_CHECKING:
    from graphseq.config import TrainConfig


@dataclass(frozen=True)
class ItemKeys:
    """Config keys of the item encoder (views: graphseq; item text: sasrec, graphseq)."""

    views: tuple[str, ...] = key(
        ("cooc", "tag", "kg"), "item views, KIND or KIND:<behavior> with KIND in cooc | tag | "
        "kg | behavior; views the graph lacks (no tags, no KG) are not built", check=view_problem,
        space=pick("cooc,tag,kg", "cooc,tag", "tag", "cooc"),
    )  # fmt: skip
    fusion: Literal["attention", "mean", "concat"] = key(
        "attention", "how the views are combined per item", space=pick("attention", "mean")
    )
    item_text: str = key("", "item text column(s) embedded as item features, e.g. title ('' = "
                         "off)", fixed=True)  # fmt: skip
    item_text_model: str = key("all-MiniLM-L6-v2", "sentence encoder of item_text "
                               "(graphseq.text.TEXT_ENCODERS)", fixed=True)  # fmt: skip


@dataclass
class ItemTable:
    """Item representations and their per-view fusion weights.
    Shapes: items (n, d); view_weights (n, V) or None."""

    items: Tensor
    view_weights: Tensor | None = None


class ItemEncoder(nn.Module):
    """Args:
        num_items: catalogue size.  dim: embedding size.
        views: the item views (:func:`graphseq.models.views.parse_views`); () for none.
        extra: rows of each extra node table the views need (``user``/``tag``/``entity``).
        backend: a :class:`FullGraph` or :class:`Sampled` propagation (None without views).
        fusion: ``attention`` | ``mean`` | ``concat``.
        item_features: optional (I, F) fixed item features, kept as a buffer.

    Cold items: with item features, the ID embedding of every item outside ``trained_items``
    (set by :meth:`set_trained_items`) is zeroed when not training, so such items are scored
    by their features alone (chosen on the cold validation targets of ML-100K).
    Shapes: ``forward`` → :class:`ItemTable` of all items, or of ``items`` (n,).
    """

    def __init__(
        self,
        num_items: int,
        dim: int,
        views: list[View] | tuple[View, ...] = (),
        extra: dict[str, int] | None = None,
        backend: FullGraph | Sampled | None = None,
        fusion: str = "attention",
        item_features: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.num_items, self.dim, self.views = num_items, dim, list(views)
        if self.views and backend is None:
            raise ValueError("views need a propagation backend")
        self.id_emb = nn.Embedding(num_items, dim)
        self.extra = nn.ModuleDict({k: nn.Embedding(n, dim) for k, n in (extra or {}).items()})
        self.backend = backend if self.views else None
        self.fusion = ViewFusion(dim, len(self.views), fusion) if self.views else None
        self.view_gain = nn.Parameter(torch.zeros(dim)) if self.views else None
        self.feat: ItemFeatures | None = None
        if item_features is not None:
            if item_features.dim() != 2 or item_features.size(0) != num_items:
                raise ValueError(
                    f"item_features must be ({num_items}, F), got {tuple(item_features.shape)}"
                )
            feats = item_features.float()
            self.register_buffer("item_features", feats.clone())  # (I, F)
            self.register_buffer("feature_mean", feats.mean(0))  # (F,) centring
            self.register_buffer("trained_items", torch.ones(num_items, dtype=torch.bool))
            self.feat = ItemFeatures(feats.size(1), dim)
        self.reset_parameters()

    has_item_vectors = True  # items have embeddings to compare (similar items)
    config_keys: ClassVar[tuple[str, ...]] = ("dim", "item_text", "item_text_model")
    graph_keys: ClassVar[tuple[str, ...]] = ("views", "fusion", "gnn_layers", "edge_dropout",
                                             "minibatch", "fanouts", "eval_chunk",
                                             "sparse_min_rows")  # fmt: skip

    @classmethod
    def from_config(cls, c: TrainConfig, shape: GraphShape, views: bool = False) -> ItemEncoder:
        """The item side of a sequence model: the ID table (+ item text features), and with
        ``views`` the item views of ``c.views`` on the full-graph or sampled backend."""
        if not views:
            return cls(shape.num_items, c.dim, item_features=shape.side.item_features)
        found, _ = parse_views(c.views, list(shape.behaviors), shape.side)
        if c.minibatch:
            if len(c.fanouts) != c.gnn_layers:
                raise ValueError(
                    f"fanouts {c.fanouts} need one entry per gnn layer ({c.gnn_layers})"
                )
            backend: FullGraph | Sampled = Sampled(c.fanouts, c.edge_dropout, c.eval_chunk)
        else:
            backend = FullGraph(c.gnn_layers, c.edge_dropout)
        extra = extra_sizes(found, shape.num_users, shape.side)
        return cls(shape.num_items, c.dim, found, extra, backend, c.fusion,
                   shape.side.item_features)  # fmt: skip

    @property
    def sampled(self) -> bool:
        return isinstance(self.backend, Sampled)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.id_emb.weight, std=0.02)
        for emb in self.extra.values():
            nn.init.normal_(emb.weight, std=0.02)
        if self.view_gain is not None:
            nn.init.zeros_(self.view_gain)
        for m in (self.fusion, self.feat):
            if m is not None:
                m.reset_parameters()

    def set_trained_items(self, mask: Tensor) -> None:
        """Mark the items with training events (the rest get no ID embedding at scoring).
        Shapes: mask (I,) bool."""
        if self.feat is not None:
            self.trained_items.copy_(mask.to(self.trained_items.device))

    def input(self, ids: Tensor | None = None) -> Tensor:
        """(n, d) layer-0 item inputs: ID embedding (+ projected features) of ``ids`` (all
        items when None); cold items get no ID row when not training."""
        dev = self.id_emb.weight.device
        ids = None if ids is None else ids.to(dev)
        x = self.id_emb.weight if ids is None else self.id_emb(ids)
        if self.feat is None:
            return x
        if not self.training:
            keep = self.trained_items if ids is None else self.trained_items[ids]
            x = x * keep[:, None].to(x.dtype)
        f = self.item_features if ids is None else self.item_features[ids]
        return x + self.feat.proj(f - self.feature_mean)  # (n, d)

    def node_x(self, view: View, ids: Tensor) -> Tensor:
        """(N, d) layer-0 features of nodes ``ids`` of ``view``'s space (items first)."""
        ids = ids.to(self.id_emb.weight.device)
        if view.extra is None:
            return self.input(ids)
        is_item = ids < self.num_items
        rest = self.extra[view.extra]((ids - self.num_items).clamp(min=0))
        return torch.where(is_item[:, None], self.input(ids.clamp(max=self.num_items - 1)), rest)

    def _full_view(self, ctx: GraphContext, view: View, x: Tensor, users: Tensor | None) -> Tensor:
        parts = [x]
        if view.extra is not None:
            n = {"user": ctx.events.num_users, "tag": ctx.side.num_tags}.get(
                view.extra, ctx.side.num_entities
            )
            parts.append(self.extra[view.extra].weight[:n])
        return self.backend(ctx, view, torch.cat(parts), users)[: self.num_items]

    def forward(
        self,
        ctx: GraphContext,
        batch_users: Tensor | None = None,
        items: Tensor | None = None,
        time: Tensor | None = None,
    ) -> ItemTable:
        """Representations of ``items`` (n,) seen from edges before ``time`` (sampled backend;
        all items and every edge when None). ``batch_users``: the users being trained on,
        whose own edges every user-derived view leaves out."""
        if not self.views:
            return ItemTable(self.input(items))
        if not self.sampled:
            x = self.input()  # (I, d)
            xs = [self._full_view(ctx, v, x, batch_users) for v in self.views]
            fused, w = self.fusion(torch.stack(xs))
            out = x + self.view_gain * fused
            if items is None:
                return ItemTable(out, w)
            idx = items.to(x.device)
            return ItemTable(out[idx], None if w is None else w[idx])
        if items is None:  # score the whole catalogue, chunk by chunk, over every edge
            parts = [
                self._sampled(ctx, c, torch.full_like(c, ALL_TIME), None)
                for c in torch.arange(self.num_items).split(self.backend.eval_chunk)
            ]
            w = [p.view_weights for p in parts]
            return ItemTable(
                torch.cat([p.items for p in parts]), None if w[0] is None else torch.cat(w)
            )
        return self._sampled(ctx, items.cpu(), time.cpu(), batch_users)

    def _sampled(
        self, ctx: GraphContext, items: Tensor, time: Tensor, batch_users: Tensor | None
    ) -> ItemTable:
        base = self.input(items)  # (n, d)
        xs = [
            self.backend(ctx, v, items, time, lambda ids, v=v: self.node_x(v, ids), batch_users)
            for v in self.views
        ]
        fused, w = self.fusion(torch.stack(xs))
        return ItemTable(base + self.view_gain * fused, w)

    def encode(self, ctx: GraphContext) -> Encoded:
        table = self(ctx)
        return Encoded(items=table.items, view_weights=table.view_weights)

    def __repr__(self) -> str:
        text = f", text={self.feat.proj.in_features}" if self.feat is not None else ""
        views = ",".join(v.name for v in self.views) or "none"
        return f"ItemEncoder({self.num_items}i, dim={self.dim}, views={views}{text})"
