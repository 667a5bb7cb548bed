"""RecBole atomic files: ``<name>.inter`` (required), ``.item``, ``.kg``, ``.link`` (optional).

Headers are ``field:type`` (``token``, ``token_seq``, ``float``, ``float_seq``); files are
tab-separated. ``token_seq`` fields are split on spaces, except free text: any field whose name
contains ``title`` (``movie_title``) stays whole. Item tags come from ``class``, ``genre`` and
``categories``. An ``.inter`` with ``rating`` gets the rating rule (``rate_high`` for >= 4,
else ``rate_low``; value = rating); without it every event is ``interact`` with value 1.
``.user`` is not read: the canonical log has no user table.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers._source import SUFFIXES, find, plain_name
from data_builders.readers._table import concat_chunks, iter_table, read_header
from data_builders.readers.columns import EventColumns, parse_numbers
from data_builders.readers.csv_reader import rating_behavior
from data_builders.readers.side_tables import clean_ids

TYPES = ("token", "token_seq", "float", "float_seq")
TAG_FIELDS = ("class", "genre", "categories")  # item fields that hold tags / genres
HIGH_RATING = 4.0  # ratings at or above this are "rate_high"


def read_recbole(dir: str | Path) -> CanonicalLog:
    """Read a RecBole atomic dataset directory (or its ``.inter`` file); any file may be
    compressed (``ml-100k.inter.gz``, ``.bz2``, ``.xz``, ``.zst``)."""
    inter = _find_inter(Path(dir))
    root, name = inter.parent, plain_name(inter)[: -len(".inter")]
    dropped: dict[str, int] = {}
    cols = EventColumns("user_id", "item_id", "rating", time_column="timestamp")
    for df, lines in _chunks(inter, ["user_id", "item_id", "timestamp"], dropped):
        behavior: object = "interact"
        value: object = 1.0
        if "rating" in df:
            value = parse_numbers(df["rating"], lines, file=inter, column="rating")
            behavior = rating_behavior(value, HIGH_RATING)
        cols.add(
            inter,
            lines,
            user=df["user_id"],
            item=df["item_id"],
            behavior=behavior,
            timestamp=df["timestamp"],
            value=value,
        )
    events, info = cols.finish()
    side = {ext: find(root, f"{name}.{ext}") for ext in ("item", "kg", "link")}
    return CanonicalLog(
        events=events,
        items=_items(side["item"]) if side["item"] else None,
        kg=_ids(side["kg"], {"head_id": "head", "relation_id": "relation", "tail_id": "tail"})
        if side["kg"]
        else None,
        links=_ids(side["link"], {"item_id": "item", "entity_id": "entity"})
        if side["link"]
        else None,
        dropped=dropped,
        source=f"recbole:{inter}",
        info=info,
    )


def _find_inter(path: Path) -> Path:
    if path.is_file() and plain_name(path).endswith(".inter"):
        return path
    if not path.is_dir():
        raise DataError("not a RecBole directory or .inter file", file=path)
    found = sorted(p for s in ("", *SUFFIXES) for p in path.glob(f"*.inter{s}"))
    preferred = find(path, f"{path.name}.inter")
    if preferred in found:
        return preferred
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise DataError(
            f"expected one .inter file, found {names}",
            file=path,
            hint="name the .inter file itself as the input",
        )
    return found[0]


def _fields(file: Path) -> tuple[list[str], dict[str, str]]:
    """Parse the ``field:type`` header: (names in order, name → type)."""
    names, types = [], {}
    for raw in read_header(file, "\t", quoting=csv.QUOTE_NONE):
        field, sep, typ = raw.rpartition(":")
        if not sep or typ not in TYPES:
            raise DataError(
                f"header field {raw!r} is not 'name:type'",
                file=file,
                line=1,
                column=raw,
                hint=f"types are {', '.join(TYPES)}",
            )
        names.append(field)
        types[field] = typ
    return names, types


def _chunks(file: Path, required: list[str], dropped: dict[str, int] | None = None):
    """Chunks with columns renamed to field names; required fields checked."""
    names, types = _fields(file)
    for field in required:
        if field not in types:
            raise DataError(
                "field not found",
                file=file,
                line=1,
                column=field,
                hint=f"fields present: {', '.join(names)}",
            )
    for df, lines in iter_table(file, delimiter="\t", quoting=csv.QUOTE_NONE, dropped=dropped):
        df.columns = names
        yield df, lines


def _whole(file: Path, required: list[str]) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    df, lines = concat_chunks(list(_chunks(file, required)))
    return df, lines, _fields(file)[1]


def _items(file: Path) -> pd.DataFrame:
    df, lines, types = _whole(file, ["item_id"])
    tags: list[list[str]] = [[] for _ in range(len(df))]
    for field in (f for f in TAG_FIELDS if f in types):
        if types[field] == "token_seq":
            split = df[field].str.split()
        else:
            split = df[field].str.strip().map(lambda s: [s] if s else [])
        tags = [a + [t for t in b if t not in a] for a, b in zip(tags, split)]
    title_field = next((f for f in types if "title" in f), None)
    return pd.DataFrame(
        {
            "item": clean_ids(df["item_id"], lines, file=file, column="item_id"),
            "tags": tags,
            "title": df[title_field].str.strip() if title_field else "",
        }
    )


def _ids(file: Path, rename: dict[str, str]) -> pd.DataFrame:
    """A table of id columns (``.kg``, ``.link``), renamed to canonical names."""
    df, lines, _ = _whole(file, list(rename))
    return pd.DataFrame(
        {new: clean_ids(df[old], lines, file=file, column=old) for old, new in rename.items()}
    )
