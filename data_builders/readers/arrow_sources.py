"""Columnar event sources as chunks for :class:`~data_builders.readers.columns.EventColumns`:
Parquet files, Parquet directories and hive-partitioned datasets (``year=2024/month=01/``),
DuckDB queries, and tables already in memory (pandas, polars, Arrow).

Each yields ``(columns, lines, where, offset)``: Arrow arrays by column name, the 1-based row of
every row in its file (or query result, or frame), what errors name, and the rows of earlier
files (added to ``lines`` for the event-order ``line`` column). A dataset's files are read
in sorted path order, each in row order; partition keys become columns. String columns of
Parquet files are read as dictionaries, so ids are never materialised row by row.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from data_builders.errors import DataError
from data_builders.readers._source import printable
from data_builders.readers._table import CHUNK_ROWS, PROGRESS_MIN_BYTES, check_columns

Chunk = tuple[dict[str, pa.Array], np.ndarray, str, int]


def parquet_files(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(file, partition keys)`` of a Parquet file or directory, files in sorted path order."""
    if path.is_file():
        return [(path, {})]
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
    except (pa.ArrowInvalid, OSError) as err:
        msg = f"cannot open Parquet dataset: {printable(str(err), 200)}"
        raise DataError(msg, file=path) from err
    frags = sorted(dataset.get_fragments(), key=lambda f: f.path)
    if not frags:
        raise DataError("no Parquet files in the directory", file=path, hint="expected *.parquet")
    return [(Path(f.path), ds.get_partition_keys(f.partition_expression)) for f in frags]


def iter_parquet(path: Path, wanted: list[str]) -> Iterator[Chunk]:
    """Chunks of the ``wanted`` columns of a Parquet file, directory or partitioned dataset
    (a progress bar on stderr when the files hold more than 50 MB)."""
    rows = 0
    files = parquet_files(path)
    size = sum(f.stat().st_size for f, _ in files)
    bar = tqdm(
        total=size,
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        desc=path.name,
        disable=size <= PROGRESS_MIN_BYTES,
    )
    for file, keys in files:
        try:
            pf = pq.ParquetFile(file)
            names = pf.schema_arrow.names
            check_columns(file, [*names, *keys], wanted, ",")
            cols = [c for c in wanted if c in names]
            text = [c for c in cols if _is_text(pf.schema_arrow.field(c).type)]
            pf = pq.ParquetFile(file, read_dictionary=text)
            start = 1  # no header: row i (0-based) is "line" i + 1 of its file
            for batch in pf.iter_batches(batch_size=CHUNK_ROWS, columns=cols):
                n = batch.num_rows
                chunk = {c: batch.column(c) for c in cols}
                chunk.update({k: pa.array([v] * n) for k, v in keys.items() if k in wanted})
                yield chunk, start + np.arange(n, dtype=np.int64), str(file), rows
                start += n
                bar.update(int(file.stat().st_size * n / max(pf.metadata.num_rows, 1)))
        except (pa.ArrowException, OSError) as err:
            raise DataError(
                f"cannot read Parquet: {printable(str(err), 200)}",
                file=file,
                hint="the file is corrupt or not Parquet",
            ) from err
        rows += start - 1
    bar.close()
    if rows == 0:
        raise DataError("no rows", file=path, line=1, hint="the file holds no events")


def iter_sql(query: str, where: Path | None, wanted: list[str]) -> Iterator[Chunk]:
    """Chunks of a DuckDB query's result; ``where`` is a database file, or a directory that
    relative paths in the query (``read_parquet('events/*.parquet')``) are resolved against.

    Errors name ``<database or directory>[query]`` and the 1-based row of the result.
    """
    try:
        import duckdb
    except ImportError as err:
        raise DataError(
            "--format sql needs DuckDB", hint='pip install "graphseq[sql]" (or duckdb)'
        ) from err
    db = where if where is not None and where.is_file() else None
    label = f"{db or where or 'duckdb'}[query]"
    try:
        con = duckdb.connect(str(db) if db else ":memory:", read_only=db is not None)
    except duckdb.Error as err:
        raise DataError(f"cannot open DuckDB database: {_first(err)}", file=db) from err
    try:
        search = db.parent if db is not None else where  # relative paths in the query
        if search is not None:
            quoted = str(search).replace("'", "''")
            con.execute(f"SET file_search_path = '{quoted}'")
        rel = con.sql(query)
        if rel is None:
            raise DataError("the query returns no table", file=label, hint="use a SELECT query")
        reader = (  # duckdb >= 1.4 / older
            rel.to_arrow_reader(CHUNK_ROWS)
            if hasattr(rel, "to_arrow_reader")
            else rel.fetch_arrow_reader(CHUNK_ROWS)
        )
        check_columns(Path(label), reader.schema.names, wanted, ",")
        start = 1
        for batch in reader:
            n = batch.num_rows
            if n:
                yield {c: batch.column(c) for c in wanted}, start + np.arange(n), label, 0
            start += n
    except duckdb.Error as err:
        raise DataError(
            f"query failed: {_first(err)}",
            file=label,
            hint="check the SQL; the query must return the schema's columns",
        ) from err
    finally:
        con.close()
    if start == 1:
        raise DataError("the query returned no rows", file=label, hint="the log holds no events")


def iter_frame(frame: Any, wanted: list[str]) -> Iterator[Chunk]:
    """Chunks of a pandas / polars DataFrame or Arrow table; row ``i`` is "line" ``i + 1``."""
    table = as_table(frame)
    check_columns(Path("DataFrame"), table.column_names, wanted, ",")
    start = 1
    for batch in table.select(wanted).to_batches(max_chunksize=CHUNK_ROWS):
        n = batch.num_rows
        if n:
            yield {c: batch.column(c) for c in wanted}, start + np.arange(n), "DataFrame", 0
        start += n
    if start == 1:
        raise DataError("the frame has no rows", file="DataFrame", hint="it holds no events")


def as_table(frame: Any) -> pa.Table:
    """A pandas or polars DataFrame, Arrow table or record batch as an Arrow table."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    if hasattr(frame, "to_arrow") and not hasattr(frame, "iloc"):  # polars
        return frame.to_arrow()
    try:
        import pandas as pd

        if isinstance(frame, pd.DataFrame):
            return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise DataError(f"cannot convert the frame to Arrow: {printable(str(err))}") from err
    raise DataError(
        f"read_frame takes a pandas or polars DataFrame or an Arrow table, not {type(frame)}"
    )


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _first(err: Exception) -> str:
    return printable(" ".join(str(err).split()), 240)
