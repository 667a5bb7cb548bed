"""Training objectives of sequence models: full softmax, sampled softmax (logQ), gBCE and BPR.

Every objective takes the scored user states of the used positions and the table of the
items the step encoded; negatives come with the batch (:mod:`graphseq.train.batches`), so
the loss draws nothing itself. With ``train_exclude_seen`` each position's earlier target
items (never its label) leave its softmax, as evaluation leaves them out of the ranking.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphseq.graph.sequences import EarlierTargets, SeqBatch
from graphseq.nn.losses import bpr_loss, gbce_beta, gbce_loss, sampled_softmax_ce
from graphseq.nn.softmax import chunked_softmax_ce, softmax_chunk

LOSSES = ("ce", "sampled", "gbce", "bpr")
SAMPLED = ("sampled", "gbce")  # negatives per sequence (B, S), or shared by the batch (S,)


class SequenceObjective(nn.Module):
    """Args:
        loss: ``ce`` (full softmax, https://arxiv.org/abs/2308.07192) | ``sampled`` (shared
            negatives, logQ-corrected when they follow popularity, Yi et al. 2019) | ``bpr``
            (per-position negatives) | ``gbce`` (gSASRec's calibrated BCE on shared uniform
            negatives, https://arxiv.org/abs/2308.07192).
        train_exclude_seen: drop each position's earlier targets from its softmax (False).
        ce_max_logits: ``ce``: the most logits (positions × items) held at once; a larger
            step runs in item chunks (:func:`~graphseq.nn.softmax.chunked_softmax_ce`, same
            loss and gradient); 0: always one (N, I) buffer.
        gbce_t: ``gbce``: calibration t (0.75, the paper's default).
        num_items: the catalogue size (gBCE's α = k / (I − 1)); 0: the encoded items' count.
    Shapes: ``forward`` h (N, d), items (n, d), target (N,) local ids; inp/use (B, L);
        neg (B, S) per sequence or (S,) shared (sampled, gbce), (N, k) per position (bpr);
        log_q (n,); bias: sparse logit terms (rows, cols, values) and dense_bias (columns,
        (N, M)); ``bias`` for ``ce``, ``sampled`` and ``gbce``, ``dense_bias`` for ``ce`` → scalar.
    """

    def __init__(
        self,
        loss: str = "ce",
        train_exclude_seen: bool = False,
        ce_max_logits: int = 0,
        gbce_t: float = 0.75,
        num_items: int = 0,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        self.loss, self.train_exclude_seen = loss, train_exclude_seen
        self.ce_max_logits, self.gbce_t, self.num_items = ce_max_logits, gbce_t, num_items

    @property
    def needs_negatives(self) -> bool:
        return self.loss != "ce"

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
        n = items.size(0)
        seen = EarlierTargets(inp, use, target, n) if self.train_exclude_seen else None
        if self.loss == "ce":
            chunk = softmax_chunk(h.size(0), n, self.ce_max_logits)
            return chunked_softmax_ce(
                h, items, target, None if seen is None else seen.columns, chunk, bias, dense_bias
            )
        if dense_bias is not None:
            raise ValueError(f"item_graph_mode=trained needs loss=ce, not {self.loss!r}")
        if bias is not None and self.loss not in SAMPLED:
            raise ValueError(f"own_history needs loss=ce, sampled or gbce, not {self.loss!r}")
        if neg is None:
            raise ValueError(f"loss={self.loss} needs negatives in the batch")
        if self.loss in SAMPLED:
            mask = None if seen is None else seen.select(neg)  # (N, S)
            if self.loss == "sampled":
                return sampled_softmax_ce(h, items, target, neg, log_q, mask, use, bias)
            beta = gbce_beta(neg.size(-1), self.num_items or n, self.gbce_t)
            return gbce_loss(h, items, target, neg, beta, mask, use, bias)
        pos = (h * items[target]).sum(-1)  # (N,)
        negs = torch.einsum("nd,nkd->nk", h, items[neg])  # (N, k): each position's own
        return bpr_loss(pos, negs)

    def __repr__(self) -> str:
        extra = f", t={self.gbce_t:g}" if self.loss == "gbce" else ""
        extra += f", max_logits={self.ce_max_logits}" if self.loss == "ce" else ""
        return f"SequenceObjective({self.loss}, exclude_seen={self.train_exclude_seen}{extra})"
