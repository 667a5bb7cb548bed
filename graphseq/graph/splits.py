"""Splits by event order, and the leakage check that runs before every evaluation.

Every event gets a *stage*:

- ``TRAIN`` (0): in the training graph, and in every scoring graph.
- ``VALID`` (1): held out while validating; in the graph that scores the test split.
- ``TEST`` (2): held out while validating and testing.
- ``FUTURE`` (3): after the user's test event; never used (so appending later events changes
  nothing).

``leave_last_out``: per user with at least 3 target events, the last target event is the
test target, the second-last the validation target; the user's events from the validation
target up to the test target are ``VALID``. ``global_time``: events before the validation
cutoff are ``TRAIN``, up to the test cutoff ``VALID``, the rest ``TEST``; each user's first
target event after a cutoff is that split's target. ``predefined``: the log's own stages
(a ``stage`` column or separate train / valid / test files); each user's first target event
of the validation (test) stage is that split's target, for users with earlier history.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from data_builders.errors import DataError
from graphseq.graph.events import EventTable, csr_rows, time_quantiles, user_csr

TRAIN, VALID, TEST, FUTURE = 0, 1, 2, 3
HELD_OUT = {"valid": VALID, "test": TEST}


class LeakageError(AssertionError):
    """A scoring graph or history holds an event it must not see."""


@dataclass
class Split:
    """Stage per event plus the target event of each user in each held-out split."""

    method: str
    stage: Tensor  # (E,) int8
    targets: dict[str, Tensor]  # split name -> (B,) event indices, one per user
    cutoffs: tuple[int, int] | None = None  # global_time only: (valid_cut, test_cut)

    def graph_mask(self, split: str) -> Tensor:
        """Events in the graph that scores ``split`` ("train"/"valid": TRAIN; "test": +VALID)."""
        if split == "test":
            return self.stage <= VALID
        return self.stage == TRAIN


def _last_target(ev: EventTable, mask: Tensor) -> Tensor:
    """(U,) index of each user's last event where ``mask``; -1 when none."""
    idx = torch.arange(len(ev))
    out = torch.full((ev.num_users,), -1, dtype=torch.int64)
    return out.scatter_reduce(0, ev.user[mask], idx[mask], reduce="amax")


def leave_last_out(ev: EventTable) -> Split:
    """Per user: last target event → test, second-last → validation (users with ≥ 3 targets)."""
    n_targets = torch.bincount(ev.user[ev.is_target], minlength=ev.num_users)
    test = _last_target(ev, ev.is_target)
    not_last = ev.is_target.clone()
    not_last[test[test >= 0]] = False
    valid = _last_target(ev, not_last)
    eligible = n_targets >= 3
    test = torch.where(eligible, test, -1)
    valid = torch.where(eligible, valid, -1)
    idx = torch.arange(len(ev))
    tu, vu = test[ev.user], valid[ev.user]
    stage = torch.zeros(len(ev), dtype=torch.int8)
    held = tu >= 0
    stage[held & (idx >= vu)] = VALID
    stage[held & (idx == tu)] = TEST
    stage[held & (idx > tu)] = FUTURE
    users = torch.nonzero(eligible).flatten()
    return Split("leave_last_out", stage, {"valid": valid[users], "test": test[users]})


def _first_target_after(ev: EventTable, stage: Tensor, st: int, hist_mask: Tensor) -> Tensor:
    idx = torch.arange(len(ev))
    m = ev.is_target & (stage == st)
    first = torch.full((ev.num_users,), len(ev), dtype=torch.int64)
    first = first.scatter_reduce(0, ev.user[m], idx[m], reduce="amin")
    has_hist = torch.bincount(ev.user[hist_mask], minlength=ev.num_users) > 0
    keep = (first < len(ev)) & has_hist
    return first[keep]


def global_time(
    ev: EventTable,
    valid_cut: int | None = None,
    test_cut: int | None = None,
    quantiles: tuple[float, float] = (0.8, 0.9),
) -> Split:
    """One global clock: cutoffs given in seconds, or as quantiles of event time."""
    if valid_cut is None or test_cut is None:
        qv, qt = time_quantiles(ev.time, torch.tensor(quantiles, dtype=torch.float64)).tolist()
    vc = int(qv) if valid_cut is None else int(valid_cut)
    tc = int(qt) if test_cut is None else int(test_cut)
    if not vc < tc:
        raise ValueError(f"global_time needs valid_cut < test_cut, got {vc} >= {tc}")
    stage = torch.zeros(len(ev), dtype=torch.int8)
    stage[ev.time >= vc] = VALID
    stage[ev.time >= tc] = TEST
    targets = {
        "valid": _first_target_after(ev, stage, VALID, stage == TRAIN),
        "test": _first_target_after(ev, stage, TEST, stage <= VALID),
    }
    return Split("global_time", stage, targets, (vc, tc))


def predefined(ev: EventTable) -> Split:
    """The log's own train / valid / test stages (``ev.stage``); targets are each user's first
    target event of the stage. The leakage check then verifies that they respect event order.
    """
    if ev.stage is None:
        raise DataError(
            "split=predefined needs a graph built from a log with stages",
            hint="name a stage column (stage: COLUMN) or train/valid/test sources in the "
            "schema, or use split=leave_last_out",
        )
    stage = ev.stage.to(torch.int8).clone()
    targets = {
        "valid": _first_target_after(ev, stage, VALID, stage == TRAIN),
        "test": _first_target_after(ev, stage, TEST, stage <= VALID),
    }
    return Split("predefined", stage, targets)


SPLITS = ("leave_last_out", "global_time", "predefined")


def make_split(ev: EventTable, method: str, quantiles: tuple[float, float] = (0.8, 0.9)) -> Split:
    """``leave_last_out``, ``global_time`` (cutoffs at the ``quantiles`` of event time) or
    ``predefined``."""
    if method == "leave_last_out":
        return leave_last_out(ev)
    if method == "global_time":
        return global_time(ev, quantiles=quantiles)
    if method == "predefined":
        return predefined(ev)
    raise ValueError(f"unknown split {method!r}; valid: {', '.join(SPLITS)}")


@dataclass
class ScoringInput:
    """What scores one held-out split: graph events, targets and each target's history.

    ``history`` is a CSR over targets: target ``b`` sees events
    ``hist_idx[hist_ptr[b]:hist_ptr[b+1]]`` (event indices, in event order).
    """

    split: str
    graph_mask: Tensor  # (E,) bool
    target_idx: Tensor  # (B,) event indices
    hist_ptr: Tensor  # (B+1,)
    hist_idx: Tensor  # (H,)


def scoring_input(ev: EventTable, split: Split, name: str) -> ScoringInput:
    """The graph and histories that score split ``name`` ("valid" or "test")."""
    gmask = split.graph_mask(name)
    tgt = split.targets[name]
    g_idx = torch.nonzero(gmask).flatten()
    indptr, perm = user_csr(ev.user[g_idx], ev.num_users)
    # Under both splits every graph event of a user precedes that user's target;
    # check_leakage asserts it rather than filtering silently here.
    hist_ptr, hist = csr_rows(indptr, g_idx[perm], ev.user[tgt])
    return ScoringInput(name, gmask, tgt, hist_ptr, hist)


def check_leakage(ev: EventTable, split: Split, inp: ScoringInput) -> None:
    """Raise :class:`LeakageError` unless ``inp`` obeys the protocol (README, "Evaluation protocol").

    - the scoring graph holds no held-out event of this split or a later one, of any user;
    - targets are held-out events of this split and not in the graph;
    - every history event is in the graph, belongs to the target's user and precedes the
      target in event order;
    - ``global_time``: no graph event at or after the split's cutoff.
    """
    held = HELD_OUT[inp.split]
    g_stage = split.stage[inp.graph_mask]
    if g_stage.numel() and int(g_stage.max()) >= held:
        n = int((g_stage >= held).sum())
        raise LeakageError(f"{inp.split}: scoring graph holds {n} held-out events")
    if bool(inp.graph_mask[inp.target_idx].any()):
        raise LeakageError(f"{inp.split}: a target event is in the scoring graph")
    exact = split.method in ("leave_last_out", "predefined")
    if exact and bool((split.stage[inp.target_idx] != held).any()):
        raise LeakageError(f"{inp.split}: a target is not a held-out event of this split")
    counts = inp.hist_ptr[1:] - inp.hist_ptr[:-1]
    owner = torch.repeat_interleave(inp.target_idx, counts)
    if not bool(inp.graph_mask[inp.hist_idx].all()):
        raise LeakageError(f"{inp.split}: a history event is not in the scoring graph")
    if not bool((ev.user[inp.hist_idx] == ev.user[owner]).all()):
        raise LeakageError(f"{inp.split}: a history holds another user's event")
    if not bool((inp.hist_idx < owner).all()):
        raise LeakageError(f"{inp.split}: a history holds an event at or after its target")
    if split.cutoffs is not None:
        cut = split.cutoffs[0] if inp.split == "valid" else split.cutoffs[1]
        g_time = ev.time[inp.graph_mask]
        if g_time.numel() and int(g_time.max()) >= cut:
            raise LeakageError(f"{inp.split}: scoring graph holds an edge at or after the cutoff")
