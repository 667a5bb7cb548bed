"""``read_csv_log``: a custom log described by a :class:`Schema`, from delimited text (plain or
compressed), Parquet (a file, a directory, a hive-partitioned dataset), several files (one per
behavior or stage), or a DuckDB query; and ``read_frame`` for a table already in memory.

Reading is chunked: a multi-GB source is never parsed in one call, and ids are dictionary codes
(see ``columns``). Lines are physical: the header is line 1, data row ``i`` (0-based) is line
``i + 2``; quoted fields must not hold newlines. For Parquet, a query or a frame, "line" is the
1-based row. A log read from several files numbers its ``line`` column on across them, so event
order (timestamp, then line) follows the order the files are listed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers._source import is_parquet
from data_builders.readers._table import check_columns, iter_columns, iter_table
from data_builders.readers.arrow_sources import iter_frame, iter_parquet, iter_sql
from data_builders.readers.columns import STAGES, EventColumns, parse_numbers, parse_stages
from data_builders.readers.side_tables import read_items, read_pairs, read_tag_events
from data_builders.schema import Schema, SourceSpec


def rating_behavior(
    rating: np.ndarray, threshold: float = 4.0, high: str = "rate_high", low: str = "rate_low"
) -> np.ndarray:
    """The rating rule: ``high`` for ``rating >= threshold``, else ``low``."""
    return np.where(rating >= threshold, high, low)


def read_csv_log(path: str | Path, schema: Schema, *, query: str | None = None) -> CanonicalLog:
    """Read a custom log described by a :class:`Schema`.

    Args:
        path: the events file (text, compressed text or Parquet), a Parquet directory, or a
            directory holding ``schema.events`` / ``schema.sources`` and the side tables (side
            tables are relative to the directory, or to the events file's folder). With a query:
            a DuckDB database file, or the directory the query's relative paths start from.
        schema: column names and options.
        query: a DuckDB query giving the events (overrides ``schema.sql``).
    """
    path = Path(path)
    base = path if path.is_dir() else path.parent
    sql = query or schema.sql
    dropped: dict[str, int] = {}
    cols = _event_columns(schema)
    if sql:
        where = (base / schema.database) if schema.database else path
        _add_source(cols, iter_sql(sql, where, _wanted(schema)), schema, None, 0)
        source = f"sql:{where}"
    else:
        offset = 0
        for file, spec in _files(path, schema):
            offset = _add_source(cols, _chunks(file, schema, dropped), schema, spec, offset)
        source = f"csv:{path}"
    events, info = cols.finish(normalize=schema.normalize_behaviors)
    return CanonicalLog(
        events=events,
        items=read_items(base, schema) if schema.items else None,
        tag_events=read_tag_events(base, schema) if schema.tag_events else None,
        kg=read_pairs(base, schema.kg, ["head", "relation", "tail"], schema) if schema.kg else None,
        links=read_pairs(base, schema.links, ["item", "entity"], schema) if schema.links else None,
        targets=_targets(schema),
        dropped=dropped,
        source=source,
        info=info,
    )


def read_frame(
    frame: Any,
    schema: Schema,
    base: str | Path | None = None,
    *,
    items: Any = None,
    kg: Any = None,
    links: Any = None,
    tag_events: Any = None,
) -> CanonicalLog:
    """The canonical log of a pandas or polars DataFrame, or an Arrow table, in memory.

    Columns are named by ``schema`` as for files; "line" is the 1-based row. Side tables are
    tables in memory (``items``, ``kg``, ``links``, ``tag_events``: DataFrames whose columns
    the schema's sections name; a section is optional when its table is given: its columns
    then have the default names ``item``/``tags``/``title``, ``head``/``relation``/``tail``,
    ...), or files under ``base`` (a directory) that the schema names. Errors name
    ``DataFrame`` (or ``DataFrame items``, ...) and the row. Integer user and item id columns
    are remembered (``info["id_dtypes"]``), so what is recommended comes back as integers.
    """
    from data_builders.readers.arrow_sources import as_table
    from data_builders.schema import ItemsSpec, KGSpec, LinksSpec, TagEventsSpec

    given = {"items": (items, ItemsSpec), "kg": (kg, KGSpec), "links": (links, LinksSpec),
             "tag_events": (tag_events, TagEventsSpec)}  # fmt: skip
    specs = {k: getattr(schema, k) or (spec() if table is not None else None)
             for k, (table, spec) in given.items()}  # fmt: skip
    if items is not None and schema.items is None:  # the default columns it has
        present = set(getattr(items, "column_names", None) or list(items.columns))
        specs["items"] = ItemsSpec(tags="tags" if "tags" in present else None,
                                   title="title" if "title" in present else None)  # fmt: skip
    schema = dataclasses.replace(schema, **specs)
    table = as_table(frame)
    cols = _event_columns(schema)
    _add_source(cols, iter_frame(table, _wanted(schema)), schema, None, 0)
    events, info = cols.finish(normalize=schema.normalize_behaviors)
    info["id_dtypes"] = integer_id_columns(table, {"user": schema.user, "item": schema.item})
    root = Path(base) if base is not None else None
    files = [k for k, spec in specs.items() if spec is not None and given[k][0] is None]
    if root is None and files:
        raise DataError(
            f"the schema names side tables ({', '.join(files)}) and no table was given",
            hint="pass them as DataFrames (read_frame(df, schema, items=...)) or base=DIR",
        )
    return CanonicalLog(
        events=events,
        items=read_items(root, schema, items) if schema.items else None,
        tag_events=read_tag_events(root, schema, tag_events) if schema.tag_events else None,
        kg=read_pairs(root, schema.kg, ["head", "relation", "tail"], schema, kg)
        if schema.kg
        else None,
        links=read_pairs(root, schema.links, ["item", "entity"], schema, links)
        if schema.links
        else None,
        targets=_targets(schema),
        source="frame",
        info=info,
    )


def integer_id_columns(table: Any, columns: dict[str, str]) -> dict[str, str]:
    """``{node type: "int64"}`` for the id columns of an Arrow ``table`` that hold integers."""
    import pyarrow as pa

    return {kind: "int64" for kind, col in columns.items()
            if pa.types.is_integer(table.schema.field(col).type)}  # fmt: skip


def _event_columns(schema: Schema) -> EventColumns:
    rule = schema.behavior_rule
    return EventColumns(
        schema.user,
        schema.item,
        schema.behavior or (rule.column if rule else "behavior"),
        timed=schema.timestamp is not None,
        time_unit=schema.time_unit,
        time_column=schema.timestamp or "timestamp",
        staged=schema.staged,
    )


def _targets(schema: Schema) -> list[str] | None:
    if schema.targets is None:
        return None
    if schema.normalize_behaviors:
        return [" ".join(t.lower().split()) for t in schema.targets]
    return list(schema.targets)


def _wanted(schema: Schema, spec: SourceSpec | None = None) -> list[str]:
    """The columns a source must have."""
    rule = schema.behavior_rule
    wanted = [schema.user, schema.item, schema.timestamp]
    if spec is None or spec.behavior is None:
        wanted += [schema.behavior, rule and rule.column]
    wanted += [schema.value, rule and rule.column if schema.value is None else None]
    if spec is None or spec.stage is None:
        wanted.append(schema.stage)
    return list(dict.fromkeys(c for c in wanted if c))


def _files(path: Path, schema: Schema) -> list[tuple[Path, SourceSpec | None]]:
    """The events files (or Parquet directories) to read, in order."""
    base = path if path.is_dir() else path.parent
    if schema.sources:
        out = [(base / s.file, s) for s in schema.sources]
    elif schema.events is not None and path.is_dir():
        out = [(path / schema.events, None)]
    elif path.is_dir() and not any(path.rglob("*.parquet")):
        raise DataError(
            "the input is a directory but the schema names no 'events' file",
            file=path,
            hint="set 'events: FILE' in the schema (or give a directory of Parquet files)",
        )
    else:
        out = [(path, None)]
    for file, _ in out:
        if not file.exists():
            raise DataError("events file not found", file=file, hint="check 'events' in the schema")
    return out


def _chunks(file: Path, schema: Schema, dropped: dict[str, int]) -> Iterator:
    """``(columns, lines, file, offset)`` chunks of one events file or Parquet directory."""
    wanted = _wanted(schema)
    if file.is_dir() or is_parquet(file):
        yield from iter_parquet(file, wanted)
        return
    if not schema.header:
        if not schema.columns:
            raise DataError(
                "headerless events files need 'columns' (their column names) in the schema",
                file=file,
            )
        names = list(schema.columns)
        check_columns(file, names, wanted, schema.delimiter or ",")
        for df, lines in iter_table(
            file,
            delimiter=schema.delimiter or ",",
            encoding=schema.encoding,
            header=False,
            names=names,
            dropped=dropped,
        ):
            yield df, lines, file, 0
        return
    for df, lines in iter_columns(
        file, wanted, delimiter=schema.delimiter, encoding=schema.encoding, dropped=dropped
    ):
        yield df, lines, file, 0


def _add_source(
    cols: EventColumns,
    chunks: Iterator,
    schema: Schema,
    spec: SourceSpec | None,
    offset: int,
) -> int:
    """Feed one source's chunks; returns the line offset for the next source."""
    rule = schema.behavior_rule
    last = offset
    for chunk, lines, file, before in chunks:
        file = Path(file)
        value: Any = 1.0
        if schema.value or rule:
            col = schema.value or rule.column
            value = parse_numbers(chunk[col], lines, file=file, column=col)
        if spec is not None and spec.behavior is not None:
            behavior: Any = spec.behavior
        elif schema.behavior:
            behavior = chunk[schema.behavior]
        elif rule:
            score = value if schema.value is None else None
            if score is None:
                score = parse_numbers(chunk[rule.column], lines, file=file, column=rule.column)
            behavior = rating_behavior(score, rule.threshold, rule.at_or_above, rule.below)
        else:
            behavior = schema.default_behavior
        stage = None
        if spec is not None and spec.stage is not None:
            stage = STAGES[spec.stage]
        elif schema.stage:
            stage = parse_stages(chunk[schema.stage], lines, file=file, column=schema.stage)
        elif schema.staged:
            stage = STAGES["train"]  # sources without a stage are training data
        cols.add(
            file,
            lines,
            user=chunk[schema.user],
            item=chunk[schema.item],
            behavior=behavior,
            timestamp=chunk[schema.timestamp] if schema.timestamp else None,
            value=value,
            stage=stage,
            line_offset=offset + before,
        )
        last = offset + before + int(lines[-1])
    return last
