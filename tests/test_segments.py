"""Repeat and explore segments in every evaluation: they partition the scored users as a
brute-force scan of each user's earlier scoring-graph events says, nothing at or after the
target moves a user, the segment metrics are the means of the per-user rows, a log with one
behavior has an empty repeat segment that says so, and ``graphseq compare`` / ``graphseq
inspect segments`` show every segment with its interval."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from data_builders.build import build_graph
from data_builders.store import load_id_maps, read_graph, save_graph
from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split, scoring_input
from graphseq.inspect import NO_REPEAT, segments, user_segments
from graphseq.segments import NO_OWN_EDGES, SEGMENT_NAMES, SEGMENTS, segment_codes
from graphseq.training.trainer import Trainer


def _save(log, out):
    data, ids, report = build_graph(log)
    return save_graph(out, data, ids, report)


@pytest.fixture(scope="module")
def mixed_graph(small_log, tmp_path_factory):
    """The synthetic click → cart → buy log (every buy is carted first: all repeats) with half
    of the clicks and carts dropped at random and every fourth user's all dropped: users of
    all three segments."""
    ev = small_log.events
    rng = np.random.default_rng(0)
    nontarget = ev["behavior"] != "buy"
    quiet = ev["user"].str[1:].astype(int) % 4 == 0
    drop = nontarget & (quiet | (rng.random(len(ev)) < 0.5))
    log = dataclasses.replace(small_log, events=ev[~drop].reset_index(drop=True), items=None)
    return _save(log, tmp_path_factory.mktemp("graphs") / "mixed")


def _fit(graph, out, **kw):
    cfg = TrainConfig(graph=str(graph), **{"epochs": 1, "seed": 0, **kw})
    return Trainer(cfg, out, progress=False).fit()


@pytest.fixture(scope="module")
def runs(mixed_graph, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for model in ("pop", "mf"):
        _fit(mixed_graph, root / model, model=model)
    return root


def _scan(graph, name: str = "test") -> dict[str, str]:
    """Raw user → segment from each target's earlier scoring-graph events, one at a time."""
    ev = EventTable.from_graph(read_graph(graph))
    split = make_split(ev, "leave_last_out")
    raw, gmask, out = load_id_maps(graph)["user"], split.graph_mask(name), {}
    for t in split.targets[name].tolist():
        u, i = int(ev.user[t]), int(ev.item[t])
        mine = (ev.user[:t] == u) & gmask[:t]
        items, tgt = ev.item[:t][mine].tolist(), ev.is_target[:t][mine].tolist()
        seen = {x for x, b in zip(items, tgt) if b}
        own = {x for x, b in zip(items, tgt) if not b} - seen
        if i in seen:  # a repeat purchase: not scored (exclude_seen)
            continue
        out[raw[u]] = "repeat" if i in own else "explore_with_own" if own else "explore_without_own"
    return out


def test_segments_partition_the_test_users_as_a_scan_of_earlier_events_says(mixed_graph, runs):
    m = json.loads((runs / "pop" / "metrics.json").read_text())
    pu = pd.read_parquet(runs / "pop" / "per_user.parquet")
    want = _scan(mixed_graph)
    assert dict(zip(pu["user"], pu["segment"].astype(str))) == want
    counts = pd.Series(want).value_counts()
    assert all(counts.get(s, 0) >= 5 for s in SEGMENT_NAMES), counts  # every segment is there
    seg, users = m["segments"]["test"], m["protocol"]["test_users"]
    assert seg["repeat"]["users"] + seg["explore"]["users"] == users == len(pu)
    assert (
        seg["explore_with_own"]["users"] + seg["explore_without_own"]["users"]
        == (seg["explore"]["users"])
    )
    for name, parts in SEGMENTS.items():
        assert seg[name]["users"] == sum(counts.get(p, 0) for p in parts)
        assert seg[name]["share"] == pytest.approx(seg[name]["users"] / users)
    valid = m["segments"]["valid"]  # validation too, on its own scoring graph
    assert valid["repeat"]["users"] + valid["explore"]["users"] == m["protocol"]["valid_users"]
    assert valid["repeat"]["users"] == sum(
        s == "repeat" for s in _scan(mixed_graph, "valid").values()
    )


def test_segment_metrics_are_the_means_of_their_per_user_rows(runs):
    m = json.loads((runs / "mf" / "metrics.json").read_text())
    pu = pd.read_parquet(runs / "mf" / "per_user.parquet")
    for name, parts in SEGMENTS.items():
        rows = pu[pu["segment"].isin(parts)]
        got = m["segments"]["test"][name]
        assert set(got) == {"users", "share", "NDCG@10", "Hit@10", "MRR@10"}
        for k in ("NDCG@10", "Hit@10", "MRR@10"):
            assert got[k] == pytest.approx(rows[k].mean(), abs=1e-6)
    n = m["segments"]["test"]
    weighted = n["repeat"]["share"] * n["repeat"]["NDCG@10"]
    weighted += n["explore"]["share"] * n["explore"]["NDCG@10"]
    assert weighted == pytest.approx(m["test"]["NDCG@10"], abs=1e-6)


def test_membership_reads_nothing_at_or_after_the_target(tmp_path, event_graph):
    """u0 carts its last purchase only after buying it: no repeat; u1 carts an item that only
    u0 buys: an own item; u2 carts its last purchase before: a repeat; u3 carts an item it
    bought before: no own item, since that item is not a candidate (exclude_seen)."""
    rows = []
    for u in range(4):
        rows += [(f"u{u}", f"b{u}{k}", 10 * u + 2 * k, "buy") for k in range(3)]
    rows += [("u0", "b02", 5, "cart"), ("u1", "b02", 1, "cart"), ("u2", "b22", 21, "cart"),
             ("u3", "b30", 31, "cart")]  # fmt: skip
    graph = event_graph(rows, tmp_path / "g")
    ev = EventTable.from_graph(read_graph(graph))
    inp = scoring_input(ev, make_split(ev, "leave_last_out"), "test")
    raw = list(load_id_maps(graph)["user"][ev.user[inp.target_idx].numpy()])
    got = dict(zip(raw, (SEGMENT_NAMES[c] for c in segment_codes(ev, inp).tolist())))
    assert got == {"u0": "explore_without_own", "u1": "explore_with_own", "u2": "repeat",
                   "u3": "explore_without_own"}  # fmt: skip
    assert SEGMENT_NAMES[segment_codes(ev, inp, exclude_seen=False)[raw.index("u3")]] == (
        "explore_with_own"
    )
    assert user_segments(graph, "leave_last_out", (0.8, 0.9)).to_dict() == got


def test_a_log_with_one_behavior_has_an_empty_repeat_segment_that_says_so(
    small_log, tmp_path, capsys
):
    ev = small_log.events
    log = dataclasses.replace(small_log, events=ev[ev["behavior"] == "buy"], items=None)
    m = _fit(_save(log, tmp_path / "g"), tmp_path / "run", model="pop")
    seg = m["segments"]["test"]
    assert seg["repeat"] == {"users": 0, "share": 0.0, "note": NO_OWN_EDGES}
    assert seg["explore_with_own"] == {"users": 0, "share": 0.0, "note": NO_OWN_EDGES}
    assert seg["explore"]["users"] == m["protocol"]["test_users"]
    assert seg["explore"]["NDCG@10"] == pytest.approx(m["test"]["NDCG@10"])
    assert main(["compare", str(tmp_path / "run"), "--resamples", "50"]) == 0
    err = capsys.readouterr().err
    assert f"repeat: no test user: {NO_OWN_EDGES}\n" in err and "nan" not in err.lower()
    res = segments([str(tmp_path / "run")], n=50)
    assert res["compare"][0]["segments"]["repeat"]["note"] == NO_OWN_EDGES
    assert res["own_items"] == {"users": 0, "note": NO_REPEAT}


def test_compare_shows_every_segment_with_its_interval(runs, capsys):
    args = ["compare", str(runs / "pop"), str(runs / "mf"), "--resamples", "200"]
    assert main(args) == 0
    err = capsys.readouterr().err
    seg = json.loads((runs / "mf" / "metrics.json").read_text())["segments"]["test"]
    for name in SEGMENTS:
        head = f"\n{name}: {seg[name]['users']:,} test users ({seg[name]['share']:.1%})\n"
        table = err.split(head)[1].split("\n\n")[0].splitlines()
        assert table[2].startswith("pop ") and table[3].startswith("mf ")
        assert f"{seg[name]['NDCG@10']:.4f} ± 0.0000" in table[3] and "[" in table[3]
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mf = rows[1]["segments"]["repeat"]
    assert mf["mean"] == pytest.approx(seg["repeat"]["NDCG@10"], abs=1e-6)
    ci = mf["vs_first"]["ci95"]
    assert ci[0] <= mf["vs_first"]["diff"] <= ci[1] and mf["vs_first"]["users"] == mf["users"]
    assert "segments" in rows[0] and "vs_first" not in rows[0]["segments"]["repeat"]


def test_inspect_segments_recomputes_them_for_runs_from_before(runs, tmp_path):
    """A run whose per_user.parquet has no segment column (written before): inspect computes
    it from the graph, and the comparison is the one of the runs that have it."""
    old = tmp_path / "old"
    old.mkdir()
    for f in (runs / "mf").iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    pu = pd.read_parquet(old / "per_user.parquet").drop(columns="segment")
    pu.to_parquet(old / "per_user.parquet", index=False)
    res = segments([f"pop={runs / 'pop'}", f"mf={old}"], n=200)
    new = segments([f"pop={runs / 'pop'}", f"mf={runs / 'mf'}"], n=200)
    assert res["compare"] == new["compare"] and res["reference"] == "pop"
    assert res["own_items"]["users"] == res["compare"][0]["segments"]["repeat"]["users"]
