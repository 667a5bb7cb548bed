"""``minibatch=auto``: full-graph or mini-batch training, chosen from what a step would cost.

A full-graph step propagates every user-derived view (``cooc``, ``behavior``) over the whole
training graph, and the snapshot scale propagates the user–item graph once more, so its cost
grows with the training events and an epoch (users / batch steps) grows as events²; a
mini-batch step costs the same at any size. Measured on one thread (README "Cost growth",
synthetic logs, default views + snapshot scale, ``loss=sampled``): a full-graph epoch takes
109 s at 1M events, 1,073 s at 4M and 21,710 s at 16M; a mini-batch epoch 61, 264 and
1,301 s. The full/mini-batch ratio grows from 1.8× at 1M to 4.1× at 4M events (as
events^0.6); it passes 2.5× near 2M training events, which under the default views is
:data:`AUTO_MINIBATCH_EDGES` = 4M propagated edges per step (2M events × (1 view + the
snapshot scale)). Below that the full-graph default (validated on MovieLens, Tmall and a
1M-event ML-1M-shaped log) is kept; above it the epoch would cost ≥ 2.5× and soon ≥ 10×.

When ``auto`` picks mini-batch it also picks an objective that scales
(:func:`scalable_objective`): a mini-batch step encodes, through sampled neighbourhoods, every
item its loss scores, so the full softmax (``ce``: the whole catalogue) or per-sequence
negatives (nearly the whole catalogue at batch 128 × 256) cost the full-catalogue encoding
every step. Measured back to back on a 10M-event synthetic log (50k items, one thread,
``benchmarks/scaling.py``): 8.12 s per step with per-sequence negatives, 0.87 s with one
negative set per batch (9.4×). ``auto`` therefore trains mini-batch runs with
``loss=sampled`` (or the configured ``gbce``) and ``share_negatives=true``, and says so. The
own-history pointer trains through the sampled losses too (its terms land on the scored
items, :func:`graphseq.nn.losses.sampled_terms`); only the trained item-graph scale needs the
full softmax, and ``ce`` is then kept with a note. ``minibatch=true`` keeps the configured
objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphseq.config import TrainConfig

AUTO_MINIBATCH_EDGES = 4_000_000  # edges one full-graph step propagates; above: mini-batch


@dataclass(frozen=True)
class ModeChoice:
    """Which backend a run trains with, and why."""

    minibatch: bool
    setting: str  # the config's value: auto | true | false
    edges: int  # edges one full-graph step would propagate (see full_graph_edges)
    reason: str
    objective: str = ""  # what auto changed in the objective (scalable_objective), or ""

    @property
    def mode(self) -> str:
        return "mini-batch" if self.minibatch else "full-graph"

    def as_dict(self) -> dict[str, Any]:
        out = {"mode": self.mode, "setting": self.setting, "full_graph_edges": self.edges,
               "threshold": AUTO_MINIBATCH_EDGES, "reason": self.reason}  # fmt: skip
        if self.objective:
            out["objective"] = self.objective
        return out


def full_graph_edges(
    views: tuple[str, ...], coarse: bool, behaviors: tuple[str, ...], events: tuple[int, ...]
) -> int:
    """Edges one full-graph step propagates over the user-derived views (``cooc``/``behavior``
    over all events or one behavior's) plus the snapshot scale's user–item graph; the item
    side graphs (tags, KG) do not grow with the log and are left out.
    Shapes: ``events`` one training-event count per behavior."""
    total = sum(events)
    per = dict(zip(behaviors, events))
    edges = total if coarse else 0
    for name in views:
        kind, _, beh = name.partition(":")
        if kind not in ("cooc", "behavior"):
            continue
        if beh == "*":
            edges += total
        else:
            edges += per.get(beh, 0) if beh else total
    return int(edges)


def choose_mode(
    cfg: TrainConfig, behaviors: tuple[str, ...], events: tuple[int, ...]
) -> ModeChoice:
    """The backend ``cfg`` trains with on a graph with ``events`` training events per behavior:
    ``minibatch=true|false`` as set; ``auto``: mini-batch above :data:`AUTO_MINIBATCH_EDGES`
    propagated edges per full-graph step (graphseq only; other models have no views)."""
    edges = full_graph_edges(cfg.views, cfg.coarse, behaviors, events)
    setting = cfg.minibatch if isinstance(cfg.minibatch, str) else str(cfg.minibatch).lower()
    if cfg.model != "graphseq":
        return ModeChoice(False, setting, edges, f"{cfg.model} has no graph views")
    if setting != "auto":
        return ModeChoice(
            cfg.minibatch is True, setting, edges, f"minibatch={setting} in the config"
        )
    big = edges > AUTO_MINIBATCH_EDGES
    reason = (f"minibatch=auto: a full-graph step would propagate {edges:,} user-derived view "
              f"edges ({sum(events):,} training events), {'above' if big else 'within'} "
              f"{AUTO_MINIBATCH_EDGES:,}")  # fmt: skip
    return ModeChoice(big, setting, edges, reason)


def resolve_minibatch(
    cfg: TrainConfig, behaviors: tuple[str, ...], events: tuple[int, ...]
) -> TrainConfig:
    """``cfg`` with ``minibatch`` a bool (``auto`` decided by :func:`choose_mode`)."""
    if cfg.minibatch != "auto":
        return cfg
    return cfg.replace(minibatch=choose_mode(cfg, behaviors, events).minibatch)


def full_softmax_part(cfg: TrainConfig) -> str:
    """The part of a graphseq model that trains only through the full softmax
    (``graphseq/models/registry.py`` refuses it under a sampled loss), or "": the trained
    item–item scale. (The own-history pointer trains through every softmax.)"""
    if cfg.item_graph is not False and cfg.item_graph_mode == "trained":
        return "the trained item-graph scale"
    return ""


def scalable_objective(
    cfg: TrainConfig, behaviors: tuple[str, ...] = (), targets: tuple[str, ...] = ()
) -> tuple[TrainConfig, str]:
    """``cfg`` with an objective whose mini-batch step encodes only the batch's items plus one
    shared negative set (``loss=sampled`` for ``ce``; ``share_negatives=true``), and a note of
    what changed or why not ("" when there is nothing to say). Called when ``minibatch=auto``
    chose mini-batch. ``ce`` is kept when a part of the model needs it
    (:func:`full_softmax_part`). The own-history pointer, when the graph has a non-target
    behavior for it (``behaviors`` not in ``targets``), stays and trains through the sampled
    loss; the note says so."""
    changes: dict[str, Any] = {}
    keep = full_softmax_part(cfg) if cfg.loss == "ce" else ""
    if cfg.loss == "ce" and not keep:
        changes["loss"] = "sampled"
    if cfg.loss in ("sampled", "gbce") or "loss" in changes:
        if not cfg.share_negatives:
            changes["share_negatives"] = True
    if keep:
        return cfg, (f"kept loss=ce: {keep} trains only through the full softmax; "
                     "a mini-batch step then encodes the whole catalogue")  # fmt: skip
    if not changes:
        return cfg, ""
    said = " ".join(f"{k}={str(v).lower()}" for k, v in changes.items())
    what = ("ce scores the whole catalogue" if cfg.loss == "ce" else
            f"per-sequence negatives add up to {cfg.batch_size * cfg.num_negatives:,} items")  # fmt: skip
    others = [b for b in behaviors if b not in targets]
    pointer = cfg.own_history is not False and bool(others)
    also = (f"; the own-history pointer (earlier {', '.join(others)}) trains through it"
            if pointer and "loss" in changes else "")  # fmt: skip
    note = (f"{said}: a mini-batch step encodes every item its loss scores, and {what}{also}; "
            "set minibatch=true to keep the configured objective")  # fmt: skip
    return cfg.replace(**changes), note
