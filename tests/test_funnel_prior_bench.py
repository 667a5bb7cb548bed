"""benchmarks/funnel_prior.py: conversion counts of the scoring graph, the user's own
contribution left out, and the funnel term reordering a user's own items."""

from __future__ import annotations

import math

from data_builders.store import read_graph
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split


def _rows() -> list[tuple]:
    """Users p0–p2 cart X and Y, buy X, never Y. User u carts X, then Y, and buys X last."""
    rows, t = [], 0
    for k in range(3):
        for item, beh in (("X", "cart"), ("Y", "cart"), ("X", "buy"), (f"o{k}a", "buy"),
                          (f"o{k}b", "buy")):  # fmt: skip
            rows.append((f"p{k}", item, t, beh))
            t += 1
    for item, beh in (("q0", "buy"), ("X", "cart"), ("Y", "cart"), ("q1", "buy"), ("X", "buy")):
        rows.append(("u", item, t, beh))
        t += 1
    return rows


def test_conversion_and_the_funnel_term(tmp_path, bench, event_graph):
    mod = bench("funnel_prior")
    ev = EventTable.from_graph(read_graph(event_graph(_rows(), tmp_path / "g")))
    split = make_split(ev, "leave_last_out")
    h = mod.own_items(ev, "test", split)
    # only u's target is one of its own items: X (age 2) and Y (age 1, the more recent)
    assert len(h) == 2 and h["row"].nunique() == 1 and h.loc[h["hit"]].shape[0] == 1
    ages = dict(zip(h["hit"], h["age"]))
    assert ages == {True: 2, False: 1}
    # X: 4 users carted it (u included), 3 bought it after; Y: 4 carted, none bought;
    # the catalogue rate is 3 / 8; u's own cart is left out of n
    rate, s = 3 / 8, mod.SHRINK
    want = {True: math.log((3 + s * rate) / (3 + s)), False: math.log((0 + s * rate) / (3 + s))}
    got = dict(zip(h["hit"], h["log_r"]))
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want)
    assert abs(mod.ndcg(h, 1.0, 0.0) - 1 / math.log2(3)) < 1e-9  # recency puts Y first
    assert mod.ndcg(h, 1.0, 1.0) == 1.0  # the funnel term puts X first
