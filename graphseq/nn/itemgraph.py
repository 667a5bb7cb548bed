"""Closed-form item–item graph scored over a user's recency-decayed history.

The item–item graph is EASE (Steck 2019, https://arxiv.org/abs/1905.03375): the dense
``(I, I)`` weights ``B`` that best rebuild every user's item row from their other items,
``B = I - P / diag(P)`` with ``P = (XᵀX + λI)⁻¹`` and a zero diagonal, computed from the
visible target events of one scoring graph. A user's score is one hop of their history over
it, ``h_u B``, where ``h_u`` weights each earlier target event by ``exp(-age / decay)``
(age in events, 0 for the most recent), so the last few items count most.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from graphseq.graph.sequences import SeqBatch

__all__ = ["ItemGraphScorer", "decayed_history", "ease_item_graph", "standardize"]


def ease_item_graph(
    users: Tensor, items: Tensor, num_users: int, num_items: int, reg: float = 200.0
) -> Tensor:
    """EASE weights of the binary user × item matrix of the ``(users, items)`` pairs.

    Args:
        users, items: (E,) event endpoints (repeats count once).
        num_users, num_items: matrix size.
        reg: L2 weight λ (200).
    Shapes: returns (I, I) with a zero diagonal, on ``items.device``.
    """
    dev = items.device
    pairs = torch.stack([items, users.to(dev)])
    ones = torch.ones(pairs.size(1), device=dev)
    xt = torch.sparse_coo_tensor(pairs, ones, (num_items, num_users), check_invariants=False)
    xt = xt.coalesce()
    xt = torch.sparse_coo_tensor(  # binary: a repeated pair counts once
        xt.indices(), torch.ones_like(xt.values()), xt.shape, check_invariants=False
    )
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        gram = torch.sparse.mm(xt, xt.t()).to_dense().double()  # (I, I) co-occurrence counts
    gram.diagonal().add_(reg)
    p = torch.linalg.inv(gram)
    b = -p / p.diagonal()[None, :]
    b.fill_diagonal_(0.0)
    return b.float()


def decayed_history(hist: SeqBatch, num_items: int, decay: Tensor | float) -> Tensor:
    """(B, I) weight of each item in each row's target events: ``exp(-age / decay)`` summed
    over its occurrences, age = events between it and the row's most recent event."""
    pos = torch.arange(hist.item.size(1), device=hist.item.device)  # (L,)
    age = (hist.last[:, None] - pos[None, :]).clamp(min=0).float()  # (B, L)
    w = torch.exp(-age / decay) * (hist.mask & hist.is_target)  # (B, L)
    out = torch.zeros(len(hist.item), num_items + 1, device=w.device)  # spare column: padding
    return out.scatter_add_(1, hist.item, w)[:, :num_items]


def standardize(scores: Tensor) -> Tensor:
    """Per-row z-score over the catalogue: ranking-neutral, puts two scorers on one scale.
    Shapes: (B, I) → (B, I)."""
    mean = scores.mean(1, keepdim=True)
    return (scores - mean) / scores.std(1, keepdim=True).clamp(min=1e-8)


class ItemGraphScorer(nn.Module):
    """Late fusion of a model's scores with the item–item graph's:
    ``standardize(model) + weight · standardize(h_u B)``.

    ``weight`` and ``decay`` are buffers (saved with the model): they are chosen on
    validation after training (``graphseq.train.tune``), and ``weight = 0`` (the default)
    leaves the model's scores untouched.

    Args:
        num_items: catalogue size.  reg: EASE λ (200).
        max_items: above this catalogue size the dense (I, I) graph is skipped (10,000).
    """

    def __init__(self, num_items: int, reg: float = 200.0, max_items: int = 10_000) -> None:
        super().__init__()
        self.num_items, self.reg, self.max_items = num_items, reg, max_items
        self.register_buffer("weight", torch.zeros(()))
        self.register_buffer("decay", torch.tensor(20.0))

    @property
    def enabled(self) -> bool:
        return self.num_items <= self.max_items

    def reset_parameters(self) -> None:
        self.weight.zero_()
        self.decay.fill_(20.0)

    def graph(self, users: Tensor, items: Tensor, num_users: int) -> Tensor:
        """(I, I) item–item graph of one scoring graph's target events."""
        return ease_item_graph(users, items, num_users, self.num_items, self.reg)

    def forward(self, scores: Tensor, hist: SeqBatch, graph: Tensor) -> Tensor:
        """Shapes: ``scores`` (B, I), ``hist`` fields (B, L), ``graph`` (I, I) → (B, I)."""
        if float(self.weight) == 0.0:
            return scores
        h = decayed_history(hist, self.num_items, self.decay)  # (B, I)
        return standardize(scores) + self.weight * standardize(h @ graph)

    def __repr__(self) -> str:
        return f"ItemGraphScorer({self.num_items}i, reg={self.reg:g}, weight={float(self.weight):g}, decay={float(self.decay):g})"
