"""Recommenders composed of an item side, a user encoder and a scorer (see ``base.py``)."""

from __future__ import annotations

__all__ = ["MODELS", "Encoded", "GraphShape", "Recommender", "build_model", "register_model",
           "resolve"]  # fmt: skip

_LAZY = {  # public name -> module (lazy: the part modules import each other's keys)
    "Encoded": "graphseq.models.base",
    "Recommender": "graphseq.models.base",
    "MODELS": "graphseq.models.registry",
    "register_model": "graphseq.models.registry",
    "build_model": "graphseq.models.resolve",
    "resolve": "graphseq.models.resolve",
    "GraphShape": "graphseq.graph.shape",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'graphseq.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
