"""MB-CGCN (Cheng et al., SIGIR 2023, https://arxiv.org/abs/2303.15720): cascading LightGCN
over the behavior chain (e.g. fav → cart → buy). Each behavior's LightGCN starts from the
previous behavior's output embeddings through a linear feature transformation; the final
user and item embeddings are the sum over behaviors; BPR on the target behavior."""

from __future__ import annotations

from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.models.mf import NodeTable
from graphseq.nn.adjacency import bipartite_adjacency
from graphseq.nn.views import LightGCNView


def behavior_chain(behaviors: list[str], targets: list[str], counts: list[int]) -> list[str]:
    """The default cascade: non-target behaviors from the rarest to the most frequent (the
    funnel fav → cart), then the target behaviors."""
    rest = sorted(
        (b for b in behaviors if b not in targets), key=lambda b: counts[behaviors.index(b)]
    )
    return rest + [b for b in behaviors if b in targets]


class CascadeTable(NodeTable):
    """Args:
        num_users, num_items, dim: sizes.  chain: behavior indices in cascade order.
        num_layers: LightGCN layers per behavior (2).  reg: L2 weight on ego rows (1e-4).
    Shapes: ``encode`` → users (U, d), items (I, d); ``pair_loss`` → scalar.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int,
        chain: list[int],
        num_layers: int = 2,
        reg: float = 1e-4,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim, self.reg = num_users, num_items, dim, reg
        self.chain, self.num_layers = list(chain), num_layers
        self.emb = nn.Embedding(num_users + num_items, dim)  # users first, then items
        self.transforms = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in chain[1:])
        self.view = LightGCNView(num_layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.emb.weight, std=0.1)
        for t in self.transforms:
            nn.init.eye_(t.weight)  # start as plain stacking; learned from there

    def _adjacency(self, ctx: GraphContext, b: int) -> Tensor:
        key = f"cascade_adj:{b}"  # derived from events only: one per context and behavior
        if key not in ctx.cache:
            vis = ctx.visible
            m = vis.behavior == b
            adj = bipartite_adjacency(vis.user[m], vis.item[m], self.num_users, self.num_items)
            ctx.cache[key] = adj.to(self.emb.weight.device)
        return ctx.cache[key]

    def propagate(self, ctx: GraphContext) -> Tensor:
        """(U + I, d): the sum over the chain of each behavior's LightGCN output."""
        h, total = self.emb.weight, 0.0
        for k, b in enumerate(self.chain):
            if k > 0:
                h = self.transforms[k - 1](h)
            h = self.view(h, self._adjacency(ctx, b), symmetric=True)
            total = total + h
        return total

    def __repr__(self) -> str:
        return f"CascadeTable(chain={self.chain}, layers={self.num_layers})"
