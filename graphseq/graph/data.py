"""One way to open a graph directory: ``open_graph(dir) → GraphData`` (events, item side,
shape, split, id maps), for training, tuning, recommending, serving and benchmarks alike."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data_builders.errors import DataError
from data_builders.store import StoredGraph, load_id_maps, read_graph
from graphseq.graph.context import ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.shape import GraphShape
from graphseq.graph.splits import Split, make_split


@dataclass
class GraphData:
    """A graph directory, read and checked once: its ``events``, item ``side`` graphs, the
    ``split`` it was opened with, raw-id maps ``ids`` and ``fingerprint`` (the stored edge
    tensors themselves are not kept)."""

    path: Path
    fingerprint: str
    ids: dict[str, pd.Index]
    events: EventTable
    side: ItemSide
    split: Split
    split_method: str
    id_dtypes: dict[str, str] = field(default_factory=dict)  # node type -> "int64" for integer
    # raw ids (a log read from a DataFrame with integer ids); other ids are strings

    @property
    def shape(self) -> GraphShape:
        """The whole graph's shape."""
        return GraphShape.of(self.events, self.side)

    @property
    def train_shape(self) -> GraphShape:
        """The shape with the training graph's events per behavior (what a model trains on)."""
        return GraphShape.of(self.events, self.side, self.split.graph_mask("train"))


def check_id_maps(path: Path, graph: StoredGraph, ids: dict[str, pd.Index]) -> None:
    """Every node type of the graph has an id map of its size (so outputs decode to raw ids)."""
    for nt in graph.node_types:
        if nt not in ids:
            raise DataError(
                "missing file in graph directory", file=path / "ids" / f"{nt}.parquet",
                hint="rebuild it with `graphseq build`",
            )  # fmt: skip
        if len(ids[nt]) != graph[nt].num_nodes:
            raise DataError(
                f"{len(ids[nt])} ids for {graph[nt].num_nodes} {nt} nodes",
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


def open_graph(
    path: str | Path,
    split: str = "leave_last_out",
    quantiles: tuple[float, float] = (0.8, 0.9),
    require_targets: bool = True,
) -> GraphData:
    """Read the graph directory ``path`` (without importing PyG) and split it (``split``:
    ``leave_last_out`` | ``global_time`` with ``quantiles`` | ``predefined``). With
    ``require_targets`` a split that leaves no validation or test target is refused."""
    path = Path(path)
    graph = read_graph(path)
    ids = load_id_maps(path)
    check_id_maps(path, graph, ids)
    ev = EventTable.from_graph(graph)
    side = ItemSide.from_graph(graph)
    sp = make_split(ev, split, quantiles=tuple(quantiles))
    if require_targets:
        check_split(sp, ev, split)
    report = path / "report.json"
    try:
        dtypes = json.loads(report.read_text()).get("id_dtypes", {}) if report.exists() else {}
    except (OSError, ValueError):  # a damaged report changes no score: the ids stay strings
        dtypes = {}
    return GraphData(path.resolve(), graph.fingerprint, ids, ev, side, sp, split, dtypes)
