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
from data_builders.readers.csv_reader import clean_ids, finish_events, make_events, parse_numbers
from data_builders.timeparse import parse_timestamps

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
    parts = []
    for df, lines in iter_table(
        file, delimiter=",", usecols=list(range(4)), min_fields=width, dropped=dropped
    ):
        df.columns = COLUMNS
        parts.append(
            make_events(
                clean_ids(df["user_id"], lines, file=file, column="user_id"),
                clean_ids(df["item_id"], lines, file=file, column="item_id"),
                parse_timestamps(
                    df["timestamp"], unit="s", file=file, column="timestamp", lines=lines
                ),
                "interact",
                parse_numbers(df["state_label"], lines, file=file, column="state_label"),
                lines,
            )
        )
    return CanonicalLog(
        events=finish_events(parts, dropped), dropped=dropped, source=f"jodie:{file}"
    )


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
