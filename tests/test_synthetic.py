"""The synthetic generator: determinism, schema, funnels, round trip and the planted signal."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_builders.errors import DataError
from data_builders.synthetic import SyntheticSpec, generate, spec_for_events
from data_builders.synthetic_io import read_synthetic, write_synthetic

SPEC = SyntheticSpec()


@pytest.fixture(scope="module")
def log():
    return generate(SPEC)


def _tags(log) -> dict[str, set[str]]:
    return {i: set(t) for i, t in zip(log.items["item"], log.items["tags"])}


def test_same_seed_same_log(log):
    again = generate(SPEC)
    pd.testing.assert_frame_equal(again.events, log.events)
    pd.testing.assert_frame_equal(again.items, log.items)


def test_different_seeds_differ(log):
    other = generate(SyntheticSpec(seed=1))
    assert len(other.events) != len(log.events) or not other.events.equals(log.events)
    assert not other.items["tags"].equals(log.items["tags"])


def test_schema(log):
    ev = log.events
    assert list(ev.columns) == ["user", "item", "timestamp", "behavior", "value", "line"]
    assert [str(t) for t in ev.dtypes] == ["str", "str", "int64", "str", "float64", "int64"]
    assert np.array_equal(ev["line"], np.arange(2, len(ev) + 2))
    assert ev["timestamp"].is_monotonic_increasing
    assert set(ev["behavior"]) == {"click", "cart", "buy"}
    assert ev["user"].nunique() == SPEC.num_users
    assert 0.9 * 60_000 < len(ev) < 1.1 * 60_000
    assert log.targets == ["buy"]
    items = log.items
    assert list(items.columns) == ["item", "tags", "title"] and len(items) == SPEC.num_items
    assert items["tags"].map(len).between(1, 3).all()
    assert set().union(*items["tags"]) == {f"t{i:02d}" for i in range(SPEC.num_tags)}
    assert items.loc[17, "title"] == f"item 17 ({' '.join(items.loc[17, 'tags'])})"


def test_funnel_order(log):
    ev = log.events
    first = ev.groupby(["user", "item", "behavior"])["timestamp"].min().unstack()
    carted = first["cart"].notna()
    assert (first.loc[carted, "click"] < first.loc[carted, "cart"]).all()
    bought = first["buy"].notna()
    assert (first.loc[bought, "cart"] < first.loc[bought, "buy"]).all()


def test_funnel_rates(log):
    counts = log.events["behavior"].value_counts()
    assert counts["cart"] / counts["click"] == pytest.approx(SPEC.cart_rate, abs=0.03)
    assert counts["buy"] / counts["cart"] == pytest.approx(SPEC.buy_rate, abs=0.05)


def test_min_buys_and_no_repeat_buy(log):
    buys = log.events[log.events["behavior"] == "buy"]
    assert buys.groupby("user").size().reindex(log.events["user"].unique()).min() >= 3
    assert not buys.duplicated(["user", "item"]).any()


def test_min_buys_with_tiny_catalogue():
    # one item gets nearly all clicks, so buys must come from rewritten clicks
    spec = SyntheticSpec(
        num_users=30, num_items=3, num_tags=1, max_tags=1, zipf_exponent=30.0, seq_prob=0.0
    )
    buys = generate(spec).events.query("behavior == 'buy'")
    assert (buys.groupby("user").size() == 3).all() and buys["user"].nunique() == 30
    assert not buys.duplicated(["user", "item"]).any()


def test_write_read_roundtrip(tmp_path: Path):
    # two generation blocks, several chunks and merge windows
    spec = SyntheticSpec(num_users=4500, events_per_user=20.0, min_clicks=5, seed=3)
    out = write_synthetic(tmp_path / "syn", spec, chunk_events=20_000, progress=False)
    back, want = read_synthetic(out), generate(spec)
    # the reader keeps ids dictionary-encoded (Categorical of the raw strings)
    as_str = {c: "str" for c in ("user", "item", "behavior")}
    pd.testing.assert_frame_equal(back.events.astype(as_str), want.events)
    pd.testing.assert_frame_equal(back.items, want.items)
    assert back.targets == ["buy"]
    meta = json.loads((out / "spec.json").read_text())
    assert meta["events"] == len(want.events) and meta["spec"]["seed"] == 3
    header = (out / "events.csv").open().readline().strip()
    assert header == "user_id,item_id,timestamp,behavior,value"
    assert read_synthetic(out / "events.csv").events.equals(back.events)
    pq = write_synthetic(
        tmp_path / "pq", spec, chunk_events=20_000, progress=False, format="parquet"
    )
    from_pq = read_synthetic(pq).events
    assert from_pq["line"].tolist() == list(range(1, len(want.events) + 1))  # Parquet rows
    cols = ["user", "item", "timestamp", "behavior", "value"]
    pd.testing.assert_frame_equal(from_pq[cols].astype(as_str), want.events[cols])


def test_read_missing_path_raises(tmp_path: Path):
    with pytest.raises(DataError, match="not found"):
        read_synthetic(tmp_path / "nope")
    with pytest.raises(DataError, match="events.csv"):
        read_synthetic(tmp_path)


def test_spec_validation_and_sizing():
    with pytest.raises(DataError, match="cart_rate|rates"):
        SyntheticSpec(cart_rate=1.5)
    with pytest.raises(DataError, match="num_tags"):
        SyntheticSpec(num_items=5, num_tags=20)
    spec = spec_for_events(120_000, num_items=300, seed=7)
    assert (spec.num_users, spec.num_items, spec.seed) == (2000, 300, 7)


def test_next_buy_shares_a_tag(log):
    tags = _tags(log)
    buys = log.events[log.events["behavior"] == "buy"]
    prev = buys.groupby("user")["item"].shift()
    keep = prev.notna()
    pairs = list(zip(prev[keep], buys["item"][keep]))
    shuffled = np.random.default_rng(0).permutation([b for _, b in pairs])
    observed = np.mean([bool(tags[a] & tags[b]) for a, b in pairs])
    baseline = np.mean([bool(tags[a] & tags[b]) for (a, _), b in zip(pairs, shuffled)])
    assert observed > baseline + 0.1


def _mean_drift(log) -> float:
    """Mean total variation between a user's first-third and last-third click tag mixes."""
    tags = _tags(log)
    names = sorted(set().union(*tags.values()))
    onehot = {i: np.isin(names, sorted(t)).astype(float) for i, t in tags.items()}
    clicks = log.events[log.events["behavior"] == "click"]
    tvs = []
    for items in clicks.groupby("user")["item"].agg(list):
        third = len(items) // 3
        a = sum(onehot[i] for i in items[:third])
        b = sum(onehot[i] for i in items[-third:])
        tvs.append(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())
    return float(np.mean(tvs))


def test_tag_taste_drifts(log):
    drifting = _mean_drift(log)
    steady = _mean_drift(generate(SyntheticSpec(drift=0.0)))
    assert drifting > 0.5 and drifting > steady + 0.06


def test_order_matters(log):
    clicks = log.events[log.events["behavior"] == "click"]
    nxt = clicks.groupby("user")["item"].shift(-1)
    keep = nxt.notna() & (nxt != clicks["item"])
    pairs = list(zip(clicks["item"][keep], nxt[keep]))
    top = {a: c.most_common(1)[0][0] for a, c in _successors(pairs).items()}
    forward = np.mean([top[a] == b for a, b in pairs])
    backward = np.mean([top.get(b) == a for a, b in pairs])
    assert forward > 0.4 and forward > 3 * backward


def _successors(pairs: list[tuple[str, str]]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for a, b in pairs:
        out.setdefault(a, Counter())[b] += 1
    return out


def test_popularity_is_weak(log):
    buys = log.events[log.events["behavior"] == "buy"]
    assert buys["item"].value_counts().iloc[:10].sum() / len(buys) < 0.25
