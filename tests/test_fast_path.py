"""The dictionary-encoded fast path gives exactly the graph of the plain pandas semantics
(drop duplicates keeping the first, stable sort on (timestamp, line), ids by first appearance
in event order), whatever the source: CSV, Parquet, a frame, or a log of plain strings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import data_builders.event_filter as event_filter
from data_builders.build import build_graph
from data_builders.log import CanonicalLog
from data_builders.readers import read_frame, read_log
from data_builders.schema import Schema
from data_builders.store import load_graph, load_id_maps, save_graph

SCHEMA = Schema(user="u", item="i", timestamp="t", behavior="b", value="v")


def _raw_log(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    """Out of time order, many ties, exact duplicates, ids with leading zeros."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "u": [f"{k:03d}" for k in rng.integers(0, 60, n)],
            "i": [f"i{k}" for k in rng.integers(0, 90, n)],
            "t": rng.integers(1_700_000_000, 1_700_000_400, n),
            "b": rng.choice(["click", "cart", "buy"], n, p=[0.6, 0.25, 0.15]),
            "v": rng.choice([1.0, 2.5], n),
        }
    )
    dup = rng.choice(n, 200, replace=False)
    return pd.concat([df, df.iloc[dup]], ignore_index=True)


def _reference(df: pd.DataFrame, line0: int):
    """The old semantics, written plainly in pandas."""
    ev = df.rename(columns={"u": "user", "i": "item", "t": "timestamp", "b": "behavior"})
    ev = ev.assign(line=np.arange(line0, line0 + len(ev)))
    ev = ev.drop_duplicates(["user", "item", "timestamp", "behavior", "v"], keep="first")
    ev = ev.sort_values(["timestamp", "line"], kind="stable").reset_index(drop=True)
    users, items = pd.Index(pd.unique(ev["user"])), pd.Index(pd.unique(ev["item"]))
    edges = {}
    for b in sorted(ev["behavior"].unique()):
        sub = ev[ev["behavior"] == b]
        edges[b] = {
            "edge_index": np.stack(
                [users.get_indexer(sub["user"]), items.get_indexer(sub["item"])]
            ),
            "time": sub["timestamp"].to_numpy(),
            "value": sub["v"].to_numpy(np.float32),
            "order": sub.index.to_numpy(),
        }
    return list(users), list(items), edges, len(df) - len(ev)


def _check(data, ids, report, want) -> None:
    users, items, edges, n_dup = want
    assert list(ids["user"]) == users and list(ids["item"]) == items
    assert report["dropped"]["duplicate_rows"] == n_dup
    assert data.behaviors == sorted(edges)
    for b, attrs in edges.items():
        store = data["user", b, "item"]
        for k, v in attrs.items():
            assert np.array_equal(store[k].numpy(), v), (b, k)
        assert torch.equal(data["item", f"rev_{b}", "user"].edge_index, store.edge_index.flip(0))


@pytest.mark.parametrize("window", [event_filter.DEDUP_WINDOW, 97])
def test_every_source_gives_the_reference_graph(tmp_path: Path, monkeypatch, window) -> None:
    monkeypatch.setattr(event_filter, "DEDUP_WINDOW", window)  # small: many dedup windows
    monkeypatch.setattr("data_builders.readers._table.CHUNK_ROWS", 500)
    monkeypatch.setattr("data_builders.readers.arrow_sources.CHUNK_ROWS", 700)
    df = _raw_log()
    df.to_csv(tmp_path / "e.csv", index=False)
    df.to_parquet(tmp_path / "e.parquet")
    plain = df.rename(columns={"u": "user", "i": "item", "t": "timestamp", "b": "behavior"})
    plain = plain.rename(columns={"v": "value"}).assign(line=np.arange(2, len(df) + 2))
    logs = {
        "csv": read_log("csv", tmp_path / "e.csv", SCHEMA),
        "parquet": read_log("csv", tmp_path / "e.parquet", SCHEMA),
        "frame": read_frame(df, SCHEMA),
        "strings": CanonicalLog(events=plain.astype({"user": str, "item": str})),
    }
    outs = {}
    for name, log in logs.items():
        data, ids, report = build_graph(log)
        _check(data, ids, report, _reference(df, 1 if name in ("parquet", "frame") else 2))
        outs[name] = save_graph(tmp_path / name, data, ids, report)
    base = load_graph(outs["strings"])
    for name, out in outs.items():  # saved directories: same tensors, same id files
        g = load_graph(out)
        for et in base.edge_types:
            for k in ("edge_index", "time", "value", "order"):
                if k in base[et]:
                    assert torch.equal(g[et][k], base[et][k]), (name, et, k)
        assert all(
            list(load_id_maps(out)[k]) == list(load_id_maps(outs["strings"])[k])
            for k in ("user", "item")
        )
        assert g.fingerprint == base.fingerprint


def test_chunked_arrow_strings_from_pandas() -> None:
    """pandas' CSV parser hands back string columns held as several Arrow chunks."""
    import pyarrow as pa

    from data_builders.readers.columns import IdColumn

    big = pa.large_string()
    chunked = pa.chunked_array([pa.array(["a", " b"], big), pa.array(["a", "c"], big)])
    col = IdColumn("user")
    col.add(pd.Series(pd.arrays.ArrowStringArray(chunked)), np.arange(2, 6), Path("x.csv"))
    assert col.finish().tolist() == ["a", "b", "a", "c"]
