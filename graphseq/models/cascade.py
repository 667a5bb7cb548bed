"""MB-CGCN (Cheng et al., SIGIR 2023, https://arxiv.org/abs/2303.15720): cascading LightGCN
over the behavior chain (e.g. fav → cart → buy). Each behavior's LightGCN starts from the
previous behavior's output embeddings through a linear feature transformation; the final
user and item embeddings are the sum over behaviors; BPR on the target behavior."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor, nn

from graphseq.graph.context import GraphContext, PerContext
from graphseq.graph.shape import GraphShape
from graphseq.keys import key
from graphseq.models.mf import NodeTable
from graphseq.nn.adjacency import bipartite_adjacency
from graphseq.nn.views import LightGCNView

if TYPE_CHECKING:
    from graphseq.config import TrainConfig


@dataclass(frozen=True)
class CascadeKeys:
    """Config key of mbcgcn."""

    behavior_order: tuple[str, ...] = key((), "mbcgcn: the cascade; () = rarest non-target "
                                          "behavior first (the funnel, e.g. fav, cart), target "
                                          "behaviors last")  # fmt: skip


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
        self._adj: PerContext[dict[int, Tensor]] = PerContext()  # per behavior
        self.reset_parameters()

    config_keys: ClassVar[tuple[str, ...]] = ("dim", "reg", "gnn_layers", "behavior_order")

    @classmethod
    def from_config(cls, c: TrainConfig, shape: GraphShape) -> CascadeTable:
        behaviors = list(shape.behaviors)
        chain = list(c.behavior_order) or behavior_chain(
            behaviors, list(shape.targets), list(shape.overlap)
        )
        unknown = [b for b in chain if b not in behaviors]
        if unknown:
            raise ValueError(f"behavior_order {unknown} not in the graph ({behaviors})")
        idx = [behaviors.index(b) for b in chain]
        return cls(shape.num_users, shape.num_items, c.dim, idx, c.gnn_layers, c.reg)

    def chain_names(self, behaviors: tuple[str, ...]) -> str:
        return ">".join(behaviors[b] for b in self.chain)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.emb.weight, std=0.1)
        for t in self.transforms:
            nn.init.eye_(t.weight)  # start as plain stacking; learned from there

    def _adjacency(self, ctx: GraphContext, b: int) -> Tensor:
        per = self._adj.get(ctx, dict)  # derived from events only: one per context, behavior
        if b not in per:
            vis = ctx.visible
            m = vis.behavior == b
            adj = bipartite_adjacency(vis.user[m], vis.item[m], self.num_users, self.num_items)
            per[b] = adj.to(self.emb.weight.device)
        return per[b]

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
