"""Rules that the CLI, the HTTP server and :class:`graphseq.recommend.Run` share.

Import-light (no torch, pandas or FastAPI), so the CLI checks arguments before it loads
anything heavy.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MAX_K = 1000  # largest k any recommendation returns (CLI -k, server k, Run methods)
TABLE_SUFFIXES = (".parquet", ".csv")  # what ``recommend --all --out FILE`` can write


def k_problem(k: int) -> str | None:
    """Why ``k`` is not a valid number of items to return, or ``None`` when it is."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        return f"k must be an integer from 1 to {MAX_K}, got {k!r}"
    return None


def table_suffix(path: str | Path) -> str | None:
    """The suffix of a recommendations file (``.parquet`` or ``.csv``), ``None`` if neither."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in TABLE_SUFFIXES else None


def show_ids(ids: Iterable[str], limit: int = 5) -> str:
    """``'a', 'b', 'c' ...``: the first ``limit`` ids quoted, for one-line messages."""
    ids = list(ids)
    return ", ".join(repr(str(i)) for i in ids[:limit]) + (" ..." if len(ids) > limit else "")


__all__ = ["MAX_K", "TABLE_SUFFIXES", "k_problem", "show_ids", "table_suffix"]
