"""Item encoder: ID embedding + item features → views → fusion, on either propagation backend.

``item = input + view_scale ⊙ fuse(view_1(input), ..., view_V(input))`` where ``input`` is the
ID embedding plus a projection of fixed item features (text), and each view propagates the
inputs over its graph (:mod:`graphseq.models.views`) with the full-graph or the sampled
backend (:mod:`graphseq.models.propagation`). ``view_scale`` starts at 0, so training starts
from the ID model and the views enter as far as they help. With no views this is the plain
item table of SASRec.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sampler import ALL_TIME
from graphseq.models.base import Encoded
from graphseq.models.propagation import FullGraph, Sampled
from graphseq.models.views import View
from graphseq.nn.features import ItemFeatures
from graphseq.nn.fusion import ViewFusion
from graphseq.nn.losses import info_nce

VIEW_SIDES = ("both", "input", "output")  # where the views enter (ItemEncoder's view_side)
VIEW_INPUTS = ("shared", "own", "detached")  # what the views propagate (view_input)


@dataclass
class ItemTable:
    """Item representations and their per-view fusion weights.
    Shapes: items (n, d); view_weights (n, V) or None."""

    items: Tensor
    view_weights: Tensor | None = None
    aux: Tensor | None = None  # a training-only loss term of the item side (view alignment)
    inputs: Tensor | None = None  # (n, d) the history table when it is not ``items``


def item_degree_z(ctx: GraphContext) -> Tensor:
    """(I,) each item's standardised ``log(1 + degree)`` over the scoring graph's visible
    events (cached per context: derived from events only)."""
    if "item_degree_z" not in ctx.cache:
        vis = ctx.visible
        deg = torch.log1p(torch.bincount(vis.item, minlength=ctx.events.num_items).double())
        ctx.cache["item_degree_z"] = ((deg - deg.mean()) / deg.std().clamp(min=1e-12)).float()
    return ctx.cache["item_degree_z"]


class ItemEncoder(nn.Module):
    """Args:
        num_items: catalogue size.  dim: embedding size.
        views: the item views (:func:`graphseq.models.views.parse_views`); () for none.
        extra: rows of each extra node table the views need (``user``/``tag``/``entity``).
        backend: a :class:`FullGraph` or :class:`Sampled` propagation (None without views).
        fusion: ``attention`` | ``mean`` | ``concat``.
        item_features: optional (I, F) fixed item features, kept as a buffer.
        id_dropout: with features, the share of IDs dropped per training step (0.0).
        align: weight of an InfoNCE term, while training, between the ID inputs and the fused
            views of ``align_items`` random items (0: off): the views as a regulariser of
            the ID table (the cross-view contrast of SGL / CML), full-graph backend only.
        align_temp: its temperature.
        view_side: where the views enter: ``both`` (the history's table and the scored
            items'), ``input`` (the history only; items are scored by their ID inputs) or
            ``output`` (the scored items only).
        view_input: what the views propagate: ``shared`` (the ID inputs), ``own`` (an item
            table of the views' own) or ``detached`` (the ID inputs, no gradient through the
            views); the last two full-graph only.
        view_dropout: share of items whose views are dropped at each training step.
        view_gate: scale each item's views by ``2σ(a + b·z)``, ``z`` its standardised log
            degree in the scoring graph, ``a`` and ``b`` learned from 0 (full-graph only).

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
        id_dropout: float = 0.0,
        align: float = 0.0,
        align_temp: float = 0.2,
        align_items: int = 1024,
        view_side: str = "both",
        view_input: str = "shared",
        view_dropout: float = 0.0,
        view_gate: bool = False,
    ) -> None:
        super().__init__()
        self.num_items, self.dim, self.views = num_items, dim, list(views)
        if self.views and backend is None:
            raise ValueError("views need a propagation backend")
        self.id_emb = nn.Embedding(num_items, dim)
        self.extra = nn.ModuleDict({k: nn.Embedding(n, dim) for k, n in (extra or {}).items()})
        self.backend = backend if self.views else None
        self.fusion = ViewFusion(dim, len(self.views), fusion) if self.views else None
        self.view_scale = nn.Parameter(torch.zeros(dim)) if self.views else None
        self.id_dropout = id_dropout
        if align < 0 or align_temp <= 0:
            raise ValueError(f"view alignment needs weight >= 0 and temperature > 0, got "
                             f"{align}, {align_temp}")  # fmt: skip
        self.align, self.align_temp, self.align_items = align, align_temp, align_items
        for key, value, valid in (("view_side", view_side, VIEW_SIDES),
                                  ("view_input", view_input, VIEW_INPUTS)):  # fmt: skip
            if value not in valid:
                raise ValueError(f"unknown {key} {value!r}; valid: {', '.join(valid)}")
        full_only = [name for name, on in (("view alignment", bool(align)),
                                           (f"view_side={view_side}", view_side != "both"),
                                           (f"view_input={view_input}", view_input != "shared"),
                                           ("view_gate", view_gate))
                     if on]  # fmt: skip
        if full_only and (not self.views or isinstance(backend, Sampled)):
            raise ValueError(f"{full_only[0]} needs views on the full-graph backend")
        self.view_side, self.view_input = view_side, view_input
        if not 0 <= view_dropout < 1:
            raise ValueError(f"view_dropout must be in [0, 1), got {view_dropout}")
        self.view_dropout = view_dropout
        self.view_emb = nn.Embedding(num_items, dim) if view_input == "own" else None
        self.gate = nn.Parameter(torch.zeros(2)) if view_gate else None  # (a, b)
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

    @property
    def sampled(self) -> bool:
        return isinstance(self.backend, Sampled)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.id_emb.weight, std=0.02)
        own = [] if self.view_emb is None else [self.view_emb]
        for emb in [*self.extra.values(), *own]:
            nn.init.normal_(emb.weight, std=0.02)
        for p in (self.view_scale, self.gate):
            if p is not None:
                nn.init.zeros_(p)
        for m in (self.fusion, self.backend, self.feat):
            if m is not None and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def set_trained_items(self, mask: Tensor) -> None:
        """Mark the items with training events (the rest get no ID embedding at scoring).
        Shapes: mask (I,) bool."""
        if self.feat is not None:
            self.trained_items.copy_(mask.to(self.trained_items.device))

    def input(self, ids: Tensor | None = None, table: nn.Embedding | None = None) -> Tensor:
        """(n, d) layer-0 item inputs: ID embedding (+ projected features) of ``ids`` (all
        items when None). ``table``: the ID table to read (the views' own one with
        ``view_input=own``; cold items get no row of it either)."""
        table = self.id_emb if table is None else table
        dev = table.weight.device
        ids = None if ids is None else ids.to(dev)
        x = table.weight if ids is None else table(ids)
        if self.feat is None:
            return x
        n = self.num_items if ids is None else ids.numel()
        if self.training and self.id_dropout > 0:
            keep = torch.rand(n, device=dev) >= self.id_dropout
        else:
            keep = None if self.training else self.trained_items
            keep = keep if keep is None or ids is None else keep[ids]
        if keep is not None:
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

    def _full_view(self, ctx: GraphContext, k: int, view: View, x: Tensor, users: Tensor | None):
        parts = [x]
        if view.extra is not None:
            n = {"user": ctx.events.num_users, "tag": ctx.side.num_tags}.get(
                view.extra, ctx.side.num_entities
            )
            parts.append(self.extra[view.extra].weight[:n])
        return self.backend(ctx, k, view, torch.cat(parts), users)[: self.num_items]

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
            vx = x if self.view_emb is None else self.input(table=self.view_emb)  # propagated
            vx = vx.detach() if self.view_input == "detached" else vx
            xs = [self._full_view(ctx, k, v, vx, batch_users) for k, v in enumerate(self.views)]
            fused, w = self.fusion(torch.stack(xs))
            viewed = x + self.view_scale * self._gated(ctx, self._drop_views(fused))
            out = self._sides(x, viewed, w, self._align(x, fused))
            if items is None:
                return out
            idx = items.to(x.device)
            inp = None if out.inputs is None else out.inputs[idx]
            return ItemTable(out.items[idx], None if w is None else w[idx], out.aux, inp)
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

    def _sides(self, x: Tensor, viewed: Tensor, w: Tensor | None, aux: Tensor | None) -> ItemTable:
        """The scored table and the history's, as ``view_side`` places the views."""
        if self.view_side == "both":
            return ItemTable(viewed, w, aux)
        if self.view_side == "input":
            return ItemTable(x, w, aux, viewed)
        return ItemTable(viewed, w, aux, x)

    def _align(self, x: Tensor, fused: Tensor) -> Tensor | None:
        """The weighted ID–views InfoNCE over random items while training, else None."""
        if not (self.training and self.align):
            return None
        idx = torch.randperm(self.num_items, device=x.device)[: self.align_items]
        return self.align * info_nce(x[idx], fused[idx], self.align_temp)

    def _sampled(
        self, ctx: GraphContext, items: Tensor, time: Tensor, batch_users: Tensor | None
    ) -> ItemTable:
        base = self.input(items)  # (n, d)
        xs = [
            self.backend(ctx, k, v, items, time, lambda ids, v=v: self.node_x(v, ids), batch_users)
            for k, v in enumerate(self.views)
        ]
        fused, w = self.fusion(torch.stack(xs))
        return ItemTable(base + self.view_scale * self._drop_views(fused), w)

    def _drop_views(self, fused: Tensor) -> Tensor:
        """While training, each item's views are dropped with probability ``view_dropout``
        (the rest scaled by 1 / (1 − p)), so the ID path must also rank alone."""
        if not (self.training and self.view_dropout > 0):
            return fused
        keep = torch.rand(fused.size(0), 1, device=fused.device) >= self.view_dropout
        return fused * keep.to(fused.dtype) / (1 - self.view_dropout)

    def _gated(self, ctx: GraphContext, fused: Tensor) -> Tensor:
        """``fused`` (I, d) scaled per item by ``2σ(a + b·z)`` (``view_gate``; else as is)."""
        if self.gate is None:
            return fused
        z = item_degree_z(ctx).to(fused.device)
        return fused * (2 * torch.sigmoid(self.gate[0] + self.gate[1] * z))[:, None]

    def encode(self, ctx: GraphContext) -> Encoded:
        table = self(ctx)
        return Encoded(items=table.items, view_weights=table.view_weights, inputs=table.inputs)

    def __repr__(self) -> str:
        text = f", text={self.feat.proj.in_features}" if self.feat is not None else ""
        views = ",".join(v.name for v in self.views) or "none"
        return f"ItemEncoder({self.num_items}i, dim={self.dim}, views={views}{text})"
