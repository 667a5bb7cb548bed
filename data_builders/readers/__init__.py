"""Readers: every input format → :class:`~data_builders.log.CanonicalLog`.

``read_log(format, path, schema)`` is the one entry point for files; ``read_frame(df, schema)``
reads a pandas / polars / Arrow table in memory. ``FORMATS`` maps each ``--format`` name to its
reader. ``csv`` (text, compressed text, Parquet files and directories) and ``sql`` (a DuckDB
query) need a :class:`~data_builders.schema.Schema`; for the other formats a schema is optional
and only its ``targets`` are used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from data_builders.errors import DataError
from data_builders.log import CanonicalLog, check_targets
from data_builders.readers.csv_reader import read_csv_log, read_frame
from data_builders.readers.jodie import read_jodie
from data_builders.readers.movielens import read_movielens, read_movielens_100k
from data_builders.readers.recbole import read_recbole
from data_builders.schema import Schema


def _synthetic(path: Path) -> CanonicalLog:
    from data_builders.synthetic_io import read_synthetic  # lazy: the generator is not a reader

    return read_synthetic(path)


# --format name → reader taking the input path (csv also takes the schema)
FORMATS: dict[str, Callable[..., CanonicalLog]] = {
    "csv": read_csv_log,
    "sql": read_csv_log,
    "movielens-100k": read_movielens_100k,
    "movielens": read_movielens,
    "recbole": read_recbole,
    "jodie": read_jodie,
    "synthetic": _synthetic,
}


def read_log(
    format: str,
    path: str | Path | None,
    schema: Schema | None = None,
    *,
    query: str | None = None,
) -> CanonicalLog:
    """Read ``path`` in ``format`` (a key of ``FORMATS``) into a canonical log.

    Args:
        format: ``csv`` | ``sql`` | ``movielens-100k`` | ``movielens`` | ``recbole`` |
            ``jodie`` | ``synthetic``.
        path: the input file or directory (``sql``: a DuckDB database file, or the directory
            the query's relative paths start from; ``None``: the current directory).
        schema: required for ``csv`` and ``sql``; for other formats only ``schema.targets``.
        query: ``sql`` only: the query (default: the schema's ``events: {sql: ...}``).
    """
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}", hint=f"valid formats: {', '.join(FORMATS)}")
    path = Path(path if path is not None else ".")
    if not path.exists():
        raise DataError("input path does not exist", file=path)
    if format in ("csv", "sql"):
        if schema is None:
            raise DataError(
                f"format {format!r} needs a schema naming the columns",
                file=path,
                hint="give a schema (--schema FILE.yaml, or schema=Schema(...) in Python)",
            )
        if format == "sql" and not (query or schema.sql):
            raise DataError(
                "format 'sql' needs a query",
                file=path,
                hint='give a query (--query "SELECT ..." or query=...) or set events: {sql: ...} in the schema',
            )
        if format == "csv" and query:
            raise DataError("--query goes with --format sql", file=path)
        log = read_csv_log(path, schema, query=query)
    else:
        log = FORMATS[format](path)
        if schema is not None and schema.targets is not None:
            log.targets = list(schema.targets)
    column = schema.behavior if schema is not None and format in ("csv", "sql") else None
    check_targets(log.targets, set(log.events["behavior"].unique()), file=path, column=column)
    return log


__all__ = [
    "FORMATS",
    "read_csv_log",
    "read_frame",
    "read_jodie",
    "read_log",
    "read_movielens",
    "read_movielens_100k",
    "read_recbole",
]
