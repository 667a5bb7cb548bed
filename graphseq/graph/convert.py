"""Conversion for users who bring their own PyG models."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the graph passed in brings PyG along
    from torch_geometric.data import Data, HeteroData


def to_homogeneous(graph: HeteroData) -> Data:
    """One homogeneous ``Data`` (PyG's ``HeteroData.to_homogeneous``): ``node_type`` and
    ``edge_type`` index ``graph.node_types`` / ``graph.edge_types``. Edge attributes
    (``time``, ``value``, ``order``) are dropped: side-graph edge types have none."""
    g = graph.clone()
    for store in g.edge_stores:
        for key in ("time", "value", "order"):
            if key in store:
                del store[key]
    return g.to_homogeneous()
