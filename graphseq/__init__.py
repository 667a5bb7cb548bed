"""graphseq: graph-neural-network recommendation from behavior logs.

Public API::

    from graphseq import build_graph, load_graph, read_log, TrainConfig, Trainer, load_run
"""

from __future__ import annotations

__version__ = "0.1.0"

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


def __getattr__(name: str):  # lazy: `import graphseq` stays cheap for the CLI
    if name == "build_graph":
        from data_builders.build import build_graph

        return build_graph
    if name == "load_graph":
        from data_builders.store import load_graph

        return load_graph
    if name == "read_log":
        from data_builders.readers import read_log

        return read_log
    if name == "TrainConfig":
        from graphseq.config import TrainConfig

        return TrainConfig
    if name == "Trainer":
        from graphseq.train.trainer import Trainer

        return Trainer
    if name == "MODELS":
        from graphseq.models.registry import MODELS

        return MODELS
    if name == "load_run":
        from graphseq.recommend import load_run

        return load_run
    if name == "to_homogeneous":
        from graphseq.graph.convert import to_homogeneous

        return to_homogeneous
    raise AttributeError(f"module 'graphseq' has no attribute {name!r}")
