"""GroupLens MovieLens readers: ML-100K (``u.data``), ML-1M (``*.dat``), ml-latest(-small).

Every reader applies the rating rule: behavior ``rate_high`` for rating >= 4, ``rate_low``
below; ``value`` is the rating; all behaviors are targets. Genres become item tags; user tags
of ml-latest (``tags.csv``) become ``tag_events``. User demographics (``u.user``,
``users.dat``) are not read: the canonical log has no user table.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers._source import find, read_text
from data_builders.readers._table import concat_chunks, iter_columns, iter_table, read_table
from data_builders.readers.columns import EventColumns, parse_numbers
from data_builders.readers.csv_reader import rating_behavior
from data_builders.readers.side_tables import clean_ids
from data_builders.timeparse import parse_timestamps

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
HIGH_RATING = 4.0  # ratings at or above this are "rate_high"
NO_GENRES = "(no genres listed)"  # ml-latest's marker for an item without genres


def read_movielens_100k(dir: str | Path) -> CanonicalLog:
    """Read GroupLens ML-100K: ``u.data`` (required), ``u.item`` and ``u.genre`` (optional).

    Every file may also be compressed (``u.data.gz``, ``.bz2``, ``.xz``, ``.zst``).
    """
    root = _root(dir, "u.data")
    data = find(root, "u.data")
    names = ["user", "item", "rating", "timestamp"]
    dropped: dict[str, int] = {}
    cols = _columns(names)
    for chunk, lines in iter_table(
        data, delimiter="\t", header=False, names=names, quoting=csv.QUOTE_NONE, dropped=dropped
    ):
        _rating_events(cols, chunk, lines, data, names)
    events, info = cols.finish()
    items = None
    if u_item := find(root, "u.item"):
        genres = _genres_100k(find(root, "u.genre"))
        cols = ["item", "title", "release", "video", "url", *genres]
        df, lines = _whole(u_item, "|", cols, header=False)
        flags = df[list(genres)].to_numpy() == "1"
        items = pd.DataFrame(
            {
                "item": clean_ids(df["item"], lines, file=u_item, column="item"),
                "tags": [[g for g, f in zip(genres, row) if f] for row in flags],
                "title": df["title"].astype(str),
            }
        )
    return CanonicalLog(
        events=events, items=items, dropped=dropped, source=f"movielens-100k:{root}", info=info
    )


def read_movielens(dir: str | Path) -> CanonicalLog:
    """Read ml-latest / ml-latest-small (``ratings.csv``) or ML-1M (``ratings.dat``).

    A directory with ``u.data`` is read as ML-100K. Files may be compressed (``.gz`` ...).
    """
    root = Path(dir)
    root = root.parent if root.is_file() else root
    if find(root, "ratings.csv"):
        return _read_latest(root)
    if find(root, "ratings.dat"):
        return _read_1m(root)
    if find(root, "u.data"):
        return read_movielens_100k(root)
    raise DataError(
        "no MovieLens ratings file found",
        file=root,
        hint="expected ratings.csv (ml-latest), ratings.dat (ml-1m) or u.data",
    )


def _read_latest(root: Path) -> CanonicalLog:
    file = find(root, "ratings.csv")
    names = ["userId", "movieId", "rating", "timestamp"]
    dropped: dict[str, int] = {}
    cols = _columns(names)
    for chunk, lines in iter_columns(file, names, delimiter=",", dropped=dropped):
        _rating_events(cols, chunk, lines, file, names)
    events, info = cols.finish()
    items = tag_events = None
    if f := find(root, "movies.csv"):
        df, lines = _whole(f, ",", ["movieId", "title", "genres"])
        items = _items(df["movieId"], df["title"], df["genres"].str.split("|"), lines, f)
    if f := find(root, "tags.csv"):
        df, lines = _whole(f, ",", ["userId", "movieId", "tag", "timestamp"])
        tag_events = _tag_events(df["userId"], df["tag"], df["timestamp"], lines, f)
    return CanonicalLog(
        events=events,
        items=items,
        tag_events=tag_events,
        dropped=dropped,
        source=f"movielens:{root}",
        info=info,
    )


def _read_1m(root: Path) -> CanonicalLog:
    file = find(root, "ratings.dat")
    # "::" separated integers: read with ":" (fast C parser) and keep every other field
    names = ["user", "_a", "item", "_b", "rating", "_c", "timestamp"]
    dropped: dict[str, int] = {}
    used = ["user", "item", "rating", "timestamp"]
    cols = _columns(used)
    for chunk, lines in iter_table(
        file,
        delimiter=":",
        header=False,
        names=names,
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        dropped=dropped,
    ):
        _rating_events(cols, chunk, lines, file, used)
    events, info = cols.finish()
    items = tag_events = None
    if f := find(root, "movies.dat"):
        df, lines = _read_dat(f, ["item", "title", "genres"])
        items = _items(df["item"], df["title"], df["genres"].str.split("|"), lines, f)
    if f := find(root, "tags.dat"):  # ML-10M style user tags
        df, lines = _read_dat(f, ["user", "item", "tag", "timestamp"])
        tag_events = _tag_events(df["user"], df["tag"], df["timestamp"], lines, f)
    return CanonicalLog(
        events=events,
        items=items,
        tag_events=tag_events,
        dropped=dropped,
        source=f"movielens-1m:{root}",
        info=info,
    )


def _columns(names: list[str]) -> EventColumns:
    u, i, r, t = names
    return EventColumns(u, i, r, time_unit="s", time_column=t)


def _rating_events(
    cols: EventColumns, df: pd.DataFrame, lines: np.ndarray, file: Path, names: list[str]
) -> None:
    """user, item, rating, timestamp columns (named by ``names``) → one events chunk."""
    u, i, r, t = names
    rating = parse_numbers(df[r], lines, file=file, column=r)
    behavior = rating_behavior(rating, HIGH_RATING)
    cols.add(file, lines, user=df[u], item=df[i], behavior=behavior, timestamp=df[t], value=rating)


def _items(
    item: pd.Series, title: pd.Series, genres: pd.Series, lines: np.ndarray, file: Path
) -> pd.DataFrame:
    tags = [[g.strip() for g in gs if g.strip() and g.strip() != NO_GENRES] for gs in genres]
    return pd.DataFrame(
        {
            "item": clean_ids(item, lines, file=file, column="item"),
            "tags": tags,
            "title": title.astype(str),
        }
    )


def _tag_events(
    user: pd.Series, tag: pd.Series, ts: pd.Series, lines: np.ndarray, file: Path
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": clean_ids(user, lines, file=file, column="user"),
            "tag": clean_ids(tag, lines, file=file, column="tag", na_strings=False),
            "timestamp": parse_timestamps(ts, unit="s", file=file, column="timestamp", lines=lines),
            "line": lines,
        }
    )


def _genres_100k(path: Path | None) -> tuple[str, ...]:
    """Genre names from ``u.genre`` (``name|index`` lines), else the standard 19."""
    if path is None:
        return GENRES_100K
    pairs = [ln.rsplit("|", 1) for ln in read_text(path, "latin-1").splitlines()]
    pairs = [(int(i), g) for g, i in (p for p in pairs if len(p) == 2 and p[1].strip().isdigit())]
    return tuple(g for _, g in sorted(pairs)) or GENRES_100K


def _whole(
    file: Path, sep: str, names: list[str], *, header: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """A whole small table; with a header, checks the named columns exist."""
    if header:
        return read_table(file, names, delimiter=sep)
    chunks = iter_table(
        file, delimiter=sep, header=False, names=names, encoding="latin-1", quoting=csv.QUOTE_NONE
    )
    return concat_chunks(list(chunks))


def _read_dat(file: Path, names: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """A small ``::``-separated latin-1 file (fields may hold single colons)."""
    rows, lines = [], []
    for n, raw in enumerate(read_text(file, "latin-1").splitlines(), start=1):
        if not raw.strip():
            continue
        fields = raw.split("::")
        if len(fields) != len(names):
            raise DataError(
                f"{len(fields)} '::'-separated fields, expected {len(names)}",
                file=file,
                line=n,
                column=names[min(len(fields), len(names) - 1)],
            )
        rows.append(fields)
        lines.append(n)
    if not rows:
        raise DataError("file is empty", file=file, line=1)
    return pd.DataFrame(rows, columns=names, dtype=str), np.asarray(lines, dtype=np.int64)


def _root(dir: str | Path, required: str) -> Path:
    root = Path(dir)
    root = root.parent if root.is_file() else root
    if find(root, required) is None:
        raise DataError(f"{required} not found", file=root, hint=f"expected {root / required}")
    return root
