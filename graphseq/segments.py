"""Repeat and explore: the user segments every evaluation reports (``metrics.json``'s
``segments``, ``per_user.parquet``'s ``segment``).

Each scored user is in one of:

- ``repeat``: the target item is among the user's own earlier non-target edges in the
  scoring graph (on Tmall: the bought item was carted or faved before);
- ``explore_with_own``: not a repeat, and the user has own non-target items that are still
  candidates (with ``exclude_seen``, an item the user bought before is not a candidate);
- ``explore_without_own``: neither.

``explore`` is the last two together. Membership reads the split's scoring input alone:
its histories hold the user's scoring-graph events before the target, which
:func:`graphseq.graph.splits.check_leakage` asserts before every evaluation. On a log with
one behavior nobody has non-target edges: ``repeat`` is empty, and its entry says so.

torch is imported inside the functions: ``graphseq compare`` reads the names without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from graphseq.graph.events import EventTable
    from graphseq.graph.splits import ScoringInput

SEGMENT_NAMES = ("repeat", "explore_with_own", "explore_without_own")  # per-user codes 0, 1, 2
# each reported segment -> the per-user segments it holds
SEGMENTS: dict[str, tuple[str, ...]] = {
    "repeat": ("repeat",),
    "explore": ("explore_with_own", "explore_without_own"),
    "explore_with_own": ("explore_with_own",),
    "explore_without_own": ("explore_without_own",),
}
SEGMENT_METRICS = ("NDCG", "Hit", "MRR")  # reported per segment, at SEGMENT_K
SEGMENT_K = 10  # the cut-off of the segment metrics (the smallest evaluated one if absent)
NO_OWN_EDGES = "no scored user has own non-target edges, as on a log with one behavior"
NO_USERS = "no scored user in this segment"


def own_events(
    ev: EventTable, inp: ScoringInput, exclude_seen: bool = True
) -> tuple[Tensor, Tensor]:
    """``(row, pos)`` of every own non-target history event of each scored row whose item is
    a candidate (with ``exclude_seen``: not an item of one of the row's target events).
    ``pos`` indexes ``inp.hist_idx`` (larger is later).
    Shapes: → (H',) and (H',) long, sorted by row."""
    import torch

    counts = inp.hist_ptr[1:] - inp.hist_ptr[:-1]
    row = torch.repeat_interleave(torch.arange(len(counts)), counts)  # (H,)
    item, tgt = ev.item[inp.hist_idx], ev.is_target[inp.hist_idx]
    keep = ~tgt
    if exclude_seen:
        key = row * ev.num_items + item
        keep &= ~torch.isin(key, key[tgt])
    pos = torch.nonzero(keep).flatten()
    return row[pos], pos


def segment_codes(ev: EventTable, inp: ScoringInput, exclude_seen: bool = True) -> Tensor:
    """The segment of each target of ``inp``: an index into :data:`SEGMENT_NAMES`.
    Shapes: → (B,) int8."""
    import torch

    num = len(inp.target_idx)
    row, pos = own_events(ev, inp, exclude_seen)
    hits = ev.item[inp.hist_idx[pos]] == ev.item[inp.target_idx][row]
    repeat = torch.zeros(num, dtype=torch.bool)
    repeat[row[hits]] = True
    has_own = torch.bincount(row, minlength=num) > 0
    codes = torch.full((num,), 2, dtype=torch.int8)
    codes[has_own] = 1
    codes[repeat] = 0
    return codes


def segment_k(ks: tuple[int, ...]) -> int:
    """:data:`SEGMENT_K` when the evaluation computes it, else its smallest cut-off."""
    return SEGMENT_K if SEGMENT_K in ks else min(ks)


def empty_note(name: str, users: dict[str, int]) -> str:
    """Why segment ``name`` is empty, given the users of each of :data:`SEGMENT_NAMES`."""
    nobody_owns = not (users.get("repeat", 0) or users.get("explore_with_own", 0))
    return NO_OWN_EDGES if nobody_owns and name in ("repeat", "explore_with_own") else NO_USERS


def segment_summary(per_user: dict[str, Tensor], k: int = SEGMENT_K) -> dict[str, dict]:
    """``{segment: {"users", "share", "NDCG@k", "Hit@k", "MRR@k"}}`` for every segment of
    :data:`SEGMENTS`: the mean per-user metrics over its users (``per_user["segment"]``
    holds the codes). An empty segment has ``users`` 0, ``share`` 0 and a ``note``
    (:func:`empty_note`) instead of metrics.
    Shapes: per_user values (N,)."""
    import torch

    codes = per_user["segment"].long()
    total = len(codes)
    counts = dict(zip(SEGMENT_NAMES, torch.bincount(codes, minlength=3).tolist()))
    out = {}
    for name, parts in SEGMENTS.items():
        rows = torch.isin(codes, torch.tensor([SEGMENT_NAMES.index(p) for p in parts]))
        users = int(rows.sum())
        if not users:
            out[name] = {"users": 0, "share": 0.0, "note": empty_note(name, counts)}
            continue
        out[name] = {"users": users, "share": users / total}
        for m in SEGMENT_METRICS:
            out[name][f"{m}@{k}"] = float(per_user[f"{m}@{k}"][rows].double().mean())
    return out
