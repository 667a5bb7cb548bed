"""The canonical log: what every reader returns and what ``build_graph`` consumes.

Raw ids are always strings (``"007"`` stays ``"007"``). Event order is the stable sort on
(``timestamp``, ``line``) where ``line`` is the 1-based physical line of the event in its file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

EVENT_COLUMNS = ("user", "item", "timestamp", "behavior", "value", "line")


@dataclass
class CanonicalLog:
    """Validated log tables, before ids are made contiguous.

    Attributes:
        events: one row per event; columns ``user`` (str), ``item`` (str), ``timestamp``
            (int64, seconds), ``behavior`` (str), ``value`` (float64), ``line`` (int64,
            1-based physical line in the source file, for stable ordering and error messages).
        items: optional item side table; columns ``item`` (str), ``tags`` (list[str]),
            ``title`` (str, may be empty).
        tag_events: optional user tag events; columns ``user``, ``tag`` (str), ``timestamp``
            (int64), ``line`` (int64).
        kg: optional knowledge-graph triples; columns ``head``, ``relation``, ``tail`` (str).
        links: optional item → KG entity links; columns ``item``, ``entity`` (str).
        targets: behaviors that are recommended and evaluated (``None``: all behaviors).
        dropped: rows dropped while reading, by reason (e.g. ``{"duplicate_rows": 3}``).
        source: human-readable description of where the log came from.
    """

    events: pd.DataFrame
    items: pd.DataFrame | None = None
    tag_events: pd.DataFrame | None = None
    kg: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    targets: list[str] | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        missing = [c for c in EVENT_COLUMNS if c not in self.events.columns]
        if missing:
            raise ValueError(f"CanonicalLog.events lacks columns {missing}")
