"""graphseq: graph-neural-network recommendation from behavior logs.

The short path (each name is documented in the API reference)::

    import graphseq

    log = graphseq.read_frame(events_df, graphseq.Schema(user="user", item="item", timestamp="ts"))
    graph = graphseq.build_graph(log)
    run = graphseq.train(graph, model="graphseq", out="runs/gs", epochs=50)
    run.recommend([1, 2, 3], k=10)          # a DataFrame with the log's own id dtype
    run = graphseq.load_run("runs/gs")      # later, or in a notebook
"""

from __future__ import annotations

__version__ = "0.1.0"  # the one source of the version (pyproject reads it)

__all__ = [
    "MODELS",
    "DataError",
    "Graph",
    "Run",
    "Schema",
    "TrainConfig",
    "Trainer",
    "build_graph",
    "load_graph",
    "load_run",
    "read_frame",
    "read_log",
    "to_homogeneous",
    "train",
]


_LAZY = {  # public name -> module that defines it
    "DataError": "data_builders.errors",
    "Schema": "data_builders.schema",
    "read_log": "data_builders.readers",
    "load_graph": "data_builders.store",
    "Graph": "graphseq.api",
    "build_graph": "graphseq.api",
    "read_frame": "graphseq.api",
    "train": "graphseq.api",
    "TrainConfig": "graphseq.config",
    "Trainer": "graphseq.training.trainer",
    "MODELS": "graphseq.models.registry",
    "Run": "graphseq.recommend",
    "load_run": "graphseq.recommend",
    "to_homogeneous": "graphseq.graph.convert",
}


def __getattr__(name: str):  # lazy: `import graphseq` stays cheap for the CLI
    if name not in _LAZY:
        raise AttributeError(f"module 'graphseq' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
