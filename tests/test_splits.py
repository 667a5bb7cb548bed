"""Splits by event order and the leakage checker (it must catch injected leaks)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from data_builders.build import build_graph
from data_builders.log import CanonicalLog
from graphseq.graph.events import EventTable
from graphseq.graph.splits import (
    FUTURE,
    TEST,
    TRAIN,
    VALID,
    LeakageError,
    ScoringInput,
    check_leakage,
    global_time,
    leave_last_out,
    scoring_input,
)


def _log(rows, targets=None) -> CanonicalLog:
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp", "behavior"])
    df["value"] = 1.0
    df["line"] = range(2, len(df) + 2)
    return CanonicalLog(events=df, targets=targets)


def _events(rows, targets=None) -> EventTable:
    data, _, _ = build_graph(_log(rows, targets))
    return EventTable.from_graph(data)


# user a: 4 buys and a click after the last buy; user b: 2 buys only (not held out)
ROWS = [
    ("a", "i1", 10, "buy"), ("a", "i2", 20, "buy"), ("b", "i1", 20, "buy"),
    ("a", "i3", 30, "buy"), ("a", "i4", 30, "click"), ("a", "i5", 40, "buy"),
    ("b", "i2", 50, "buy"), ("a", "i6", 60, "click"),
]  # fmt: skip


def test_event_order_is_stable_on_timestamp_then_line():
    ev = _events(ROWS, ["buy"])
    assert ev.time.tolist() == sorted(ev.time.tolist())
    # a/i3 (line 5) and a/i4 (line 6) share t=30: input order kept
    items = ev.item.tolist()
    assert items.index(2) < items.index(3)


def test_leave_last_out_stages():
    ev = _events(ROWS, ["buy"])
    s = leave_last_out(ev)
    stages = {(int(u), int(i)): int(st) for u, i, st in zip(ev.user, ev.item, s.stage)}
    # user a = 0, items by first appearance: i1=0 i2=1 i3=2 i4=3 i5=4 i6=5; user b = 1
    assert stages[(0, 0)] == TRAIN and stages[(0, 1)] == TRAIN
    assert stages[(0, 2)] == VALID  # second-last buy
    assert stages[(0, 3)] == VALID  # click between valid and test target
    assert stages[(0, 4)] == TEST  # last buy
    assert stages[(0, 5)] == FUTURE  # after the test event
    assert stages[(1, 0)] == TRAIN and stages[(1, 1)] == TRAIN  # < 3 buys: never held out
    assert ev.item[s.targets["test"]].tolist() == [4]
    assert ev.item[s.targets["valid"]].tolist() == [2]


@pytest.mark.parametrize("name", ["valid", "test"])
def test_scoring_input_passes_and_histories_are_earlier_events(name):
    ev = _events(ROWS, ["buy"])
    s = leave_last_out(ev)
    inp = scoring_input(ev, s, name)
    check_leakage(ev, s, inp)
    hist_items = ev.item[inp.hist_idx].tolist()
    assert hist_items == ([0, 1] if name == "valid" else [0, 1, 2, 3])
    g_stage = s.stage[inp.graph_mask]
    assert int(g_stage.max()) == (TRAIN if name == "valid" else VALID)


def _leaky(inp: ScoringInput, **changes) -> ScoringInput:
    d = dict(split=inp.split, graph_mask=inp.graph_mask.clone(), target_idx=inp.target_idx,
             hist_ptr=inp.hist_ptr, hist_idx=inp.hist_idx)  # fmt: skip
    d.update(changes)
    return ScoringInput(**d)


def test_checker_catches_held_out_event_in_graph():
    ev = _events(ROWS, ["buy"])
    s = leave_last_out(ev)
    inp = scoring_input(ev, s, "test")
    mask = inp.graph_mask.clone()
    mask[s.targets["test"]] = True  # the test edge leaks into the scoring graph
    with pytest.raises(LeakageError):
        check_leakage(ev, s, _leaky(inp, graph_mask=mask))
    inp = scoring_input(ev, s, "valid")
    mask = inp.graph_mask.clone()
    mask[s.stage == VALID] = True  # validation-period events used to score validation
    with pytest.raises(LeakageError, match="held-out"):
        check_leakage(ev, s, _leaky(inp, graph_mask=mask))


def test_checker_catches_later_event_in_history():
    ev = _events(ROWS, ["buy"])
    s = leave_last_out(ev)
    inp = scoring_input(ev, s, "valid")
    future = torch.nonzero(s.stage == FUTURE).flatten()
    mask = inp.graph_mask.clone()
    mask[future] = True
    hist = torch.cat([inp.hist_idx, future])
    ptr = torch.tensor([0, len(hist)])
    with pytest.raises(LeakageError):
        check_leakage(ev, s, _leaky(inp, graph_mask=mask, hist_idx=hist, hist_ptr=ptr))


def test_checker_catches_other_users_history():
    ev = _events(ROWS, ["buy"])
    s = leave_last_out(ev)
    inp = scoring_input(ev, s, "test")
    other = torch.nonzero((ev.user == 1) & inp.graph_mask).flatten()[:1]
    hist = torch.cat([inp.hist_idx, other])
    with pytest.raises(LeakageError, match="another user"):
        check_leakage(ev, s, _leaky(inp, hist_idx=hist, hist_ptr=torch.tensor([0, len(hist)])))


def test_global_time_split_and_cutoff_leak():
    ev = _events(ROWS, ["buy"])
    s = global_time(ev, valid_cut=30, test_cut=50)
    assert s.stage[ev.time < 30].eq(TRAIN).all() and s.stage[ev.time >= 50].eq(TEST).all()
    for name in ("valid", "test"):
        inp = scoring_input(ev, s, name)
        check_leakage(ev, s, inp)
        cut = 30 if name == "valid" else 50
        assert int(ev.time[inp.graph_mask].max()) < cut
        assert (ev.time[inp.target_idx] >= cut).all()
    inp = scoring_input(ev, s, "valid")
    mask = inp.graph_mask | (ev.time == 30)
    with pytest.raises(LeakageError):
        check_leakage(ev, s, _leaky(inp, graph_mask=mask))


def test_global_time_quantile_cutoffs_are_ordered(small_log):
    data, _, _ = build_graph(small_log)
    ev = EventTable.from_graph(data)
    s = global_time(ev)
    vc, tc = s.cutoffs
    assert vc < tc
    for name in ("valid", "test"):
        check_leakage(ev, s, scoring_input(ev, s, name))


def test_global_time_quantiles_above_2_pow_24_events():
    n = 2**24 + 1  # torch.quantile refuses inputs this large
    ev = EventTable(
        user=torch.zeros(n, dtype=torch.int64),
        item=torch.zeros(n, dtype=torch.int64),
        time=torch.arange(n, dtype=torch.int64),
        behavior=torch.zeros(n, dtype=torch.int64),
        is_target=torch.zeros(n, dtype=torch.bool),
        behaviors=["buy"],
        num_users=1,
        num_items=1,
    )
    s = global_time(ev)
    assert s.cutoffs == (int(0.8 * 2**24), int(0.9 * 2**24))
