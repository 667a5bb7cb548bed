"""The short Python path: a DataFrame log to recommendations in a few lines.

Example::

    import pandas as pd
    import graphseq

    events = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10], "ts": [1, 2, 3]})
    log = graphseq.read_frame(events, graphseq.Schema(user="user", item="item", timestamp="ts"))
    graph = graphseq.build_graph(log)
    run = graphseq.train(graph, model="sasrec", out="runs/sasrec", epochs=20)
    run.recommend([1, 2], k=5)        # a DataFrame: user, item, score, rank, source

Every input is checked here, before anything is written: the config as the CLI checks it,
the output directory, split names and devices (one :class:`~data_builders.errors.DataError`,
a ``ValueError``, worded for Python).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.schema import Schema

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from graphseq.recommend import Run

log = logging.getLogger("graphseq")


@dataclass
class Graph:
    """A graph built in memory (:func:`build_graph`): the PyG ``HeteroData`` (``data``), the
    raw-id maps (``ids``: node type → ``pd.Index``), the build ``report`` and the item table.
    :meth:`save` writes it as a graph directory; ``train`` takes it as it is."""

    data: HeteroData
    ids: dict[str, pd.Index]
    report: dict
    items: pd.DataFrame | None = field(default=None, repr=False)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a graph directory (atomically) and return its path."""
        from data_builders.store import save_graph

        return save_graph(path, self.data, self.ids, self.report, self.items, overwrite)

    def __iter__(self):  # ``data, ids, report = build_graph(log)`` keeps working
        return iter((self.data, self.ids, self.report))

    def __repr__(self) -> str:
        nodes = ", ".join(f"{n} {t}s" for t, n in self.report["nodes"].items())
        return f"Graph({nodes}, {self.report['events']} events, targets {self.report['targets']})"


def read_frame(
    events: Any,
    schema: Schema | dict,
    items: Any = None,
    kg: Any = None,
    links: Any = None,
    tag_events: Any = None,
) -> CanonicalLog:
    """The log of a DataFrame (pandas, polars or Arrow) whose columns ``schema`` names (a
    :class:`Schema` or its dict form). Side tables are DataFrames too, their columns named by
    the schema's ``items`` / ``kg`` / ``links`` / ``tag_events`` sections (defaults:
    ``item``, ``tags``, ``title``; ``head``, ``relation``, ``tail``; ...)."""
    from data_builders.readers.csv_reader import read_frame as read

    if isinstance(schema, dict):
        schema = Schema.from_dict(schema)
    if not isinstance(schema, Schema):
        raise DataError(f"schema must be a Schema or a dict, not {type(schema).__name__}")
    return read(events, schema, items=items, kg=kg, links=links, tag_events=tag_events)


def build_graph(log: CanonicalLog, **options: Any) -> Graph:
    """The temporal heterogeneous graph of a log (from :func:`read_frame` or
    ``graphseq.read_log``); ``options``: :class:`data_builders.build.BuildOptions` fields
    (``kcore``, ``time_window``, ...)."""
    from data_builders.build import BuildOptions
    from data_builders.build import build_graph as build

    if not isinstance(log, CanonicalLog):
        what = type(log).__name__
        hint = "pass read_frame(df, schema) first" if hasattr(log, "columns") else (
            "read it with read_frame(df, schema) or read_log(format, path)")  # fmt: skip
        raise DataError(f"build_graph takes a log, not a {what}", hint=hint)
    try:
        opts = BuildOptions(**options)
    except TypeError as err:
        raise DataError(f"build_graph: {err}", hint="options are BuildOptions fields") from None
    data, ids, report = build(log, opts)
    return Graph(data, ids, report, log.items)


def _out_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError("out is a file, not a run directory", file=out, hint="give a directory")
    if (out / "train_log.jsonl").exists():
        raise DataError(
            "out already holds a run", file=out,
            hint="load it with graphseq.load_run(out), or train into another directory",
        )  # fmt: skip
    return out


def train(
    graph: Graph | str | Path,
    model: str = "graphseq",
    out: str | Path | None = None,
    progress: bool = True,
    **config: Any,
) -> Run:
    """Train ``model`` on ``graph`` (a :class:`Graph` or a graph directory) into the run
    directory ``out``, early-stopping on validation, and return the finished run.

    ``config``: :class:`~graphseq.config.TrainConfig` keys (``epochs=20``, ``lr=1e-3``,
    ``seed=1``, ...), checked as ``--set`` checks them before anything is written. A
    :class:`Graph` is saved inside the run (``out/graph``), so the run directory holds
    everything it needs.
    """
    from graphseq.config import config_from_dict
    from graphseq.models.resolve import check_model_name, ignored_keys
    from graphseq.recommend import load_run
    from graphseq.training.trainer import Trainer

    if out is None:
        raise DataError("train needs out=DIR, the run directory to write")
    if not isinstance(graph, (Graph, str, Path)):
        raise DataError(
            f"graph must be a Graph (build_graph) or a graph directory, not {type(graph).__name__}"
        )
    check_model_name(model)
    cfg = config_from_dict({**config, "model": model}, source="train()")
    for key in ignored_keys(model, set(config)):
        log.warning("config key '%s' is not used by model '%s'", key, model)
    out = _out_dir(out)
    made = not out.exists()
    try:
        if isinstance(graph, Graph):
            graph = graph.save(out / "graph", overwrite=True)
        trainer = Trainer(cfg.replace(graph=str(graph)), out, progress=progress)
    except BaseException:
        if made:  # nothing half-written: the run directory goes with the failed start
            shutil.rmtree(out, ignore_errors=True)
        raise
    trainer.fit()
    return load_run(out)
