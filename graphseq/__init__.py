"""graphseq: graph-neural-network recommendation from behavior logs.

Public API::

    from graphseq import build_graph, load_graph, read_log, TrainConfig, Trainer, load_run
"""

from __future__ import annotations

__version__ = "0.1.0"  # the one source of the version (pyproject reads it)

__all__ = [
    "MODELS",
    "TrainConfig",
    "Trainer",
    "build_graph",
    "load_graph",
    "load_run",
    "read_log",
    "to_homogeneous",
]


_LAZY = {  # public name -> module that defines it
    "build_graph": "data_builders.build",
    "load_graph": "data_builders.store",
    "read_log": "data_builders.readers",
    "TrainConfig": "graphseq.config",
    "Trainer": "graphseq.train.trainer",
    "MODELS": "graphseq.models.registry",
    "load_run": "graphseq.recommend",
    "to_homogeneous": "graphseq.graph.convert",
}


def __getattr__(name: str):  # lazy: `import graphseq` stays cheap for the CLI
    if name not in _LAZY:
        raise AttributeError(f"module 'graphseq' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
