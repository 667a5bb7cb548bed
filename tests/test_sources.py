"""Text sources: compressed files for every text format, encodings, and odd headers."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest
import zstandard

from data_builders.errors import DataError
from data_builders.readers import read_log
from data_builders.schema import Schema

COMPRESS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda b: zstandard.ZstdCompressor().compress(b),
}
SCHEMA = Schema(user="user", item="item", timestamp="ts")
LOG = "user,item,ts\nu1,i1,100\nu2,i2,200\n\nu1,i3,300\n"
WANT = [["u1", "i1", 100, 2], ["u2", "i2", 200, 3], ["u1", "i3", 300, 5]]


def _put(path: Path, text: str, suffix: str = "") -> Path:
    data = text.encode()
    out = path.with_name(path.name + suffix)
    out.write_bytes(COMPRESS[suffix](data) if suffix else data)
    return out


def _rows(log) -> list:
    return log.events[["user", "item", "timestamp", "line"]].values.tolist()


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_compressed_csv_log_and_line_numbers(tmp_path: Path, suffix: str) -> None:
    f = _put(tmp_path / "events.csv", LOG, suffix)
    assert _rows(read_log("csv", f, SCHEMA)) == WANT
    bad = _put(tmp_path / "bad.csv", LOG + "u3,i4,later\n", suffix)
    with pytest.raises(DataError) as err:
        read_log("csv", bad, SCHEMA)
    assert (err.value.line, err.value.column) == (6, "ts")
    cut = _put(tmp_path / "cut.csv", LOG + "u3,i4", suffix)
    with pytest.raises(DataError, match=r"cut\.csv.*:6: column 'ts': truncated"):
        read_log("csv", cut, SCHEMA)


def test_compression_is_told_from_bytes_not_name(tmp_path: Path) -> None:
    f = tmp_path / "events.csv"  # gzip data under a plain name
    f.write_bytes(gzip.compress(LOG.encode()))
    assert _rows(read_log("csv", f, SCHEMA)) == WANT


def test_compressed_side_tables(tmp_path: Path) -> None:
    _put(tmp_path / "ev.csv", LOG, ".gz")
    _put(tmp_path / "items.tsv", "item\ttags\ni1\ta|b\ni9\tc\n", ".zst")
    schema = Schema.from_dict(
        {
            "events": "ev.csv.gz",
            "user": "user",
            "item": "item",
            "timestamp": "ts",
            "items": {"file": "items.tsv.zst", "item": "item", "tags": "tags"},
        }
    )
    log = read_log("csv", tmp_path, schema)
    assert log.items[["item", "tags"]].values.tolist() == [["i1", ["a", "b"]], ["i9", ["c"]]]


def test_compressed_movielens_recbole_jodie(tmp_path: Path) -> None:
    ml = tmp_path / "ml"
    ml.mkdir()
    _put(ml / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n", ".gz")
    _put(ml / "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy|Drama\n", ".bz2")
    log = read_log("movielens", ml)
    assert log.events[["user", "item", "behavior"]].values.tolist() == [["1", "1", "rate_high"]]
    assert log.items["tags"].tolist() == [["Comedy", "Drama"]]

    ml1 = tmp_path / "ml100k"
    ml1.mkdir()
    _put(ml1 / "u.data", "1\t5\t3\t881250949\n", ".xz")
    assert read_log("movielens-100k", ml1).events["item"].tolist() == ["5"]

    rb = tmp_path / "rb"
    rb.mkdir()
    _put(rb / "rb.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n", ".xz")
    _put(rb / "rb.item", "item_id:token\tclass:token_seq\n2\tDrama War\n", ".zst")
    log = read_log("recbole", rb)
    assert log.events[["user", "item", "timestamp"]].values.tolist() == [["1", "2", 3]]
    assert log.items["tags"].tolist() == [["Drama", "War"]]

    jd = tmp_path / "jd"
    jd.mkdir()
    header = "user_id,item_id,timestamp,state_label,features\n"
    _put(jd / "wiki.csv", header + "0,1,2.0,0,0.5,0.1\n3,4,5.0,1,0.1,0.2\n", ".gz")
    assert read_log("jodie", jd).events["value"].tolist() == [0.0, 1.0]


def test_corrupt_compressed_file_is_one_clean_line(tmp_path: Path) -> None:
    f = tmp_path / "events.csv.gz"
    f.write_bytes(gzip.compress((LOG * 50).encode())[:60])
    with pytest.raises(DataError) as err:
        read_log("csv", f, SCHEMA)
    msg = str(err.value)
    assert "events.csv.gz" in msg and "corrupt" in msg and msg.isprintable()


def test_binary_input_never_dumps_bytes(tmp_path: Path) -> None:
    f = tmp_path / "events.csv"
    f.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError) as err:
        read_log("csv", f, SCHEMA)
    msg = str(err.value)
    assert err.value.line == 1 and "not utf-8 text" in msg
    assert msg.isprintable() and len(msg) < 200


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_byte_order_marks(tmp_path: Path, encoding: str) -> None:
    f = tmp_path / "events.csv"
    text = LOG.replace("u2", "ü2")
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    f.write_bytes(data)
    log = read_log("csv", f, SCHEMA)
    assert log.events["user"].tolist() == ["u1", "ü2", "u1"]
    assert log.events["line"].tolist() == [2, 3, 5]


def test_duplicated_header_column_is_a_clear_error(tmp_path: Path) -> None:
    f = _put(tmp_path / "dup.csv", "user,item,ts,item\nu1,i1,100,i2\n")
    with pytest.raises(DataError) as err:
        read_log("csv", f, SCHEMA)
    assert (err.value.line, err.value.column) == (1, "item")
    assert "2 times" in str(err.value) and "fields 2, 4" in str(err.value)


def test_trailing_delimiters(tmp_path: Path, recwarn) -> None:
    rows = "u1,i1,100,\nu2,i2,200,\n"
    for name, text in {"a.csv": "user,item,ts\n" + rows, "b.csv": "user,item,ts,\n" + rows}.items():
        log = read_log("csv", _put(tmp_path / name, text), SCHEMA)
        assert _rows(log) == [["u1", "i1", 100, 2], ["u2", "i2", 200, 3]]
    assert not [w for w in recwarn if "ParserWarning" in str(w.category)]
    f = _put(tmp_path / "c.csv", "user,item,ts\nu1,i1,100,\nu2,i2,200,oops\n")
    with pytest.raises(DataError, match=r"c\.csv:3: a field beyond the header"):
        read_log("csv", f, SCHEMA)
    f = _put(tmp_path / "d.csv", "user,item,ts\nu1,i1,100,oops\n")  # pandas drops "oops"
    with pytest.raises(DataError, match=r"d\.csv:2: 4 fields, the header has 3"):
        read_log("csv", f, SCHEMA)
