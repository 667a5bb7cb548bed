"""Training objectives of sequence models: full softmax, sampled softmax (logQ) and BPR.

Every objective takes the scored user states of the used positions and the table of the
items the step encoded; negatives come with the batch (:mod:`graphseq.train.batches`), so
the loss draws nothing itself. With ``train_exclude_seen`` each position's earlier target
items (never its label) leave its softmax, as evaluation leaves them out of the ranking.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.sequences import SeqBatch, earlier_targets
from graphseq.nn.losses import bpr_loss, full_softmax_ce, sampled_softmax_ce

LOSSES = ("ce", "sampled", "bpr")


class SequenceObjective(nn.Module):
    """Args:
        loss: ``ce`` (full softmax, https://arxiv.org/abs/2308.07192) | ``sampled`` (shared
            negatives, logQ-corrected when they follow popularity, Yi et al. 2019) | ``bpr``
            (per-position negatives).
        train_exclude_seen: drop each position's earlier targets from its softmax (False).
    Shapes: ``forward`` h (N, d), items (n, d), target (N,) local ids; inp/use (B, L);
        neg (S,) shared or (N, k) per position; log_q (n,); bias: sparse logit terms
        (rows, cols, values) and dense_bias (columns, (N, M)), ``ce`` only → scalar.
    """

    def __init__(self, loss: str = "ce", train_exclude_seen: bool = False) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        self.loss, self.train_exclude_seen = loss, train_exclude_seen

    @property
    def needs_negatives(self) -> bool:
        return self.loss in ("sampled", "bpr")

    def needed(self, seq: SeqBatch, neg: Tensor | None, num_items: int) -> Tensor:
        """Sorted item ids a step must encode: the catalogue for ``ce``, else the batch's items
        and its negatives."""
        if self.loss == "ce" or neg is None:
            return torch.arange(num_items)
        return torch.unique(torch.cat([seq.item[seq.mask], neg.flatten()]))

    def forward(
        self,
        h: Tensor,
        items: Tensor,
        target: Tensor,
        inp: SeqBatch,
        use: Tensor,
        neg: Tensor | None = None,
        log_q: Tensor | None = None,
        bias: tuple[Tensor, Tensor, Tensor] | None = None,
        dense_bias: tuple[Tensor | None, Tensor] | None = None,
    ) -> Tensor:
        n, ex = items.size(0), self.train_exclude_seen
        if self.loss == "ce":
            seen = earlier_targets(inp, use, target, n) if ex else None
            return full_softmax_ce(h, items, target, seen, bias, dense_bias)
        if bias is not None or dense_bias is not None:
            raise ValueError(
                f"own_history / item_graph_mode=trained need loss=ce, not {self.loss!r}"
            )
        if neg is None:
            raise ValueError(f"loss={self.loss} needs negatives in the batch")
        if self.loss == "sampled":
            seen = earlier_targets(inp, use, target, n, neg) if ex else None
            return sampled_softmax_ce(h, items, target, neg, log_q, seen)
        pos = (h * items[target]).sum(-1)  # (N,)
        negs = torch.einsum("nd,nkd->nk", h, items[neg])  # (N, k): each position's own
        return bpr_loss(pos, negs)

    def __repr__(self) -> str:
        return f"SequenceObjective({self.loss}, exclude_seen={self.train_exclude_seen})"
