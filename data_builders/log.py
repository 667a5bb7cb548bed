"""The canonical log: what every reader returns and what ``build_graph`` consumes.

Raw ids are always strings (``"007"`` stays ``"007"``): readers return id columns as pandas
``Categorical`` columns whose categories are those strings (one code per row, no Python string
per row); plain string columns work too. Event order is the stable sort on (``timestamp``,
``line``) where ``line`` is the 1-based physical line of the event in its file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data_builders.errors import DataError

EVENT_COLUMNS = ("user", "item", "timestamp", "behavior", "value", "line")


@dataclass
class CanonicalLog:
    """Validated log tables, before ids are made contiguous.

    Attributes:
        events: one row per event; columns ``user``, ``item`` (str, or Categorical of str),
            ``timestamp`` (int64, seconds; the row's position when the log has no time),
            ``behavior`` (str or Categorical of str), ``value`` (float64), ``line`` (int64,
            1-based physical line in the source file, for stable ordering and error messages),
            and optionally ``stage`` (int8: 0 train, 1 valid, 2 test; ``split=predefined``).
        items: optional item side table; columns ``item`` (str), ``tags`` (list[str]),
            ``title`` (str, may be empty).
        tag_events: optional user tag events; columns ``user``, ``tag`` (str), ``timestamp``
            (int64), ``line`` (int64).
        kg: optional knowledge-graph triples; columns ``head``, ``relation``, ``tail`` (str).
        links: optional item → KG entity links; columns ``item``, ``entity`` (str).
        targets: behaviors that are recommended and evaluated (``None``: all behaviors).
        dropped: rows dropped while reading, by reason (e.g. ``{"blank_lines": 3}``);
            duplicate events are dropped (and counted) by ``build_graph``.
        source: human-readable description of where the log came from.
        info: what the reader noticed, copied into ``report.json``: ``time``
            (``"timestamp"`` | ``"input_order"``), ``time_resolution`` (``"day"``),
            ``float_ids`` (rows per column whose id was an integral float).
    """

    events: pd.DataFrame
    items: pd.DataFrame | None = None
    tag_events: pd.DataFrame | None = None
    kg: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    targets: list[str] | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in EVENT_COLUMNS if c not in self.events.columns]
        if missing:
            raise ValueError(f"CanonicalLog.events lacks columns {missing}")


def check_targets(
    targets: list[str] | tuple[str, ...] | None,
    behaviors: set[str] | list[str],
    *,
    file: str | Path | None = None,
    column: str | None = None,
) -> None:
    """The one check that every target behavior occurs among ``behaviors``."""
    missing = [t for t in targets or () if t not in set(behaviors)]
    if missing:
        raise DataError(
            f"target behaviors {missing} never occur",
            file=file,
            column=column,
            hint=f"behaviors present: {', '.join(sorted(map(str, behaviors)))}",
        )
