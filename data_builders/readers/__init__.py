"""Readers: every input format → :class:`~data_builders.log.CanonicalLog`.

``read_log(format, path, schema)`` is the one entry point; ``FORMATS`` maps each ``--format``
name to its reader. ``csv`` needs a :class:`~data_builders.schema.Schema`; for the other
formats a schema is optional and only its ``targets`` are used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers.csv_reader import read_csv_log
from data_builders.readers.jodie import read_jodie
from data_builders.readers.movielens import read_movielens, read_movielens_100k
from data_builders.readers.recbole import read_recbole
from data_builders.schema import Schema


def _synthetic(path: Path) -> CanonicalLog:
    from data_builders.readers.synthetic import read_synthetic  # written separately; lazy

    return read_synthetic(path)


# --format name → reader taking the input path (csv also takes the schema)
FORMATS: dict[str, Callable[..., CanonicalLog]] = {
    "csv": read_csv_log,
    "movielens-100k": read_movielens_100k,
    "movielens": read_movielens,
    "recbole": read_recbole,
    "jodie": read_jodie,
    "synthetic": _synthetic,
}


def read_log(format: str, path: str | Path, schema: Schema | None = None) -> CanonicalLog:
    """Read ``path`` in ``format`` (a key of ``FORMATS``) into a canonical log.

    Args:
        format: ``csv`` | ``movielens-100k`` | ``movielens`` | ``recbole`` | ``jodie`` |
            ``synthetic``.
        path: the input file or directory.
        schema: required for ``csv``; for other formats only ``schema.targets`` is applied.
    """
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}", hint=f"valid formats: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise DataError("input path does not exist", file=path)
    if format == "csv":
        if schema is None:
            raise DataError(
                "format 'csv' needs a schema naming the columns",
                file=path,
                hint="pass --schema FILE.yaml (see data_builders/schema.py)",
            )
        return read_csv_log(path, schema)
    log = FORMATS[format](path)
    if schema is not None and schema.targets is not None:
        present = set(log.events["behavior"].unique())
        missing = [t for t in schema.targets if t not in present]
        if missing:
            raise DataError(
                f"target behaviors {missing} never occur",
                file=path,
                hint=f"behaviors present: {', '.join(sorted(present))}",
            )
        log.targets = list(schema.targets)
    return log


__all__ = [
    "FORMATS",
    "read_csv_log",
    "read_jodie",
    "read_log",
    "read_movielens",
    "read_movielens_100k",
    "read_recbole",
]
