"""Model registry: the one place where a config becomes constructor arguments."""

from __future__ import annotations

from collections.abc import Callable

from data_builders.errors import DataError
from graphseq.config import TrainConfig
from graphseq.graph.context import ItemSide
from graphseq.models.base import Recommender
from graphseq.models.graphseq import GraphSeq
from graphseq.models.mf import MF, LightGCN
from graphseq.models.minibatch import MiniBatchGraphSeq
from graphseq.models.pop import Pop
from graphseq.models.sasrec import SASRec

NO_FEATURES = ("pop", "mf", "lightgcn")  # built-in models without an item-feature input
Builder = Callable[[TrainConfig, int, int, int, ItemSide], Recommender]


def _seq_kwargs(c: TrainConfig) -> dict:
    return dict(
        dim=c.dim,
        max_len=c.max_seq_len,
        num_layers=c.num_layers,
        num_heads=c.num_heads,
        dropout=c.dropout,
        sequence=c.sequence,
        time_encoding=c.time_encoding,
        loss=c.loss,
        num_negatives=c.num_negatives,
        head=c.head,
        train_exclude_seen=c.train_exclude_seen and c.exclude_seen,
    )


def _feature_kwargs(c: TrainConfig, s: ItemSide) -> dict:
    return dict(item_features=s.item_features, id_dropout=c.item_id_dropout)


def _graphseq(c: TrainConfig, u: int, i: int, b: int, s: ItemSide) -> Recommender:
    kwargs = dict(
        views=c.views,
        num_tags=s.num_tags,
        num_entities=s.num_entities,
        gnn_layers=c.gnn_layers,
        fusion=c.fusion,
        edge_dropout=c.edge_dropout,
        coarse=c.coarse,
        num_snapshots=c.num_snapshots,
        item_graph=c.item_graph,
        item_graph_reg=c.item_graph_reg,
        item_graph_max_items=c.item_graph_max_items,
        **_seq_kwargs(c),
        **_feature_kwargs(c, s),
    )
    if c.minibatch:
        return MiniBatchGraphSeq(u, i, b, fanouts=c.fanouts, negatives=c.negatives, **kwargs)
    return GraphSeq(u, i, b, **kwargs)


MODELS: dict[str, Builder] = {
    "pop": lambda c, u, i, b, s: Pop(u, i),
    "mf": lambda c, u, i, b, s: MF(u, i, c.dim),
    "lightgcn": lambda c, u, i, b, s: LightGCN(u, i, c.dim, c.gnn_layers, edge_dropout=0.0),
    "sasrec": lambda c, u, i, b, s: SASRec(u, i, b, **_seq_kwargs(c), **_feature_kwargs(c, s)),
    "graphseq": _graphseq,
}


def build_model(
    cfg: TrainConfig, num_users: int, num_items: int, num_behaviors: int, side: ItemSide
) -> Recommender:
    """Instantiate ``cfg.model``; an unknown name lists the valid ones."""
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; valid: {', '.join(MODELS)}")
    if cfg.minibatch and cfg.model != "graphseq":
        raise ValueError(f"minibatch=true applies to graphseq only, not {cfg.model!r}")
    if side.item_features is not None and cfg.model in NO_FEATURES:
        raise DataError(
            f"model {cfg.model!r} does not use item features (item_text={cfg.item_text!r})",
            hint="use sasrec or graphseq, or leave item_text empty",
        )
    return MODELS[cfg.model](cfg, num_users, num_items, num_behaviors, side)


def register_model(name: str, builder: Builder) -> None:
    """Add a model under ``name`` (for users' own models)."""
    MODELS[name] = builder
