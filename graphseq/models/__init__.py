"""Recommenders composed of an item side, a user encoder and a scorer (see ``base.py``)."""

from graphseq.models.base import Encoded, Recommender
from graphseq.models.registry import MODELS, GraphShape, build_model, register_model

__all__ = ["MODELS", "Encoded", "GraphShape", "Recommender", "build_model", "register_model"]
