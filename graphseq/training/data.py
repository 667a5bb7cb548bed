"""The graph a run trains and evaluates on: :func:`graphseq.graph.data.open_graph` with the
run's split, and its item text features when the config asks for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphseq.graph.data import GraphData, open_graph

if TYPE_CHECKING:
    from graphseq.config import TrainConfig


def open_run_graph(cfg: TrainConfig) -> GraphData:
    """Open ``cfg.graph`` split as ``cfg.split`` asks (checked before any run file is
    written); with ``item_text``, the items' text embeddings join the item side."""
    data = open_graph(cfg.graph, cfg.split, tuple(cfg.global_time_quantiles))
    if cfg.item_text:
        from graphseq.text import item_text_features

        data.side.item_features = item_text_features(data.path, cfg.item_text, cfg.item_text_model)
    return data
