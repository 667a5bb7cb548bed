"""Per-user time-ordered event sequences, padded on the left (most recent event last)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphseq.graph.events import EventTable


@dataclass
class SeqBatch:
    """Right-aligned sequences: position ``L-1`` holds each row's most recent event.

    ``item`` uses ``pad_item`` (= num_items) and ``behavior`` uses ``pad_behavior``
    (= num behaviors) where ``mask`` is false. Shapes: every field (B, L).
    """

    item: Tensor
    behavior: Tensor
    time: Tensor
    is_target: Tensor
    mask: Tensor

    def to(self, device: torch.device | str) -> SeqBatch:
        return SeqBatch(
            *(
                t.to(device)
                for t in (self.item, self.behavior, self.time, self.is_target, self.mask)
            )
        )

    @property
    def last_time(self) -> Tensor:
        """(B,) time of each row's most recent event (0 for empty rows)."""
        return self.time[:, -1]


def pad_from_csr(ev: EventTable, ptr: Tensor, idx: Tensor, rows: Tensor, max_len: int) -> SeqBatch:
    """The last ``max_len`` events of each CSR row in ``rows``.

    Args:
        ev: the event table that ``idx`` indexes.
        ptr, idx: CSR (row ``r`` holds events ``idx[ptr[r]:ptr[r+1]]`` in event order).
        rows: (B,) rows to gather.
        max_len: L, the sequence length.
    Shapes: returns fields of shape (B, L).
    """
    start, end = ptr[rows], ptr[rows + 1]
    length = (end - start).clamp(max=max_len)
    pos = torch.arange(max_len)
    # position p of row b holds event end - (L - p) when p >= L - length
    src = end[:, None] - (max_len - pos)[None, :]  # (B, L)
    mask = pos[None, :] >= (max_len - length)[:, None]
    ev_idx = (
        idx[src.clamp(min=0).clamp(max=max(len(idx) - 1, 0))] if len(idx) else torch.zeros_like(src)
    )
    ev_idx = torch.where(mask, ev_idx, torch.zeros_like(ev_idx))
    item = torch.where(mask, ev.item[ev_idx], ev.num_items)
    behavior = torch.where(mask, ev.behavior[ev_idx], len(ev.behaviors))
    time = torch.where(mask, ev.time[ev_idx], torch.zeros_like(ev_idx))
    is_target = mask & ev.is_target[ev_idx]
    return SeqBatch(item, behavior, time, is_target, mask)
