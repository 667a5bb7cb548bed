"""Side tables named by a schema: items (tags, title), user tag events, KG triples, links.

Each is a file (paths relative to the input directory; every file may be compressed) or a
table in memory (a pandas or polars DataFrame or an Arrow table, handed to ``read_frame``),
its columns named by the schema's section either way. Ids are cleaned like event ids
(stripped; integral floats ``12.0`` written ``12``); errors name the file, or the table
(``DataFrame items``), and its row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from data_builders.readers._table import read_table
from data_builders.readers.columns import NA_STRINGS, clean_strings
from data_builders.schema import Schema
from data_builders.timeparse import parse_timestamps


def clean_ids(
    values: pd.Series, lines: np.ndarray, *, file: Path, column: str, na_strings: bool = True
) -> pd.Series:
    """Stripped string ids; an empty id (or, with ``na_strings``, one spelled like NaN / null /
    None) is a DataError naming the line."""
    ids = clean_strings(values)
    bad = ids.isna() | (ids == "")
    if na_strings:
        bad |= ids.isin(NA_STRINGS)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"missing id {str(values.iloc[i])!r}",
            file=file,
            line=int(lines[i]),
            column=column,
            hint=f"fill in {column} or drop the row",
        )
    return ids


def _side(base: Path | None, spec: object, cols: list[str], schema: Schema, frame: Any = None):
    """The columns ``cols`` of a side table described by ``spec`` (ItemsSpec, KGSpec, ...):
    the in-memory ``frame`` when given, else its file under ``base``."""
    if frame is not None:
        return _frame_table(frame, cols, f"DataFrame {_NAMES[type(spec).__name__]}")
    if spec.file is None or base is None:
        what = _NAMES[type(spec).__name__]
        raise DataError(
            f"the schema's {what} section names no file",
            hint=f"give its file, or pass the table itself (read_frame(..., {what}=df))",
        )
    file = base / spec.file
    if not file.is_file():
        raise DataError("side table not found", file=file, hint="paths are relative to the input")
    df, lines = read_table(file, cols, delimiter=spec.delimiter, encoding=schema.encoding)
    return df, lines, file


_NAMES = {"ItemsSpec": "items", "KGSpec": "kg", "LinksSpec": "links", "TagEventsSpec": "tag_events"}


def _frame_table(frame: Any, cols: list[str], name: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    """An in-memory side table as string columns (list cells kept), rows numbered from 1."""
    if isinstance(frame, pd.DataFrame):
        df = frame
    elif hasattr(frame, "to_pandas"):  # polars, Arrow
        df = frame.to_pandas()
    else:
        raise DataError(f"{name} must be a pandas or polars DataFrame or an Arrow table, "
                        f"not {type(frame).__name__}")  # fmt: skip
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{name} has no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))})",
            hint="name its columns in the schema's section for it",
        )
    out = df[list(dict.fromkeys(cols))].copy()
    for c in out.columns:
        lists = out[c].map(lambda v: isinstance(v, (list, tuple)))
        if not lists.any():
            out[c] = out[c].map(lambda v: "" if v is None or v != v else str(v))
    return out.reset_index(drop=True), np.arange(1, len(out) + 1), name


def read_items(base: Path | None, schema: Schema, frame: Any = None) -> pd.DataFrame:
    """The items table: ``item``, ``tags`` (list[str]), ``title``; from the file the schema
    names, or from ``frame`` (whose tags cells may be lists, or strings joined by tag_sep)."""
    spec = schema.items
    cols = [c for c in (spec.item, spec.tags, spec.title) if c]
    df, lines, file = _side(base, spec, list(dict.fromkeys(cols)), schema, frame)

    def split(cell: Any) -> list[str]:
        parts = cell if isinstance(cell, (list, tuple)) else str(cell).split(spec.tag_sep)
        return [str(t).strip() for t in parts if str(t).strip()]

    tags = df[spec.tags].map(split) if spec.tags else [[] for _ in range(len(df))]
    return pd.DataFrame(
        {
            "item": clean_ids(df[spec.item], lines, file=file, column=spec.item),
            "tags": list(tags),
            "title": df[spec.title].astype(str) if spec.title else "",
        }
    )


def read_tag_events(base: Path | None, schema: Schema, frame: Any = None) -> pd.DataFrame:
    """User tag events: ``user``, ``tag``, ``timestamp`` (int64 s), ``line``."""
    spec = schema.tag_events
    df, lines, file = _side(base, spec, [spec.user, spec.tag, spec.timestamp], schema, frame)
    return pd.DataFrame(
        {
            "user": clean_ids(df[spec.user], lines, file=file, column=spec.user),
            "tag": clean_ids(df[spec.tag], lines, file=file, column=spec.tag),
            "timestamp": parse_timestamps(
                df[spec.timestamp],
                unit=schema.time_unit,
                file=file,
                column=spec.timestamp,
                lines=lines,
            ),
            "line": lines,
        }
    )


def read_pairs(
    base: Path | None, spec: object, names: list[str], schema: Schema, frame: Any = None
) -> pd.DataFrame:
    """KG triples or item-entity links: every column an id."""
    cols = [getattr(spec, n) for n in names]
    df, lines, file = _side(base, spec, cols, schema, frame)
    return pd.DataFrame(
        {n: clean_ids(df[c], lines, file=file, column=c) for n, c in zip(names, cols)}
    )
