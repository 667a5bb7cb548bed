"""``minibatch=auto``: full-graph or mini-batch training, chosen from what a step would cost.

A full-graph step propagates every user-derived view (``cooc``, ``behavior``) over the whole
training graph, and the snapshot scale propagates the user–item graph once more, so its cost
grows with the training events and an epoch (users / batch steps) grows as events²; a
mini-batch step costs the same at any size. ``auto`` picks mini-batch above
:data:`AUTO_MINIBATCH_EDGES` propagated edges per step, where the measured full-graph epoch
costs ≥ 2.5× the mini-batch one (docs: "Several processes or machines", cost growth).

When ``auto`` picks mini-batch it also picks an objective that scales
(:func:`scalable_objective`): a mini-batch step encodes, through sampled neighbourhoods, every
item its loss scores, so the full softmax (the whole catalogue) or per-sequence negatives
(nearly the whole catalogue at batch 128 × 256) cost the full-catalogue encoding every step.
``auto`` therefore trains mini-batch runs with ``loss=sampled`` and ``share_negatives=true``,
and says so. The own-history pointer trains through the sampled loss too (its terms land on
the scored items, :func:`graphseq.nn.losses.sampled_terms`). ``minibatch=true`` keeps the
configured objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    views: tuple[str, ...], snapshots: bool, behaviors: tuple[str, ...], events: tuple[int, ...]
) -> int:
    """Edges one full-graph step propagates over the user-derived views (``cooc``/``behavior``
    over all events or one behavior's) plus the snapshot scale's user–item graph; the item
    side graphs (tags, KG) do not grow with the log and are left out.
    Shapes: ``events`` one training-event count per behavior."""
    total = sum(events)
    per = dict(zip(behaviors, events))
    edges = total if snapshots else 0
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
    edges = full_graph_edges(cfg.views, cfg.snapshot_scale, behaviors, events)
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


def scalable_objective(
    cfg: TrainConfig, behaviors: tuple[str, ...] = (), targets: tuple[str, ...] = ()
) -> tuple[TrainConfig, str]:
    """``cfg`` with an objective whose mini-batch step encodes only the batch's items plus one
    shared negative set (``loss=sampled`` for ``ce``; ``share_negatives=true``), and a note of
    what changed ("" when nothing did). Called when ``minibatch=auto`` chose mini-batch. The
    own-history pointer, when the graph has a non-target behavior for it (``behaviors`` not
    in ``targets``), stays and trains through the sampled loss; the note says so."""
    changes: dict[str, Any] = {}
    if cfg.loss == "ce":
        changes["loss"] = "sampled"
    if cfg.loss == "sampled" or "loss" in changes:
        if not cfg.share_negatives:
            changes["share_negatives"] = True
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
