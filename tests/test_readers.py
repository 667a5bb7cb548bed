"""Readers on tiny fixtures written in each real format (and ML-100K itself when reachable)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.readers import FORMATS, read_log
from data_builders.readers.movielens import GENRES_100K
from data_builders.schema import Schema

RATINGS = [  # user, item, rating, timestamp
    ("1", "1", 5, 874965758),
    ("1", "2", 3, 876893171),
    ("2", "1", 4, 888550871),
    ("007", "3", 2, 880000000),
]
MOVIES = {  # item → (title, genres)
    "1": ("Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    "2": ("GoldenEye (1995)", ["Action", "Adventure", "Thriller"]),
    "3": ("Four Rooms (1995)", ["Thriller"]),
}
EVENT_KEY = ["user", "item", "timestamp", "behavior", "value"]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def _grouplens_100k(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _write(root / "u.data", "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    rows = []
    for item, (title, genres) in MOVIES.items():
        flags = "|".join("1" if g in genres else "0" for g in GENRES_100K)
        rows.append(f"{item}|{title}|01-Jan-1995||http://us.imdb.com/M/x|{flags}\n")
    _write(root / "u.item", "".join(rows), encoding="latin-1")
    _write(root / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES_100K)) + "\n")
    _write(root / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    return root


def _recbole(root: Path, name: str = "tiny") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    _write(
        root / f"{name}.inter", inter + "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    )
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    item += "".join(f"{i}\t{t}\t1995\t{' '.join(g)}\n" for i, (t, g) in MOVIES.items())
    _write(root / f"{name}.item", item)
    _write(
        root / f"{name}.kg",
        "head_id:token\trelation_id:token\ttail_id:token\n"
        "m.01\tfilm.film.genre\tm.02\nm.01\tfilm.film.actor\tm.03\n",
    )
    _write(root / f"{name}.link", "item_id:token\tentity_id:token\n1\tm.01\n2\tm.04\n")
    return root


def _check_events(events: pd.DataFrame) -> None:
    assert list(events.columns) == ["user", "item", "timestamp", "behavior", "value", "line"]
    for c in ("user", "item", "behavior"):  # dictionary-encoded: codes + raw id strings
        assert isinstance(events[c].dtype, pd.CategoricalDtype), c
        assert pd.api.types.is_string_dtype(events[c].cat.categories), c
    assert events.dtypes[["timestamp", "value", "line"]].tolist() == ["int64", "float64", "int64"]


def test_movielens_100k(tmp_path: Path) -> None:
    log = read_log("movielens-100k", _grouplens_100k(tmp_path / "ml"))
    ev = log.events
    _check_events(ev)
    assert ev["user"].tolist() == ["1", "1", "2", "007"]
    assert ev["behavior"].tolist() == ["rate_high", "rate_low", "rate_high", "rate_low"]
    assert ev["value"].tolist() == [5.0, 3.0, 4.0, 2.0]
    assert ev["line"].tolist() == [1, 2, 3, 4]  # no header in u.data
    assert log.targets is None
    items = log.items.set_index("item")
    assert items.loc["1", "tags"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["2", "title"] == "GoldenEye (1995)"


def test_recbole_matches_grouplens(tmp_path: Path) -> None:
    a = read_log("movielens-100k", _grouplens_100k(tmp_path / "ml"))
    b = read_log("recbole", _recbole(tmp_path / "rb"))
    _check_events(b.events)
    pd.testing.assert_frame_equal(a.events[EVENT_KEY], b.events[EVENT_KEY])
    assert b.events["line"].tolist() == [2, 3, 4, 5]  # header is line 1
    items = b.items.set_index("item")
    assert items.loc["1", "title"] == "Toy Story (1995)"  # token_seq title kept whole
    assert items.loc["1", "tags"] == MOVIES["1"][1]
    assert b.kg.to_dict("list") == {
        "head": ["m.01", "m.01"],
        "relation": ["film.film.genre", "film.film.actor"],
        "tail": ["m.02", "m.03"],
    }
    assert b.links.to_dict("list") == {"item": ["1", "2"], "entity": ["m.01", "m.04"]}


def test_recbole_without_rating_is_interact(tmp_path: Path) -> None:
    _write(tmp_path / "x.inter", "user_id:token\titem_id:token\ttimestamp:float\n01\ta b\t5\n")
    log = read_log("recbole", tmp_path / "x.inter")
    assert log.events[EVENT_KEY].values.tolist() == [["01", "a b", 5, "interact", 1.0]]
    assert log.items is None and log.kg is None


def test_recbole_bad_header(tmp_path: Path) -> None:
    _write(tmp_path / "x.inter", "user_id:token\titem_id:tok\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(DataError, match=r"x\.inter:1: column 'item_id:tok'"):
        read_log("recbole", tmp_path)


def test_movielens_latest(tmp_path: Path) -> None:
    _write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n1,3,3.5,964981247\n2,1,0.5,964982224\n",
    )
    _write(
        tmp_path / "movies.csv",
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        "3,Empty (2000),(no genres listed)\n",
    )
    _write(
        tmp_path / "tags.csv",
        'userId,movieId,tag,timestamp\n2,1,"funny, sweet",1445714994\n2,3,None,1445714996\n',
    )
    log = read_log("movielens", tmp_path)
    _check_events(log.events)
    assert log.events["behavior"].tolist() == ["rate_high", "rate_low", "rate_low"]
    assert log.events["value"].tolist() == [4.0, 3.5, 0.5]
    items = log.items.set_index("item")
    assert items.loc["1", "title"] == "American President, The (1995)"
    assert items.loc["1", "tags"] == ["Comedy", "Drama", "Romance"]
    assert items.loc["3", "tags"] == []
    te = log.tag_events
    assert te["tag"].tolist() == ["funny, sweet", "None"]  # a tag spelled None is a tag
    assert te["timestamp"].tolist() == [1445714994, 1445714996]
    assert te["line"].tolist() == [2, 3]


def test_movielens_1m(tmp_path: Path) -> None:
    _write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    _write(
        tmp_path / "movies.dat",
        "1193::Star Wars: Episode IV (1977)::Action|Sci-Fi\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n",
        encoding="latin-1",
    )
    log = read_log("movielens", tmp_path)
    assert log.events[EVENT_KEY].values.tolist() == [
        ["1", "1193", 978300760, "rate_high", 5.0],
        ["1", "661", 978302109, "rate_low", 3.0],
    ]
    assert log.events["line"].tolist() == [1, 2]
    items = log.items.set_index("item")
    assert items.loc["1193", "title"] == "Star Wars: Episode IV (1977)"
    assert items.loc["1193", "tags"] == ["Action", "Sci-Fi"]


def test_jodie(tmp_path: Path) -> None:
    header = "user_id,item_id,timestamp,state_label,comma_separated_list_of_features\n"
    rows = "0,0,0.0,0,0.1,-0.2,0.3\n1,0,36.5,1,0.0,0.0,0.0\n0,2,77.0,0,1.0,2.0,3.0\n"
    log = read_log("jodie", _write(tmp_path / "wikipedia.csv", header + rows))
    _check_events(log.events)
    assert log.events[EVENT_KEY].values.tolist() == [
        ["0", "0", 0, "interact", 0.0],
        ["1", "0", 36, "interact", 1.0],
        ["0", "2", 77, "interact", 0.0],
    ]
    _write(tmp_path / "wikipedia.csv", header + rows + "1,3,80.0,0,0.5\n")
    with pytest.raises(DataError, match=r"wikipedia\.csv:5: .*truncated"):
        read_log("jodie", tmp_path)


def test_csv_with_schema_and_side_tables(tmp_path: Path) -> None:
    _write(
        tmp_path / "log.tsv",
        "uid\tiid\ttime\tevent\tprice\n"
        "007\t0042\t2024-05-01T12:00:00Z\tclick\t0\n"
        "007\t0042\t2024-05-01T12:01:00+00:00\tbuy\t9.5\n"
        "008\tÄpfel\t2024-05-02\tclick\t0\n",
    )
    _write(tmp_path / "items.csv", 'iid,cats,name\n0042,shoes;red,"Red shoes, size 9"\n')
    _write(tmp_path / "kg.csv", "h,r,t\n0042,brand,acme\n")
    _write(tmp_path / "links.csv", "iid,ent\n0042,acme\n")
    _write(tmp_path / "tags.csv", "uid,tag,time\n007,sporty,2024-05-01T11:00:00Z\n")
    _write(
        tmp_path / "schema.yaml",
        """\
events: log.tsv
user: uid
item: iid
timestamp: time
behavior: event
value: price
targets: [buy]
items: {file: items.csv, item: iid, tags: cats, tag_sep: ";", title: name}
kg: {file: kg.csv, head: h, relation: r, tail: t}
links: {file: links.csv, item: iid, entity: ent}
tag_events: {file: tags.csv, user: uid, tag: tag, timestamp: time}
""",
    )
    log = read_log("csv", tmp_path, Schema.from_yaml(tmp_path / "schema.yaml"))
    ev = log.events
    _check_events(ev)
    assert ev["user"].tolist() == ["007", "007", "008"]
    assert ev["item"].tolist() == ["0042", "0042", "Äpfel"]
    assert ev["timestamp"].tolist() == [1714564800, 1714564860, 1714608000]
    assert ev["behavior"].tolist() == ["click", "buy", "click"]
    assert ev["value"].tolist() == [0.0, 9.5, 0.0]
    assert log.targets == ["buy"]
    assert log.items.to_dict("records") == [
        {"item": "0042", "tags": ["shoes", "red"], "title": "Red shoes, size 9"}
    ]
    assert log.kg.values.tolist() == [["0042", "brand", "acme"]]
    assert log.links.values.tolist() == [["0042", "acme"]]
    assert log.tag_events[["user", "tag", "timestamp"]].values.tolist() == [
        ["007", "sporty", 1714561200]
    ]


def test_csv_behavior_rule_and_ms(tmp_path: Path) -> None:
    f = _write(tmp_path / "r.csv", "u|i|ms|stars\n1|a|1600000000000|4\n1|b|1600000001999|3.5\n")
    schema = Schema.from_dict(
        {
            "user": "u",
            "item": "i",
            "timestamp": "ms",
            "behavior_rule": {"column": "stars", "threshold": 4},
        }
    )
    ev = read_log("csv", f, schema).events
    assert ev["timestamp"].tolist() == [1600000000, 1600000001]
    assert ev["behavior"].tolist() == ["rate_high", "rate_low"]
    assert ev["value"].tolist() == [4.0, 3.5]  # the rule's column is the value


def test_csv_chunked_lines_and_duplicates(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("data_builders.readers._table.CHUNK_ROWS", 2)
    rows = ["u,i,t", "a,x,10", "a,x,10", "", "b,y,20", "c,z,30", "a,x,10", "d,w,40"]
    f = _write(tmp_path / "c.csv", "\n".join(rows) + "\n")
    log = read_log("csv", f, Schema(user="u", item="i", timestamp="t"))
    assert log.events["line"].tolist() == [2, 3, 5, 6, 7, 8]  # duplicates go in build_graph
    assert log.dropped == {"blank_lines": 1}
    assert log.events["behavior"].unique().tolist() == ["interact"]
    data, _, report = build_graph(log)
    assert report["dropped"] == {"blank_lines": 1, "duplicate_rows": 2}
    assert report["events"] == 4 and data["user", "interact", "item"].time.tolist() == [
        10,
        20,
        30,
        40,
    ]
    assert capsys.readouterr().err == ""  # no progress bar for small files


def test_csv_parquet(tmp_path: Path) -> None:
    df = pd.DataFrame({"u": ["007", "8"], "i": ["a", "b"], "t": [100, 200]})
    df.to_parquet(tmp_path / "e.parquet")
    log = read_log("csv", tmp_path / "e.parquet", Schema(user="u", item="i", timestamp="t"))
    assert log.events[["user", "timestamp", "line"]].values.tolist() == [
        ["007", 100, 1],
        ["8", 200, 2],
    ]


def test_read_log_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="valid formats: csv, sql, movielens-100k"):
        read_log("parquet", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_log("recbole", tmp_path / "nope")
    with pytest.raises(DataError, match="needs a schema"):
        read_log("csv", _write(tmp_path / "a.csv", "u,i,t\n1,2,3\n"))
    assert set(FORMATS) == {
        "csv",
        "sql",
        "movielens-100k",
        "movielens",
        "recbole",
        "jodie",
        "synthetic",
    }


def test_recbole_real_ml100k(ml100k_dir: Path) -> None:
    """The real data (conftest's session fixture runs shared/datasets/get_ml100k.sh)."""
    log = read_log("recbole", ml100k_dir)
    ev = log.events
    _check_events(ev)
    assert len(ev) == 100_000 and build_graph(log)[2]["dropped"] == {"duplicate_rows": 0}
    assert ev["user"].nunique() == 943 and ev["item"].nunique() == 1682
    assert (ev["behavior"] == "rate_high").sum() == 55_375
    assert (ev["timestamp"].min(), ev["timestamp"].max()) == (874724710, 893286638)
    assert len(log.items) == 1682 and log.items["tags"].map(len).sum() == 2893
    assert "Children's" in set(log.items["tags"].explode())
    assert (log.items["title"].str.contains(" ")).sum() > 1000  # titles kept whole
    assert (len(log.kg), len(log.links)) == (91_631, 1_598)


def test_read_log_targets_and_synthetic(tmp_path: Path) -> None:
    schema = Schema(user="u", item="i", timestamp="t", targets=("rate_high",))
    log = read_log("movielens-100k", _grouplens_100k(tmp_path / "ml"), schema)
    assert log.targets == ["rate_high"]
    import data_builders.synthetic_io as synthetic

    out = synthetic.write_synthetic(
        tmp_path / "syn",
        synthetic.SyntheticSpec(num_users=20, num_items=10, num_tags=3, seed=1),  # noqa
        progress=False,
    )
    log = read_log("synthetic", out)
    assert len(log.events) > 0 and log.events["user"].str.startswith("u").all()
