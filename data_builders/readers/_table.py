"""Delimited-text machinery shared by the readers: chunked string tables with line numbers.

Files are read in chunks of ``CHUNK_ROWS`` rows with every column as a string (``"007"``
stays ``"007"``); a progress bar goes to stderr for files over 50 MB. Line numbers are
physical lines: the header is line 1 and data row ``i`` (0-based) is line ``i + 2``. Quoted
fields must not contain newlines (the line numbers would drift). Blank lines are skipped.
Compressed files (gzip, bzip2, xz, zstd) and UTF-8/16/32 byte-order marks are recognised from
the first bytes (``_source``); a trailing delimiter on every line is not an extra column.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from data_builders.errors import DataError
from data_builders.readers import _source
from data_builders.readers._source import decode_start, looks_binary, printable

CHUNK_ROWS = 500_000  # rows per pandas chunk
PROGRESS_MIN_BYTES = 50 * 2**20  # show a progress bar for files larger than this
CANDIDATES = ",\t;|"  # delimiters that sniffing chooses among
_NAMES = {",": "','", "\t": "tab", ";": "';'", "|": "'|'"}


def sniff_delimiter(path: Path, encoding: str = "utf-8") -> str:
    """Guess the delimiter among ``, \\t ; |`` from the first lines (``,`` when unsure)."""
    sample = decode_start(path, _source.detect_encoding(path, encoding))
    present = [d for d in CANDIDATES if d in (sample.splitlines() or [""])[0]]
    if len(present) == 1:  # the header names columns: one separator in it settles it
        return present[0]
    try:
        return csv.Sniffer().sniff(sample, delimiters=CANDIDATES).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in CANDIDATES}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def read_header(
    path: Path, delimiter: str, encoding: str = "utf-8", *, quoting: int = csv.QUOTE_MINIMAL
) -> list[str]:
    """The fields of line 1; an empty file (or one that is not text) is a DataError."""
    _check_not_empty(path)
    encoding = _source.detect_encoding(path, encoding)
    start = decode_start(path, encoding)
    line = start.split("\n", 1)[0].rstrip("\r")
    if looks_binary(line[:4096]):
        raise DataError(
            f"line 1 is not {encoding} text",
            file=path,
            line=1,
            hint="a binary file? set 'encoding', or give Parquet files a .parquet name",
        )
    return [f.strip() for f in next(csv.reader([line], delimiter=delimiter, quoting=quoting))]


def first_rows(path: Path, delimiter: str, encoding: str, quoting: int, n: int = 2) -> list[list]:
    """The fields of the first ``n`` non-blank lines (header included)."""
    encoding = _source.detect_encoding(path, encoding)
    text = decode_start(path, encoding, 64 * 1024)
    lines = text.splitlines()[: -1 if len(text) >= 32 * 1024 else None]  # last may be cut
    lines = [ln for ln in lines if ln.strip()][:n]
    return [next(csv.reader([ln], delimiter=delimiter, quoting=quoting), []) for ln in lines]


def iter_table(
    path: Path,
    *,
    delimiter: str,
    encoding: str = "utf-8",
    header: bool = True,
    names: list[str] | None = None,
    usecols: list | None = None,
    min_fields: int | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
    dropped: dict[str, int] | None = None,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Yield ``(chunk, lines)``: string columns and the physical line of each row.

    Errors (empty file, no data rows, a row with too many fields, a truncated last line with
    fewer than ``min_fields`` fields, undecodable bytes) are DataErrors naming file and line.
    Blank lines are skipped and counted in ``dropped["blank_lines"]``.
    """
    _check_not_empty(path)
    encoding = _source.detect_encoding(path, encoding)
    first_line = 2 if header else 1
    fields = names or read_header(path, delimiter, encoding, quoting=quoting)
    min_fields = len(fields) if min_fields is None else min_fields
    extra = 0
    if header and usecols is None:
        extra = _trailing_fields(path, fields, delimiter, encoding, quoting)
    if extra:  # "a,b,c," lines: name the empty trailing fields so pandas keeps every column
        names = [*(names or fields), *(f"\x00trailing{k}" for k in range(extra))]
    size = _source.size(path)
    rows = kept = 0
    with (
        _source.open_binary(path) as fh,
        warnings.catch_warnings(),
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            desc=path.name,
            disable=size <= PROGRESS_MIN_BYTES,
        ) as bar,
    ):
        warnings.simplefilter("error", pd.errors.ParserWarning)
        pending: tuple[pd.DataFrame, np.ndarray] | None = None
        try:
            reader = pd.read_csv(
                fh,
                sep=delimiter,
                header=0 if header else None,
                names=names,
                usecols=usecols,
                dtype=str,
                na_filter=False,
                keep_default_na=False,
                skip_blank_lines=False,
                index_col=False,
                encoding=encoding,
                quoting=quoting,
                chunksize=CHUNK_ROWS,
                engine="c",
            )
            for chunk in reader:
                lines = first_line + rows + np.arange(len(chunk), dtype=np.int64)
                rows += len(chunk)
                bar.update(fh.raw_position() - bar.n)
                if extra:
                    chunk = _drop_trailing(chunk, lines, path, len(chunk.columns) - extra)
                blank = (chunk == "").all(axis=1).to_numpy()
                if blank.any():
                    chunk, lines = chunk[~blank].reset_index(drop=True), lines[~blank]
                    if dropped is not None:
                        dropped["blank_lines"] = dropped.get("blank_lines", 0) + int(blank.sum())
                if len(chunk) == 0:
                    continue
                kept += len(chunk)
                if pending is not None:
                    yield pending
                pending = (chunk, lines)
        except DataError:
            raise
        except (pd.errors.ParserError, pd.errors.ParserWarning) as err:
            raise _parser_error(err, path) from err
        except (EOFError, OSError, ValueError) as err:  # corrupt compressed stream
            if isinstance(err, UnicodeDecodeError):
                raise DataError(
                    f"cannot decode the file as {encoding}",
                    file=path,
                    hint="set 'encoding' (e.g. latin-1) in the schema",
                ) from err
            raise DataError(
                f"cannot read: {type(err).__name__}: {printable(str(err))}",
                file=path,
                hint="the compressed file is corrupt or truncated",
            ) from err
        if pending is None or kept == 0:
            raise DataError(
                "no data rows" + (" after the header" if header else ""),
                file=path,
                line=first_line,
                hint="the file holds no events",
            )
        last_fields = _last_line_fields(fh.tail(), delimiter, encoding, quoting)
        if last_fields < min_fields:
            raise DataError(
                f"truncated last line: {last_fields} fields, expected {min_fields}",
                file=path,
                line=int(pending[1][-1]),
                column=str(fields[min(last_fields, len(fields) - 1)]),
                hint="the file was cut off while writing; drop or complete the line",
            )
        yield pending


def iter_columns(
    path: Path,
    columns: list[str],
    *,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_MINIMAL,
    dropped: dict[str, int] | None = None,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Chunks of the named columns of a headed table; checks first that they exist."""
    delimiter = delimiter or sniff_delimiter(path, encoding)
    header = read_header(path, delimiter, encoding, quoting=quoting)
    check_columns(path, header, columns, delimiter)
    for df, lines in iter_table(
        path, delimiter=delimiter, encoding=encoding, quoting=quoting, dropped=dropped
    ):
        yield df.set_axis(header, axis=1)[columns], lines


def read_table(path: Path, columns: list[str], **kwargs: object) -> tuple[pd.DataFrame, np.ndarray]:
    """Read the named columns of a small headed table whole (see :func:`iter_columns`)."""
    return concat_chunks(list(iter_columns(path, columns, **kwargs)))


def concat_chunks(
    parts: list[tuple[pd.DataFrame, np.ndarray]],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Join ``(chunk, lines)`` pairs into one table and one line array."""
    return pd.concat([p[0] for p in parts], ignore_index=True), np.concatenate(
        [p[1] for p in parts]
    )


def check_columns(path: Path, header: list[str], wanted: list[str], delimiter: str) -> None:
    """DataError (line 1) for a column of ``wanted`` missing from ``header`` or named twice."""
    for col in wanted:
        if header.count(col) > 1:
            at = [str(k + 1) for k, h in enumerate(header) if h == col]
            raise DataError(
                f"the header names this column {len(at)} times (fields {', '.join(at)})",
                file=path,
                line=1,
                column=col,
                hint="rename the duplicated header fields",
            )
        if col in header:
            continue
        if len(header) == 1 and len(wanted) > 1:
            seen = [d for d in CANDIDATES if d != delimiter and d in header[0]]
            guess = (
                f"the file seems to use {_NAMES[seen[0]]}"
                if seen
                else "line 1 holds none of ',' tab ';' '|'"
            )
            raise DataError(
                f"line 1 parsed as one column {header[0]!r} with delimiter "
                f"{_NAMES.get(delimiter, repr(delimiter))}",
                file=path,
                line=1,
                column=col,
                hint=f"wrong delimiter: {guess}; set 'delimiter'",
            )
        raise DataError(
            "column not found",
            file=path,
            line=1,
            column=col,
            hint=f"columns present: {printable(', '.join(map(repr, header)), 300)}",
        )


def _check_not_empty(path: Path) -> None:
    if not _source.read_start(path, 4096).strip():
        raise DataError("file is empty", file=path, line=1, hint="expected a header line")


def _trailing_fields(
    path: Path, header: list[str], delimiter: str, encoding: str, quoting: int
) -> int:
    """Empty fields that line 2 has beyond the header (a trailing delimiter); more fields
    that are not empty are a DataError naming line 2."""
    rows = first_rows(path, delimiter, encoding, quoting)
    if len(rows) < 2 or len(rows[1]) <= len(header):
        return 0
    beyond = rows[1][len(header) :]
    if any(f.strip() for f in beyond):
        raise DataError(
            f"{len(rows[1])} fields, the header has {len(header)}",
            file=path,
            line=2,
            hint="a row has extra delimiters; quote the field or fix the header",
        )
    return len(beyond)


def _drop_trailing(chunk: pd.DataFrame, lines: np.ndarray, path: Path, keep: int) -> pd.DataFrame:
    """Drop the trailing-delimiter columns; a row with text in them is a DataError."""
    rest = chunk.iloc[:, keep:]
    full = (rest != "").any(axis=1).to_numpy()
    if full.any():
        i = int(np.argmax(full))
        raise DataError(
            "a field beyond the header's columns",
            file=path,
            line=int(lines[i]),
            hint="a row has extra delimiters; quote the field or fix the row",
        )
    return chunk.iloc[:, :keep]


def _last_line_fields(tail: bytes, delimiter: str, encoding: str, quoting: int) -> int:
    """Number of fields on the last non-blank line of ``tail`` (large when it cannot be told)."""
    text = tail.decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if "\n" not in text and len(tail) >= _source.TAIL_BYTES:
        return 1 << 30
    last = text.rsplit("\n", 1)[-1]
    return len(next(csv.reader(io.StringIO(last), delimiter=delimiter, quoting=quoting), []))


def _parser_error(err: Exception, path: Path) -> DataError:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if m:
        return DataError(
            f"{m.group(3)} fields, expected {m.group(1)}",
            file=path,
            line=int(m.group(2)),
            hint="a row has extra delimiters; quote the field or fix the row",
        )
    return DataError(f"cannot parse: {printable(str(err).strip(), 200)}", file=path)
