"""Per-user time-ordered event sequences, left-aligned and padded on the right.

Right padding keeps causal models exact: position ``t`` sees positions ``<= t`` only, so
padding (after the last event) never changes a state, whatever the batch's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphseq.graph.events import EventTable


@dataclass
class SeqBatch:
    """Left-aligned sequences: row ``b`` holds its events at positions ``0..length[b]-1``
    (oldest first); ``item`` uses ``num_items`` and ``behavior`` ``len(behaviors)`` where
    ``mask`` is false. Shapes: every field (B, L).
    """

    item: Tensor
    behavior: Tensor
    time: Tensor
    is_target: Tensor
    mask: Tensor

    def to(self, device: torch.device | str) -> SeqBatch:
        fields = (self.item, self.behavior, self.time, self.is_target, self.mask)
        return SeqBatch(*(t.to(device) for t in fields))

    @property
    def length(self) -> Tensor:
        """(B,) number of events per row."""
        return self.mask.sum(1)

    @property
    def last(self) -> Tensor:
        """(B,) position of each row's most recent event (0 for empty rows)."""
        return (self.length - 1).clamp(min=0)

    def shift(self) -> tuple[SeqBatch, Tensor, Tensor]:
        """A training batch of ``L + 1`` events as ``(inputs, labels, use)``: inputs are the
        first ``L`` positions, the label of position ``t`` is the item at ``t + 1``, and ``use``
        marks the positions whose next event is a target event.
        Shapes: inputs (B, L); labels, use (B, L)."""
        fields = (self.item, self.behavior, self.time, self.is_target, self.mask)
        inp = SeqBatch(*(t[:, :-1] for t in fields))
        return inp, self.item[:, 1:], self.is_target[:, 1:] & self.mask[:, :-1]

    def localise(self, items: Tensor) -> SeqBatch:
        """Item ids replaced by their positions in the sorted ``items`` (n,), padding by ``n``
        (every real item must be among ``items``)."""
        local = torch.where(self.mask, torch.searchsorted(items, self.item), items.numel())
        return SeqBatch(local, self.behavior, self.time, self.is_target, self.mask)

    def trim(self) -> SeqBatch:
        """Drop trailing columns that are padding in every row (at least one column stays)."""
        L = max(int(self.length.max()) if self.mask.numel() else 1, 1)
        fields = (self.item, self.behavior, self.time, self.is_target, self.mask)
        return SeqBatch(*(t[:, :L] for t in fields))


def pad_from_csr(ev: EventTable, ptr: Tensor, idx: Tensor, rows: Tensor, max_len: int) -> SeqBatch:
    """The last ``max_len`` events of each CSR row in ``rows``, left-aligned, trimmed.

    Args:
        ev: the event table that ``idx`` indexes.
        ptr, idx: CSR (row ``r`` holds events ``idx[ptr[r]:ptr[r+1]]`` in event order).
        rows: (B,) rows to gather.
        max_len: the longest sequence kept (most recent events).
    Shapes: returns fields of shape (B, L), L = min(max_len, longest row).
    """
    start, end = ptr[rows], ptr[rows + 1]
    length = (end - start).clamp(max=max_len)
    L = max(int(length.max()) if len(rows) else 1, 1)
    pos = torch.arange(L)
    src = (end - length)[:, None] + pos[None, :]  # (B, L)
    mask = pos[None, :] < length[:, None]
    if len(idx):
        ev_idx = idx[src.clamp(max=len(idx) - 1)]
        ev_idx = torch.where(mask, ev_idx, torch.zeros_like(ev_idx))
    else:
        ev_idx = torch.zeros_like(src)
    item = torch.where(mask, ev.item[ev_idx], ev.num_items)
    behavior = torch.where(mask, ev.behavior[ev_idx], len(ev.behaviors))
    time = torch.where(mask, ev.time[ev_idx], torch.zeros_like(ev_idx))
    is_target = mask & ev.is_target[ev_idx]
    return SeqBatch(item, behavior, time, is_target, mask)


def earlier_targets(
    inp: SeqBatch, use: Tensor, label: Tensor, num_items: int, cols: Tensor | None = None
) -> Tensor:
    """(N, I) True where an item is a target event at or before the used position ``t`` of
    its row (what evaluation would exclude when scoring the event after ``t``), never at the
    position's own label. With ``cols`` (S,), only those items' columns: (N, S), where a
    column equal to the label may be True (sampled softmax drops such hits anyway).
    Built by :class:`EarlierTargets`, which also gives the mask a column chunk at a time.
    Shapes: ``inp`` fields and ``use`` (B, L); ``label`` (N,); item ids in ``[0, num_items)``."""
    seen = EarlierTargets(inp, use, label, num_items)
    return seen.columns(0, num_items) if cols is None else seen.select(cols)


class EarlierTargets:
    """The :func:`earlier_targets` mask, computed on demand for a range or a set of item
    columns, so a full-softmax step over a large catalogue never holds the (N, I) mask: a
    chunk of ``w`` columns costs a (B, w) int16 table and the (N, w) mask itself; a chunk of
    rows, one (B, I) table for the batch and the chunk's mask.

    Shapes: ``inp`` fields and ``use`` (B, L); ``label`` (N,) → ``columns(lo, hi)`` (N, hi-lo),
    ``rows(lo, hi)`` (hi-lo, I), ``select(cols)`` (N, S) bool.
    """

    def __init__(self, inp: SeqBatch, use: Tensor, label: Tensor, num_items: int) -> None:
        B, L = inp.item.shape
        self.B, self.L, self.num_items, self.label = B, L, num_items, label
        self.seq_row, t = use.nonzero(as_tuple=True)  # (N,), (N,) row and position of each use
        self.t = t.to(torch.int16)[:, None]
        tgt = inp.is_target & inp.mask
        self.ev_row, pos = tgt.nonzero(as_tuple=True)  # every target event in the batch
        self.ev_pos, self.ev_item = pos.to(torch.int16), inp.item[tgt]
        self._first: Tensor | None = None  # (B, I) for rows(), built on first use

    def _mask(self, col: Tensor, keep: Tensor, width: int) -> Tensor:
        """(N, width): the earlier targets whose local column is ``col`` (where ``keep``)."""
        dev = self.ev_item.device
        first = torch.full((self.B * (width + 1),), self.L, dtype=torch.int16, device=dev)
        flat = self.ev_row * (width + 1) + torch.where(keep, col, width)  # outside → spare
        first.scatter_reduce_(0, flat, self.ev_pos, "amin")  # first position of each item
        return first.view(self.B, width + 1)[self.seq_row, :width] <= self.t

    def columns(self, lo: int, hi: int) -> Tensor:
        """(N, hi - lo) the mask's columns of items ``lo..hi-1``; a row's label is never True."""
        col = self.ev_item - lo
        seen = self._mask(col, (col >= 0) & (col < hi - lo), hi - lo)
        lab = self.label - lo
        hit = torch.nonzero((lab >= 0) & (lab < hi - lo)).flatten()
        seen[hit, lab[hit]] = False
        return seen

    def rows(self, lo: int, hi: int) -> Tensor:
        """(hi - lo, I) the mask's rows ``lo..hi-1`` over every item; a row's label is never
        True. The first position of each (sequence, item) is found once, a (B, I) int16
        table, and every call compares a slice of it with its rows' positions."""
        if self._first is None:
            first = torch.full((self.B * self.num_items,), self.L, dtype=torch.int16,
                               device=self.ev_item.device)  # fmt: skip
            first.scatter_reduce_(0, self.ev_row * self.num_items + self.ev_item, self.ev_pos,
                                  "amin")  # fmt: skip
            self._first = first.view(self.B, self.num_items)
        seen = self._first[self.seq_row[lo:hi]] <= self.t[lo:hi]  # (hi - lo, I)
        seen[torch.arange(hi - lo, device=seen.device), self.label[lo:hi]] = False
        return seen

    def select(self, cols: Tensor) -> Tensor:
        """(N, S) the mask at the items ``cols``: (S,) the same for every row, or (B, S) one set
        per sequence (row ``n`` reads its sequence's set); repeats allowed; a column equal
        to a row's label may be True (as in :func:`earlier_targets`)."""
        cols = cols.expand(self.B, -1) if cols.dim() == 1 else cols  # (B, S)
        span = self.num_items + 1
        key = self.ev_row * span + self.ev_item  # (E,) one key per (sequence, item)
        uniq, inv = torch.unique(key, return_inverse=True)
        if not uniq.numel():
            return torch.zeros(
                len(self.seq_row), cols.size(1), dtype=torch.bool, device=cols.device
            )
        first = torch.full((uniq.numel(),), self.L, dtype=torch.int16, device=key.device)
        first.scatter_reduce_(0, inv, self.ev_pos, "amin")  # first position of each key
        want = torch.arange(self.B, device=cols.device)[:, None] * span + cols  # (B, S)
        at = torch.searchsorted(uniq, want).clamp(max=uniq.numel() - 1)
        pos = torch.where(uniq[at] == want, first[at], self.L)  # (B, S)
        return pos[self.seq_row] <= self.t
