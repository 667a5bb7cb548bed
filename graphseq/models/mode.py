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

    @property
    def mode(self) -> str:
        return "mini-batch" if self.minibatch else "full-graph"

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "setting": self.setting, "full_graph_edges": self.edges,
                "threshold": AUTO_MINIBATCH_EDGES, "reason": self.reason}  # fmt: skip


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
