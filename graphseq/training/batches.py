"""Typed training batches and the builder that makes them (indices, sequences, negatives).

Negatives are drawn here, with a generator seeded by (seed, epoch, step, rank), never with the
global RNG: a resumed or distributed run draws the same negatives, and a model's ``loss`` is a
pure function of its batch (up to dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphseq.graph.context import GraphContext
from graphseq.graph.events import target_counts
from graphseq.graph.sequences import SeqBatch
from graphseq.training.schedule import epoch_batches


@dataclass
class SequenceBatch:
    """Each user's last ``L + 1`` training events (position ``t`` predicts event ``t + 1``).

    Shapes: users (B,); seq fields (B, L+1); negatives (B, S) per sequence or (S,) shared
    (sampled softmax), (N, k) per used position (bpr), None for the full softmax;
    log_q (I,) the log sampling
    probability of each item (popularity negatives) or None.
    """

    users: Tensor
    seq: SeqBatch
    negatives: Tensor | None = None
    log_q: Tensor | None = None

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class PairBatch:
    """Training target events of ID-table models, one uniform negative item per row.
    Shapes: users, pos, neg (B,)."""

    users: Tensor
    pos: Tensor
    neg: Tensor

    def __len__(self) -> int:
        return len(self.users)


class BatchBuilder:
    """Batches of one training graph.

    Args:
        ctx: the training graph.  mode: ``sequences`` | ``pairs``.
        batch_size, max_seq_len, seed: as in the config.
        loss: ``ce`` | ``sampled`` | ``bpr`` (sequence models: which negatives).
        num_negatives: negatives per sequence (sampled; per batch with
            ``share_negatives``) or per position (bpr).
        negatives: ``uniform`` | ``popularity`` (logQ-corrected in the sampled softmax).
        rank: this process's rank (distributed runs draw different negatives per rank).
    """

    def __init__(
        self,
        ctx: GraphContext,
        mode: str,
        *,
        batch_size: int = 128,
        max_seq_len: int = 200,
        seed: int = 0,
        loss: str = "ce",
        num_negatives: int = 256,
        negatives: str = "uniform",
        share_negatives: bool = False,
        rank: int = 0,
    ) -> None:
        if mode not in ("sequences", "pairs"):
            raise ValueError(f"nothing to batch for train_mode {mode!r}")
        self.ctx, self.mode, self.batch_size, self.max_seq_len = ctx, mode, batch_size, max_seq_len
        self.seed, self.loss, self.num_negatives, self.rank = seed, loss, num_negatives, rank
        self.popular, self.share = negatives == "popularity", share_negatives
        self.num_items = ctx.events.num_items
        self._popularity: Tensor | None = None

    @property
    def popularity(self) -> Tensor:
        """(I,) target-event count + 1 of each item in the training graph."""
        if self._popularity is None:
            self._popularity = target_counts(self.ctx.visible).double() + 1.0
        return self._popularity

    def epoch(self, epoch: int) -> list[Tensor]:
        """All ranks' index batches of ``epoch`` (users, or training target events)."""
        return epoch_batches(
            self.ctx.events, self.ctx.mask, self.mode, self.batch_size, self.max_seq_len,
            self.seed, epoch,
        )  # fmt: skip

    def _generator(self, epoch: int, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(
            ((self.seed * 1_000_003 + epoch) * 100_003 + step) * 101 + self.rank
        )

    def _draw(self, shape: tuple[int, ...], g: torch.Generator) -> Tensor:
        if not self.popular:
            return torch.randint(self.num_items, shape, generator=g)
        n = 1
        for s in shape:
            n *= s
        return torch.multinomial(self.popularity, n, replacement=True, generator=g).view(shape)

    def make(self, idx: Tensor, epoch: int, step: int) -> SequenceBatch | PairBatch:
        """The batch of the indices ``idx`` (from :meth:`epoch`), CPU tensors."""
        g = self._generator(epoch, step)
        ev = self.ctx.events
        if self.mode == "pairs":
            return PairBatch(ev.user[idx], ev.item[idx], self._draw((len(idx),), g))
        seq = self.ctx.user_sequences(idx, self.max_seq_len + 1)
        neg, log_q = None, None
        if self.loss == "sampled":  # per sequence, or shared by the whole batch
            shape = (self.num_negatives,) if self.share else (len(idx), self.num_negatives)
            neg = self._draw(shape, g)
            if self.popular:
                pop = self.popularity
                log_q = (pop / pop.sum()).log().float()
        elif self.loss == "bpr":
            _, _, use = seq.shift()
            neg = self._draw((int(use.sum()), self.num_negatives), g)
        return SequenceBatch(idx, seq, neg, log_q)
