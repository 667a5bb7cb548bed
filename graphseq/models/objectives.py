"""Training objectives of sequence models: full softmax, sampled softmax (logQ) and BPR.

Every objective takes the scored user states of the used positions and the table of the
items the step encoded; negatives come with the batch (:mod:`graphseq.training.batches`), so
the loss draws nothing itself. With ``train_exclude_seen`` each position's earlier target
items (never its label) leave its softmax, as evaluation leaves them out of the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from graphseq.graph.sequences import EarlierTargets, SeqBatch
from graphseq.graph.shape import GraphShape
from graphseq.keys import key
from graphseq.nn.losses import bpr_loss, sampled_softmax_ce
from graphseq.nn.softmax import chunked_softmax_ce, softmax_chunk

if TYPE_CHECKING:
    from graphseq.config import TrainConfig

Loss = Literal["ce", "sampled", "bpr"]
LOSSES: tuple[str, ...] = get_args(Loss)


@dataclass(frozen=True)
class ObjectiveKeys:
    """Config keys of the sequence objective (and of the batches' negatives)."""

    loss: Loss = key("ce", "ce: full softmax | sampled: sampled softmax (logQ-corrected for "
                     "popularity negatives) | bpr")  # fmt: skip
    ce_max_logits: int = key(2**27, "ce: above this many logits (positions × items, 512 MiB in "
                             "float32) a step runs the softmax in item chunks (one matmul "
                             "more, same loss and gradient); below it, in row chunks; 0 = "
                             "always row chunks", low=0)  # fmt: skip
    num_negatives: int = key(256, "negatives per sequence (sampled) or per position (bpr)",
                             low=1)  # fmt: skip
    share_negatives: bool = key(False, "sampled: one negative set for the whole batch (fewer "
                                "items to encode in mini-batch mode); per sequence trains "
                                "better")  # fmt: skip
    negatives: Literal["uniform", "popularity"] = key("uniform", "how negatives are drawn "
                                                      "(popularity: logQ-corrected)")  # fmt: skip
    train_exclude_seen: bool = key(True, "ce/sampled: drop each position's earlier target "
                                   "items from its softmax, as evaluation drops them")  # fmt: skip


class SequenceObjective(nn.Module):
    """Args:
        loss: ``ce`` (full softmax, gSASRec's CE, https://arxiv.org/abs/2308.07192) |
            ``sampled`` (sampled softmax, negatives per sequence or shared by the batch,
            logQ-corrected when they follow popularity, Yi et al. 2019) | ``bpr``
            (per-position negatives).
        train_exclude_seen: drop each position's earlier targets from its softmax (False).
        ce_max_logits: ``ce``: a step with more logits (positions × items) runs in item
            chunks (:func:`~graphseq.nn.softmax.chunked_softmax_ce`, same loss and
            gradient), a smaller one in row chunks (one pass); 0: always row chunks.
    Shapes: ``forward`` h (N, d), items (n, d), target (N,) local ids; inp/use (B, L);
        neg (B, S) per sequence or (S,) shared (sampled), (N, k) per position (bpr);
        log_q (n,); bias: sparse logit terms (rows, cols, values) for ``ce`` and
        ``sampled`` → scalar.
    """

    def __init__(
        self, loss: str = "ce", train_exclude_seen: bool = False, ce_max_logits: int = 0
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        self.loss, self.train_exclude_seen = loss, train_exclude_seen
        self.ce_max_logits = ce_max_logits

    config_keys: ClassVar[tuple[str, ...]] = (*ObjectiveKeys.__dataclass_fields__, "exclude_seen")

    @classmethod
    def from_config(cls, c: TrainConfig, shape: GraphShape) -> SequenceObjective:
        return cls(c.loss, c.train_exclude_seen and c.exclude_seen, c.ce_max_logits)

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
    ) -> Tensor:
        n = items.size(0)
        seen = EarlierTargets(inp, use, target, n) if self.train_exclude_seen else None
        if self.loss == "ce":
            chunk = softmax_chunk(h.size(0), n, self.ce_max_logits)
            return chunked_softmax_ce(h, items, target, seen, chunk, bias)
        if bias is not None and self.loss != "sampled":
            raise ValueError(f"own_history needs loss=ce or sampled, not {self.loss!r}")
        if neg is None:
            raise ValueError(f"loss={self.loss} needs negatives in the batch")
        if self.loss == "sampled":
            mask = None if seen is None else seen.select(neg)  # (N, S)
            return sampled_softmax_ce(h, items, target, neg, log_q, mask, use, bias)
        pos = (h * items[target]).sum(-1)  # (N,)
        negs = torch.einsum("nd,nkd->nk", h, items[neg])  # (N, k): each position's own
        return bpr_loss(pos, negs)

    def __repr__(self) -> str:
        extra = f", max_logits={self.ce_max_logits}" if self.loss == "ce" else ""
        return f"SequenceObjective({self.loss}, exclude_seen={self.train_exclude_seen}{extra})"
