"""``read_csv_log`` (a custom delimited or parquet log described by a :class:`Schema`), and the
column checks every reader uses to build canonical events (ids, numbers, the rating rule).

Reading is chunked (see ``_table``): a multi-GB file is never parsed in one call. Lines are
physical: the header is line 1, data row ``i`` (0-based) is line ``i + 2``; quoted fields must
not hold newlines. For parquet, "line" is the 1-based row number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from data_builders.log import EVENT_COLUMNS, CanonicalLog
from data_builders.readers._table import CHUNK_ROWS, check_columns, iter_columns, read_table
from data_builders.schema import Schema
from data_builders.timeparse import parse_timestamps, parse_timestamps_with_unit, to_float

NA_STRINGS = frozenset({"nan", "NaN", "NAN", "None", "null", "NULL", "<NA>", "N/A", "n/a", "#N/A"})


def read_csv_log(path: str | Path, schema: Schema) -> CanonicalLog:
    """Read a custom delimited (or .parquet) log described by a :class:`Schema`.

    ``path`` is the events file, or a directory holding ``schema.events`` and the side tables
    (side-table paths are relative to the directory, or to the events file's folder).
    """
    path = Path(path)
    if path.is_dir():
        if schema.events is None:
            raise DataError(
                "the input is a directory but the schema names no 'events' file",
                file=path,
                hint="set 'events: FILE' in the schema",
            )
        base, file = path, path / schema.events
    else:
        base, file = path.parent, path
    if not file.is_file():
        raise DataError("events file not found", file=file, hint="check 'events' in the schema")
    rule = schema.behavior_rule
    wanted = [schema.user, schema.item, schema.timestamp]
    wanted += [c for c in (schema.behavior, schema.value, rule and rule.column) if c]
    wanted = list(dict.fromkeys(wanted))
    dropped: dict[str, int] = {}
    parts, unit = [], None
    for chunk, lines in _event_chunks(file, schema, wanted, dropped):
        user = clean_ids(chunk[schema.user], lines, file=file, column=schema.user)
        item = clean_ids(chunk[schema.item], lines, file=file, column=schema.item)
        ts, unit = parse_timestamps_with_unit(
            chunk[schema.timestamp],
            unit=schema.time_unit,
            expected=unit,
            file=file,
            column=schema.timestamp,
            lines=lines,
        )
        value: object = 1.0
        if schema.value or rule:
            col = schema.value or rule.column
            value = parse_numbers(chunk[col], lines, file=file, column=col)
        if schema.behavior:
            behavior: object = clean_ids(
                chunk[schema.behavior], lines, file=file, column=schema.behavior
            )
        elif rule:
            score = parse_numbers(chunk[rule.column], lines, file=file, column=rule.column)
            behavior = rating_behavior(score, rule.threshold, rule.at_or_above, rule.below)
        else:
            behavior = schema.default_behavior
        parts.append(make_events(user, item, ts, behavior, value, lines))
    events = finish_events(parts, dropped)
    if schema.targets is not None:
        present = set(events["behavior"].unique())
        missing = [t for t in schema.targets if t not in present]
        if missing:
            raise DataError(
                f"target behaviors {missing} never occur",
                file=file,
                column=schema.behavior,
                hint=f"behaviors present: {', '.join(sorted(present))}",
            )
    return CanonicalLog(
        events=events,
        items=_items(base, schema) if schema.items else None,
        tag_events=_tag_events(base, schema) if schema.tag_events else None,
        kg=_pairs(base, schema.kg, ["head", "relation", "tail"], schema) if schema.kg else None,
        links=_pairs(base, schema.links, ["item", "entity"], schema) if schema.links else None,
        targets=list(schema.targets) if schema.targets is not None else None,
        dropped=dropped,
        source=f"csv:{file}",
    )


def clean_ids(
    values: pd.Series, lines: np.ndarray, *, file: Path, column: str, na_strings: bool = True
) -> pd.Series:
    """Strip ids; an empty or whitespace-only id (or, with ``na_strings``, one spelled like
    NaN/null/None) is a DataError."""
    ids = values.astype(str).str.strip()
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


def parse_numbers(values: pd.Series, lines: np.ndarray, *, file: Path, column: str) -> np.ndarray:
    """Numeric column → float64; an empty, unparsable or infinite value is a DataError."""
    num = to_float(values)
    bad = ~np.isfinite(num)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"not a number: {str(values.iloc[i])!r}",
            file=file,
            line=int(lines[i]),
            column=column,
            hint="the column must hold finite numbers",
        )
    return num


def rating_behavior(
    rating: np.ndarray, threshold: float = 4.0, high: str = "rate_high", low: str = "rate_low"
) -> np.ndarray:
    """The rating rule: ``high`` for ``rating >= threshold``, else ``low``."""
    return np.where(rating >= threshold, high, low)


def make_events(
    user: pd.Series,
    item: pd.Series,
    timestamp: np.ndarray,
    behavior: object,
    value: object,
    lines: np.ndarray,
) -> pd.DataFrame:
    """One events chunk with the canonical columns and dtypes (scalars broadcast)."""
    n = len(lines)
    beh = np.full(n, behavior, dtype=object) if isinstance(behavior, str) else behavior
    return pd.DataFrame(
        {
            "user": _as_str(user),
            "item": _as_str(item),
            "timestamp": np.asarray(timestamp, dtype=np.int64),
            "behavior": _as_str(beh),
            "value": np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy(),
            "line": np.asarray(lines, dtype=np.int64),
        }
    )[list(EVENT_COLUMNS)]


def _as_str(values: object) -> pd.Series:
    """A string Series with a fresh 0..n-1 index (no copy when it already is one)."""
    if isinstance(values, pd.Series) and pd.api.types.is_string_dtype(values.dtype):
        return values.reset_index(drop=True)
    return pd.Series(np.asarray(values, dtype=object), dtype=str)


def finish_events(parts: list[pd.DataFrame], dropped: dict[str, int]) -> pd.DataFrame:
    """Concatenate chunks, drop exact duplicate events and count them in ``dropped``."""
    events = pd.concat(parts, ignore_index=True)
    dup = events.duplicated(subset=["user", "item", "timestamp", "behavior", "value"])
    dropped["duplicate_rows"] = dropped.get("duplicate_rows", 0) + int(dup.sum())
    return events[~dup.to_numpy()].reset_index(drop=True)


def _event_chunks(
    file: Path, schema: Schema, wanted: list[str], dropped: dict[str, int]
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Chunks of the events file (text or parquet) with the wanted columns."""
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(file)
        check_columns(file, pf.schema_arrow.names, wanted, ",")
        start = 1  # parquet has no header: row i (0-based) is "line" i + 1
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS, columns=wanted):
            chunk = batch.to_pandas()
            yield chunk, start + np.arange(len(chunk), dtype=np.int64)
            start += len(chunk)
        if start == 1:
            raise DataError("no rows", file=file, line=1, hint="the file holds no events")
        return
    yield from iter_columns(
        file, wanted, delimiter=schema.delimiter, encoding=schema.encoding, dropped=dropped
    )


def _side(base: Path, spec: object, cols: list[str], schema: Schema):
    """Read a side table named by ``spec`` (ItemsSpec, KGSpec, ...); ids cleaned."""
    file = base / spec.file
    if not file.is_file():
        raise DataError("side table not found", file=file, hint="paths are relative to the input")
    df, lines = read_table(file, cols, delimiter=spec.delimiter, encoding=schema.encoding)
    return df, lines, file


def _items(base: Path, schema: Schema) -> pd.DataFrame:
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


def _tag_events(base: Path, schema: Schema) -> pd.DataFrame:
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


def _pairs(base: Path, spec: object, names: list[str], schema: Schema) -> pd.DataFrame:
    """KG triples or item-entity links: every column an id."""
    cols = [getattr(spec, n) for n in names]
    df, lines, file = _side(base, spec, cols, schema)
    return pd.DataFrame(
        {n: clean_ids(df[c], lines, file=file, column=c) for n, c in zip(names, cols)}
    )
