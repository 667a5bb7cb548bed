"""Side tables named by a schema: items (tags, title), user tag events, KG triples, links.

Paths are relative to the input directory; every file may be compressed. Ids are cleaned like
event ids (stripped; integral floats ``12.0`` written ``12``).
"""

from __future__ import annotations

from pathlib import Path

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


def _side(base: Path, spec: object, cols: list[str], schema: Schema):
    """Read a side table named by ``spec`` (ItemsSpec, KGSpec, ...)."""
    file = base / spec.file
    if not file.is_file():
        raise DataError("side table not found", file=file, hint="paths are relative to the input")
    df, lines = read_table(file, cols, delimiter=spec.delimiter, encoding=schema.encoding)
    return df, lines, file


def read_items(base: Path, schema: Schema) -> pd.DataFrame:
    """The items table: ``item``, ``tags`` (list[str]), ``title``."""
    spec = schema.items
    cols = [c for c in (spec.item, spec.tags, spec.title) if c]
    df, lines, file = _side(base, spec, list(dict.fromkeys(cols)), schema)
    tags = (
        df[spec.tags].map(lambda s: [t.strip() for t in s.split(spec.tag_sep) if t.strip()])
        if spec.tags
        else [[] for _ in range(len(df))]
    )
    return pd.DataFrame(
        {
            "item": clean_ids(df[spec.item], lines, file=file, column=spec.item),
            "tags": list(tags),
            "title": df[spec.title].astype(str) if spec.title else "",
        }
    )


def read_tag_events(base: Path, schema: Schema) -> pd.DataFrame:
    """User tag events: ``user``, ``tag``, ``timestamp`` (int64 s), ``line``."""
    spec = schema.tag_events
    df, lines, file = _side(base, spec, [spec.user, spec.tag, spec.timestamp], schema)
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


def read_pairs(base: Path, spec: object, names: list[str], schema: Schema) -> pd.DataFrame:
    """KG triples or item-entity links: every column an id."""
    cols = [getattr(spec, n) for n in names]
    df, lines, file = _side(base, spec, cols, schema)
    return pd.DataFrame(
        {n: clean_ids(df[c], lines, file=file, column=c) for n, c in zip(names, cols)}
    )
