"""Recommenders behind one interface: pop, mf, lightgcn, sasrec, graphseq."""

from graphseq.models.base import Encoded, Recommender
from graphseq.models.graphseq import GraphSeq
from graphseq.models.mf import MF, LightGCN
from graphseq.models.pop import Pop
from graphseq.models.registry import MODELS, build_model, register_model
from graphseq.models.sasrec import SASRec

__all__ = [
    "MF",
    "MODELS",
    "Encoded",
    "GraphSeq",
    "LightGCN",
    "Pop",
    "Recommender",
    "SASRec",
    "build_model",
    "register_model",
]
