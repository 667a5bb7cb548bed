"""What a run trains and evaluates on, loaded and checked once, before any run file is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data_builders.errors import DataError
from data_builders.store import StoredGraph, load_id_maps, read_graph
from graphseq.config import TrainConfig
from graphseq.graph.context import ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.splits import Split, make_split
from graphseq.models.registry import GraphShape


@dataclass
class TrainData:
    """A graph directory's id maps, event table, split and item side graphs (``ev`` and
    ``side`` hold what training reads; the stored edge tensors are not kept)."""

    path: Path
    fingerprint: str
    id_maps: dict[str, pd.Index]
    ev: EventTable
    split: Split
    side: ItemSide

    @property
    def shape(self) -> GraphShape:
        return GraphShape.of(self.ev, self.side)


def check_id_maps(path: Path, graph: StoredGraph, id_maps: dict[str, pd.Index]) -> None:
    """Every node type of the graph has an id map of its size (so outputs decode to raw ids)."""
    for nt in graph.node_types:
        if nt not in id_maps:
            raise DataError(
                "missing file in graph directory", file=path / "ids" / f"{nt}.parquet",
                hint="rebuild it with `graphseq build`",
            )  # fmt: skip
        if len(id_maps[nt]) != graph[nt].num_nodes:
            raise DataError(
                f"{len(id_maps[nt])} ids for {graph[nt].num_nodes} {nt} nodes",
                file=path / "ids" / f"{nt}.parquet", hint="rebuild it with `graphseq build`",
            )  # fmt: skip


def check_split(split: Split, ev: EventTable, method: str) -> None:
    """Refuse a split that leaves nothing to validate or test on (before training starts)."""
    n_valid, n_test = len(split.targets["valid"]), len(split.targets["test"])
    if n_valid and n_test:
        return
    n_targets = int(ev.is_target.sum())
    if method == "leave_last_out":
        why = "no user has 3 or more target events (one to train, one to validate, one to test)"
        hint = "use --set split=global_time, or name more target behaviors in the schema"
    else:
        why = f"the split leaves {n_valid} validation and {n_test} test targets"
        hint = "use --set split=leave_last_out or other global_time_quantiles"
    raise DataError(f"{why}; {ev.num_users} users, {n_targets} target events", hint=hint)


def load_train_data(cfg: TrainConfig) -> TrainData:
    """Load and check the graph directory ``cfg.graph`` and split it as ``cfg.split`` asks."""
    from graphseq.text import item_text_features

    path = Path(cfg.graph)
    graph = read_graph(path)  # the stored tensors, without importing PyG (~1.5 s)
    id_maps = load_id_maps(path)
    check_id_maps(path, graph, id_maps)
    ev = EventTable.from_graph(graph)
    side = ItemSide.from_graph(graph)
    fingerprint = graph.fingerprint
    del graph
    split = make_split(ev, cfg.split, quantiles=tuple(cfg.global_time_quantiles))
    check_split(split, ev, cfg.split)
    if cfg.item_text:
        side.item_features = item_text_features(path, cfg.item_text, cfg.item_text_model)
    return TrainData(path.resolve(), fingerprint, id_maps, ev, split, side)
