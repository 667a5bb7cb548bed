"""TGB / JODIE CSV (wikipedia, reddit, mooc, lastfm): one interaction per line.

``user_id,item_id,timestamp,state_label,comma_separated_list_of_features`` — a one-line header,
then a variable number of feature columns (ignored here). Timestamps are float seconds from 0.
Every event is ``interact`` with ``value = state_label``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers._source import SUFFIXES, decode_start
from data_builders.readers._table import iter_table, read_header
from data_builders.readers.columns import EventColumns, parse_numbers

COLUMNS = ["user_id", "item_id", "timestamp", "state_label"]  # the first four fields


def read_jodie(path: str | Path) -> CanonicalLog:
    """Read a JODIE-style CSV file (or a directory holding exactly one ``.csv``, which may be
    compressed: ``.csv.gz``, ``.bz2``, ``.xz``, ``.zst``)."""
    file = _find_csv(Path(path))
    header = read_header(file, ",")
    if len(header) < len(COLUMNS):
        raise DataError(
            f"header has {len(header)} fields, expected at least {len(COLUMNS)}",
            file=file,
            line=1,
            column=COLUMNS[len(header) - 1 if header else 0],
            hint="expected user_id,item_id,timestamp,state_label,features...",
        )
    second = (decode_start(file, "utf-8").splitlines()[1:2] or [""])[0]
    width = len(next(csv.reader([second]), [])) or len(header)
    dropped: dict[str, int] = {}
    cols = EventColumns("user_id", "item_id", time_unit="s", time_column="timestamp")
    for df, lines in iter_table(
        file, delimiter=",", usecols=list(range(4)), min_fields=width, dropped=dropped
    ):
        df.columns = COLUMNS
        cols.add(
            file,
            lines,
            user=df["user_id"],
            item=df["item_id"],
            behavior="interact",
            timestamp=df["timestamp"],
            value=parse_numbers(df["state_label"], lines, file=file, column="state_label"),
        )
    events, info = cols.finish()
    return CanonicalLog(events=events, dropped=dropped, source=f"jodie:{file}", info=info)


def _find_csv(path: Path) -> Path:
    if path.is_file():
        return path
    found = (
        sorted(p for s in ("", *SUFFIXES) for p in path.glob(f"*.csv{s}")) if path.is_dir() else []
    )
    if len(found) != 1:
        raise DataError(
            f"expected one JODIE .csv file, found {len(found)}",
            file=path,
            hint="name the .csv file itself as the input",
        )
    return found[0]
