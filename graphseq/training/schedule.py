"""What a training epoch iterates over, and how often validation runs."""

from __future__ import annotations

import torch
from torch import Tensor

from data_builders.errors import DataError
from graphseq.graph.events import EventTable

EVAL_STEPS = 16  # eval_every=0: validate about this often, in optimizer steps


def epoch_batches(
    ev: EventTable,
    visible: Tensor,
    train_mode: str,
    batch_size: int,
    max_seq_len: int,
    seed: int,
    epoch: int,
) -> list[Tensor]:
    """All ranks' batches for ``epoch``: indices of training target events (``pairs``) or
    of users with at least two visible events (``sequences``). Shuffled by a generator
    seeded with (seed, epoch), so a resumed or distributed run sees the same global
    batches; sequence batches group users of similar length (less padding).
    Shapes: ``visible`` (E,) bool → a list of (≤ batch_size,) index tensors."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if train_mode == "pairs":
        pool = torch.nonzero(visible & ev.is_target).flatten()
        return list(pool[torch.randperm(len(pool), generator=g)].split(batch_size))
    counts = torch.bincount(ev.user[visible], minlength=ev.num_users)
    pool = torch.nonzero(counts >= 2).flatten()
    pool = pool[torch.randperm(len(pool), generator=g)]
    length = counts[pool].clamp(max=max_seq_len + 1)
    pool = pool[torch.argsort(length, stable=True)]
    chunks = list(pool.split(batch_size))
    return [chunks[i] for i in torch.randperm(len(chunks), generator=g).tolist()]


def eval_interval(eval_every: int, steps_per_epoch: int) -> int:
    """Epochs between validation runs: ``eval_every``, or with 0 (auto) about every
    :data:`EVAL_STEPS` optimizer steps of the whole (all-rank) batch stream, at least once an
    epoch — every 2 epochs on ML-100K, every epoch on a log of ~2k users or more, so that
    ``patience`` measures a similar amount of optimisation on small and large logs."""
    if eval_every < 0:
        raise DataError(f"eval_every must be >= 0, got {eval_every}", hint="0 picks it by steps")
    if eval_every > 0:
        return eval_every
    return max(1, round(EVAL_STEPS / max(steps_per_epoch, 1)))
