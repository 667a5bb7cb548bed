"""Layers: adjacency builders, view encoders, view fusion.

Exports use ``name as name`` (explicit re-export); add new ones the same way.
"""

from graphseq.nn.adjacency import bipartite_adjacency as bipartite_adjacency
from graphseq.nn.adjacency import drop_edges as drop_edges
from graphseq.nn.adjacency import union_adjacency as union_adjacency
from graphseq.nn.features import ItemFeatures as ItemFeatures
from graphseq.nn.fusion import ViewFusion as ViewFusion
from graphseq.nn.views import LightGCNView as LightGCNView
from graphseq.nn.views import sparse_propagate as sparse_propagate
