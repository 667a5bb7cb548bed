"""A corpus of broken inputs: each must be a DataError naming the file, the line and the column."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.readers import read_log
from data_builders.schema import Schema

SCHEMA = {"user": "user", "item": "item", "timestamp": "ts"}
HEADER = "user,item,ts,rating\n"
OK = "u1,i1,881250949,4\nu2,i2,881250950,3\n"

# name → (file text, extra schema keys, expected line, expected column or None)
CASES = {
    "missing_column": ("user,item,time\nu1,i1,5\n", {}, 1, "ts"),
    "schema_column_absent": (HEADER + OK, {"value": "stars"}, 1, "stars"),
    "unparsable_timestamp": (HEADER + OK + "u3,i3,yesterday,4\n", {}, 4, "ts"),
    "unparsable_iso": ("user,item,ts\nu,i,2020-01-01\nu,i,2020-13-45\n", {}, 3, "ts"),
    "mixed_s_ms": (HEADER + OK + "u3,i3,1600000000000,4\n", {}, 4, "ts"),
    "nan_user": (HEADER + "NaN,i1,881250949,4\n", {}, 2, "user"),
    "empty_item": (HEADER + OK + "u3,,881250951,4\n", {}, 4, "item"),
    "whitespace_user": (HEADER + OK + OK + "   ,i9,881250951,4\n", {}, 6, "user"),
    "empty_timestamp": (HEADER + "u3,i3,,4\n" + OK, {}, 2, "ts"),
    "negative_timestamp": (HEADER + OK + "u3,i3,-5,4\n", {}, 4, "ts"),
    "future_timestamp": (HEADER + OK + "u3,i3,99999999999,4\n", {}, 4, "ts"),
    "future_ms": (HEADER + "u3,i3,99999999999999,4\n", {}, 2, "ts"),
    "bad_value": (HEADER + OK + "u3,i3,881250951,five\n", {"value": "rating"}, 4, "rating"),
    "bad_rule_column": (
        HEADER + "u3,i3,881250951,\n" + OK,
        {"behavior_rule": {"column": "rating"}},
        2,
        "rating",
    ),
    "empty_behavior": ("user,item,ts,b\nu,i,1,click\nu,i,2,\n", {"behavior": "b"}, 3, "b"),
    "empty_file": ("", {}, 1, None),
    "blank_file": ("\n\n", {}, 1, None),
    "header_only": (HEADER, {}, 2, None),
    "header_and_blank_lines": (HEADER + "\n\n", {}, 2, None),
    "wrong_delimiter": ("user;item;ts\nu;i;5\n", {"delimiter": ","}, 1, "user"),
    "no_known_delimiter": ("user item ts\nu i 5\n", {}, 1, "user"),
    "truncated_last_line": (HEADER + OK + "u3,i3,88125", {}, 4, "rating"),
    "truncated_mid_field": (HEADER + OK + "u3,i3", {}, 4, "ts"),
    "extra_field": (HEADER + OK + "u3,i3,881250951,4,oops\n" + OK, {}, 4, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_events_file(tmp_path: Path, name: str) -> None:
    text, extra, line, column = CASES[name]
    f = tmp_path / f"{name}.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_log("csv", f, Schema.from_dict({**SCHEMA, **extra}))
    err, msg = info.value, str(info.value)
    assert f"{name}.csv:{line}:" in msg, msg
    assert (err.file, err.line) == (str(f), line)
    if column is not None:
        assert f"column '{column}'" in msg and err.column == column, msg
    assert err.hint, msg
    assert "\n" not in msg


SCHEMA_CASES = {
    # name → (yaml text, expected line, substring)
    "unknown_key": ("user: u\nitem: i\ntimestmp: t\n", 3, "valid keys: user, item, timestamp"),
    "unknown_nested": (
        "user: u\nitem: i\ntimestamp: t\nitems:\n  file: x\n  tag: y\n",
        6,
        "valid keys: file, item, tags",
    ),
    "wrong_type": ("user: [a, b]\nitem: i\ntimestamp: t\n", 1, "must be a string"),
    "threshold_type": (
        "user: u\nitem: i\ntimestamp: t\nbehavior_rule: {column: r, threshold: high}\n",
        4,
        "must be a number",
    ),
    "targets_type": ("user: u\nitem: i\ntimestamp: t\ntargets: 3\n", 4, "list of strings"),
    "time_unit": (
        "user: u\nitem: i\ntimestamp: t\ntime_unit: hours\n",
        4,
        "auto, s, ms, us, ns, iso",
    ),
    "delimiter": ("user: u\nitem: i\ntimestamp: t\ndelimiter: '::'\n", 4, "one character"),
    "bad_yaml": ("user: u\nitem: [i\n", 3, "invalid YAML"),
}


@pytest.mark.parametrize("name", list(SCHEMA_CASES))
def test_bad_schema(tmp_path: Path, name: str) -> None:
    text, line, needle = SCHEMA_CASES[name]
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    with pytest.raises(DataError) as info:
        Schema.from_yaml(f)
    msg = str(info.value)
    assert f"{name}.yaml:{line}:" in msg and needle in msg, msg


def test_schema_dict_errors() -> None:
    with pytest.raises(DataError, match="lacks the required key 'item'"):
        Schema.from_dict({"user": "u", "timestamp": "t"})
    assert Schema.from_dict({"user": "u", "item": "i"}).timestamp is None  # input order
    with pytest.raises(DataError, match="not both"):
        Schema.from_dict({**SCHEMA, "behavior": "b", "behavior_rule": {"column": "r"}})
    s = Schema.from_dict({**SCHEMA, "delimiter": "tab", "targets": "buy"})
    assert s.delimiter == "\t" and s.targets == ("buy",)
    assert Schema.from_dict(s.to_dict()) == s


def test_unknown_target(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(HEADER + OK)
    with pytest.raises(DataError, match=r"\['buy'\] never occur.*present: interact"):
        read_log("csv", f, Schema.from_dict({**SCHEMA, "targets": ["buy"]}))


def test_valid_oddities(tmp_path: Path) -> None:
    """Unicode, very long and leading-zero ids are valid; build_graph drops and counts
    duplicates."""
    long_id = "ü" * 5000
    rows = ["user,item,ts", "007,0001,10", f"{long_id},日本語 ✓,20", "007,0001,10", " 0x7 ,i,30"]
    f = tmp_path / "odd.csv"
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    log = read_log("csv", f, Schema.from_dict(SCHEMA))
    assert log.events["user"].tolist() == ["007", long_id, "007", "0x7"]
    assert log.events["item"].tolist() == ["0001", "日本語 ✓", "0001", "i"]
    assert log.events["line"].tolist() == [2, 3, 4, 5]
    _, ids, report = build_graph(log)
    assert report["dropped"]["duplicate_rows"] == 1 and report["events"] == 3
    assert list(ids["user"]) == ["007", long_id, "0x7"]


ID = st.text(alphabet="abcxyz019_-éü漢", min_size=1, max_size=12)
ROWS = st.lists(
    st.tuples(ID, ID, st.integers(0, 1_700_000_000), st.sampled_from(["click", "buy"])),
    min_size=1,
    max_size=15,
)


def _write_rows(path: Path, rows: list) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "item", "ts", "b"])
        w.writerows(rows)


@settings(max_examples=40, deadline=None)
@given(rows=ROWS)
def test_random_valid_logs_read(rows: list) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "ok.csv"
        _write_rows(f, rows)
        log = read_log("csv", f, Schema.from_dict({**SCHEMA, "behavior": "b"}))
    unique = list(dict.fromkeys((u, i, t, b) for u, i, t, b in rows))
    got = log.events[["user", "item", "timestamp", "behavior"]].values.tolist()
    assert [tuple(r) for r in got] == [tuple(r) for r in rows]
    assert build_graph(log)[2]["dropped"]["duplicate_rows"] == len(rows) - len(unique)


@settings(max_examples=40, deadline=None)
@given(rows=ROWS, data=st.data())
def test_random_corruption_is_data_error(rows: list, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, len(rows) - 1))
    col = data.draw(st.sampled_from([0, 1, 2]))
    bad = data.draw(
        st.sampled_from(["", "  ", "nan"])
        if col < 2
        else st.sampled_from(["", "garbage", "12:xx", "-1", "1e30", "nan"])
    )
    rows = [list(r) for r in rows]
    rows[k][col] = bad
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "bad.csv"
        _write_rows(f, rows)
        with pytest.raises(DataError) as info:
            read_log("csv", f, Schema.from_dict({**SCHEMA, "behavior": "b"}))
    assert info.value.line == k + 2, str(info.value)
    assert info.value.column == ["user", "item", "ts"][col]


@pytest.mark.parametrize(
    ("rows", "line", "needle"),
    [
        (["1,a,100", "1,b,200", "1,c,300", "1,d,1600000000000"], 5, "mixes seconds"),
        (["1,a,100", "1,b,200", "1,c,2020-01-01", "1,d,2020-01-02"], 4, "earlier rows are s"),
        (["1,a,2020-01-01", "1,b,2020-01-02", "1,c,300", "1,d,400"], 4, "unparsable"),
    ],
)
def test_time_unit_is_kept_across_chunks(tmp_path: Path, monkeypatch, rows, line, needle) -> None:
    monkeypatch.setattr("data_builders.readers._table.CHUNK_ROWS", 2)
    f = tmp_path / "chunks.csv"
    f.write_text("user,item,ts\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=needle) as info:
        read_log("csv", f, Schema.from_dict(SCHEMA))
    assert (info.value.line, info.value.column) == (line, "ts")


def test_parquet_bad_id_names_row(tmp_path: Path) -> None:
    df = pd.DataFrame({"user": ["a", "b", None], "item": ["x", "y", "z"], "ts": [1, 2, 3]})
    df.to_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"e\.parquet:3: column 'user'"):
        read_log("csv", tmp_path / "e.parquet", Schema.from_dict(SCHEMA))


def test_large_file_is_streamed_in_chunks(tmp_path: Path, monkeypatch) -> None:
    """A big log (written line by line by a generator) is parsed in bounded chunks, and an
    error on its very last line still names that physical line."""
    import data_builders.readers._table as table

    monkeypatch.setattr(table, "CHUNK_ROWS", 5_000)
    n = 120_000
    f = tmp_path / "big.csv"
    with open(f, "w") as out:
        out.write("user,item,ts\n")
        out.writelines(f"u{k % 977},i{k % 331},{1_600_000_000 + k}\n" for k in range(n - 1))
        out.write("u1,i1,not-a-time\n")
    sizes: list[int] = []
    real = table.iter_table

    def spy(*args, **kwargs):
        for chunk, lines in real(*args, **kwargs):
            sizes.append(len(chunk))
            yield chunk, lines

    monkeypatch.setattr(table, "iter_table", spy)
    with pytest.raises(DataError) as err:
        read_log("csv", f, Schema(user="user", item="item", timestamp="ts"))
    assert f"big.csv:{n + 1}" in str(err.value) and "ts" in str(err.value)
    assert sizes and max(sizes) <= 5_000 and len(sizes) >= n // 5_000 - 1
