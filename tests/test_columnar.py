"""Columnar sources: Parquet directories and hive datasets, DuckDB queries, frames in memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.readers import read_frame, read_log
from data_builders.schema import Schema

SCHEMA = Schema(user="u", item="i", timestamp="t", behavior="b")
FRAME = pd.DataFrame(
    {
        "u": ["007", "8", "007", "9"],
        "i": ["a", "b", "c", "a"],
        "t": [100, 200, 300, 400],
        "b": ["click", "buy", "buy", "click"],
    }
)


def _rows(log) -> list:
    return log.events[["user", "item", "timestamp", "behavior"]].values.tolist()


WANT = [list(r) for r in FRAME.itertuples(index=False)]


def test_parquet_directory_in_sorted_path_order(tmp_path: Path) -> None:
    d = tmp_path / "events"
    d.mkdir()
    FRAME.iloc[2:].to_parquet(d / "part-1.parquet")  # written first, read second
    FRAME.iloc[:2].to_parquet(d / "part-0.parquet")
    log = read_log("csv", d, SCHEMA)
    assert _rows(log) == WANT
    assert log.events["line"].tolist() == [1, 2, 3, 4]  # rows numbered on across files


def test_hive_partitioned_dataset_with_partition_column(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for month, part in (("01", FRAME.iloc[:2]), ("02", FRAME.iloc[2:])):
        (root / "year=2024" / f"month={month}").mkdir(parents=True)
        part.drop(columns="b").to_parquet(root / "year=2024" / f"month={month}" / "x.parquet")
    schema = Schema(user="u", item="i", timestamp="t", behavior="month")
    log = read_log("csv", root, schema)
    assert log.events["behavior"].tolist() == ["1", "1", "2", "2"]  # partition keys as columns
    assert log.events["user"].tolist() == FRAME["u"].tolist()


def test_float_id_column_in_parquet_reads_as_integers(tmp_path: Path, caplog) -> None:
    df = pd.DataFrame({"u": [12.0, 3.0, 12.0], "i": [1.0, None, 2.0], "t": [1, 2, 3]})
    df.loc[1, "i"] = 7.0
    df.to_parquet(tmp_path / "f.parquet")
    with caplog.at_level("WARNING"):
        log = read_log("csv", tmp_path / "f.parquet", Schema(user="u", item="i", timestamp="t"))
    assert log.events["user"].tolist() == ["12", "3", "12"]
    assert log.events["item"].tolist() == ["1", "7", "2"]
    assert "integral floats" in caplog.text
    _, ids, report = build_graph(log)
    assert list(ids["user"]) == ["12", "3"]
    assert report["float_ids"] == {"u": 3, "i": 3}


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.parquet"
    data = (tmp_path / "ok.parquet").write_bytes(b"") or None
    FRAME.to_parquet(tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    f.write_bytes(data[:40] + b"\x00" * 50 + data[90:])
    with pytest.raises(DataError) as err:
        read_log("csv", f, SCHEMA)
    assert "bad.parquet" in str(err.value) and str(err.value).isprintable()
    d = tmp_path / "dir"
    d.mkdir()
    FRAME.to_parquet(d / "a.parquet")
    (d / "b.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"b\.parquet"):
        read_log("csv", d, SCHEMA)


def test_parquet_missing_id_names_file_and_row(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    FRAME.to_parquet(d / "a.parquet")
    bad = FRAME.copy()
    bad.loc[1, "u"] = None
    bad.to_parquet(d / "b.parquet")
    with pytest.raises(DataError, match=r"b\.parquet:2: column 'u'"):
        read_log("csv", d, SCHEMA)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "categorical"])
def test_read_frame(kind: str) -> None:
    frame = {
        "pandas": FRAME,
        "polars": pl.from_pandas(FRAME),
        "arrow": pa.Table.from_pandas(FRAME),
        "categorical": FRAME.astype({"u": "category", "b": "category"}),
    }[kind]
    log = read_frame(frame, SCHEMA)
    assert _rows(log) == WANT
    assert log.events["line"].tolist() == [1, 2, 3, 4]
    data, ids, _ = build_graph(log)
    assert list(ids["user"]) == ["007", "8", "9"]


def test_read_frame_errors_name_the_row() -> None:
    bad = FRAME.copy()
    bad.loc[2, "t"] = None
    with pytest.raises(DataError, match=r"DataFrame:3: column 't': missing timestamp"):
        read_frame(bad, SCHEMA)
    with pytest.raises(DataError, match=r"DataFrame:1: column 'x': column not found"):
        read_frame(FRAME, Schema(user="x", item="i"))


duckdb = pytest.importorskip("duckdb")


def test_sql_over_a_database_file(tmp_path: Path) -> None:
    db = tmp_path / "events.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE events AS SELECT * FROM FRAME")
    con.close()
    query = "SELECT u, i, t, b FROM events WHERE t >= 200"
    log = read_log("sql", db, SCHEMA, query=query)
    assert _rows(log) == WANT[1:]
    with pytest.raises(DataError) as err:
        read_log("sql", db, SCHEMA, query="SELECT u, i, t, b FROM nope")
    assert "events.duckdb[query]" in str(err.value) and "nope" in str(err.value)
    with pytest.raises(DataError, match=r"\[query\]:2: column 't': missing timestamp"):
        read_log("sql", db, SCHEMA, query="SELECT u, i, NULLIF(t, 200) AS t, b FROM events")


def test_sql_without_database_reads_files_in_the_query(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    FRAME.iloc[:2].to_parquet(tmp_path / "parts" / "0.parquet")
    FRAME.iloc[2:].to_parquet(tmp_path / "parts" / "1.parquet")
    FRAME.to_csv(tmp_path / "events.csv", index=False)
    q = "SELECT * FROM read_parquet('parts/*.parquet') ORDER BY t"
    assert _rows(read_log("sql", tmp_path, SCHEMA, query=q)) == WANT
    schema = Schema.from_dict(
        {
            "user": "u",
            "item": "i",
            "timestamp": "t",
            "behavior": "b",
            "events": {"sql": "SELECT * FROM read_csv('events.csv', all_varchar=true)"},
        }
    )
    log = read_log("sql", tmp_path, schema)
    assert _rows(log) == WANT  # "007" kept as a string id


def test_cli_build_format_sql(tmp_path: Path) -> None:
    FRAME.to_parquet(tmp_path / "e.parquet")
    (tmp_path / "s.yaml").write_text("user: u\nitem: i\ntimestamp: t\nbehavior: b\n")
    base = [sys.executable, "-m", "graphseq", "build", "--format", "sql", "--input"]
    res = subprocess.run(
        [*base, str(tmp_path), "--query", "SELECT * FROM 'e.parquet' WHERE b = 'click'"]
        + ["--schema", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "g"), "--json"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["events"] == 2
    res = subprocess.run(
        [*base, str(tmp_path), "--query", "SELEC nonsense"]
        + ["--schema", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "h")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "[query]" in res.stderr and not (tmp_path / "h").exists()


def test_parquet_partitions_keep_pq_row_order(tmp_path: Path) -> None:
    """Many row groups: rows come back in file order (the event order tie-breaker)."""
    n = 5000
    df = pd.DataFrame({"u": [f"u{k % 7}" for k in range(n)], "i": "x", "t": 5, "b": "buy"})
    df["i"] = [f"i{k}" for k in range(n)]
    pq.write_table(pa.Table.from_pandas(df), tmp_path / "rg.parquet", row_group_size=300)
    log = read_log("csv", tmp_path / "rg.parquet", SCHEMA)
    assert log.events["item"].tolist() == df["i"].tolist()
