"""Which events a graph keeps, and in what order: the stable (timestamp, line) event order,
duplicate events (found in timestamp-aligned windows, so the hash tables stay small), the time
window and the k-core — all on integer codes, never on strings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.readers.columns import release_memory


@dataclass(frozen=True)
class FilteredEvents:
    """The events a graph keeps, in event order (stable on timestamp, line).

    The code and value columns cover *every* row of the log, unsubsetted (no copy at scale);
    :meth:`kept` selects the kept events from one of them. Which rows are kept, and in what
    order, is ``rows`` (row indices in event order), else ``keep`` (a mask over the rows, which
    are then already in event order), else neither (every row, as is).

    Shapes: every column is ``(R,)`` for the log's ``R`` rows; ``rows`` is ``(n,)``.
    """

    user: np.ndarray  # int codes into `user_names`
    item: np.ndarray  # int codes into `item_names`
    behavior: np.ndarray  # int codes into `behavior_names`
    timestamp: np.ndarray  # int64
    value: np.ndarray  # float64
    stage: np.ndarray | None  # int8 (0 train, 1 valid, 2 test); None: the log has no stages
    user_names: pd.Index  # raw user ids, by code
    item_names: pd.Index  # raw item ids, by code
    behavior_names: pd.Index  # raw behavior names, by code
    rows: np.ndarray | None  # int64 row indices of the kept events, in event order
    keep: np.ndarray | None  # bool mask over the rows (used only when `rows` is None)
    n: int  # how many events are kept

    def kept(self, column: np.ndarray) -> np.ndarray:
        """The kept events of ``column`` (one of the ``(R,)`` columns), in event order."""
        if self.rows is not None:
            return column[self.rows]
        return column if self.keep is None else column[self.keep]


def _codes(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``(codes, uniques)`` of a column: int codes into ``uniques`` (a Categorical's own codes
    and categories, else by first appearance in row order). Callers renumber by first
    appearance in event order, so the two give the same graph."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.array  # its codes, not a copy (`col.cat.codes` copies)
        return cat.codes, pd.Index(cat.categories, dtype=object)
    codes, uniques = pd.factorize(col, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), uniques


def _duplicated(cols: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Rows equal to an earlier row on every ``(codes, n_codes)`` column (``keep="first"``).

    The columns are packed into one int64 key (re-compressed whenever the product of the
    code ranges would overflow), so no string is hashed twice and no DataFrame is copied.
    """
    key, n = cols[0]
    for codes, m in cols[1:]:
        if n * m >= 2**62:
            key, uniq = pd.factorize(key)
            n = len(uniq)
        key, n = key * m + codes, n * m
    return pd.Series(key, copy=False).duplicated().to_numpy()


def _kcore(user: np.ndarray, item: np.ndarray, k: int) -> np.ndarray:
    """Positions of the rows left when users and items with < ``k`` events are peeled off."""
    rows = np.arange(len(user))
    while True:
        u, i = user[rows], item[rows]
        keep = (np.bincount(u)[u] >= k) & (np.bincount(i)[i] >= k)
        if keep.all():
            return rows
        rows = rows[keep]


def first_seen(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(remap, first)``: ``remap[code]`` numbers codes by first appearance in ``codes``
    (-1 for codes that never appear); ``first[k]`` is the code numbered ``k``."""
    first = pd.unique(codes)
    remap = np.full(n_codes, -1, dtype=np.int64)
    remap[first] = np.arange(len(first))
    return remap, first


DEDUP_WINDOW = 4_000_000  # events per dedup window (bounds the hash table's memory)


def _dedup(
    ev: pd.DataFrame,
    ts: np.ndarray,
    codes: list[tuple[np.ndarray, int]],
    order: np.ndarray | None,
) -> np.ndarray:
    """Duplicate events in event order (mask over ``order``, or over rows when ``None``):
    equal to an earlier event on user, item, timestamp, behavior and value.

    ``codes`` are the behavior, user and item ``(codes, n_codes)`` columns, in that order.
    Duplicates share a timestamp, so the event-ordered rows are cut into windows of about
    ``DEDUP_WINDOW`` events at timestamp changes and each window is hashed on its own.
    """
    t_sorted = _take(ts, order)
    n = len(t_sorted)
    dup = np.zeros(n, dtype=bool)
    value = ev["value"].to_numpy(np.float64)
    cuts = [0]
    while cuts[-1] < n:
        end = min(cuts[-1] + DEDUP_WINDOW, n)
        if end < n:  # move the cut to the next timestamp change
            end = int(np.searchsorted(t_sorted, t_sorted[end - 1], side="right"))
        cuts.append(max(end, cuts[-1] + 1))
    for a, b in zip(cuts[:-1], cuts[1:]):
        idx = slice(a, b) if order is None else order[a:b]
        t = ts[idx]
        keys = [(t - t.min(), int(t.max() - t.min()) + 1)]
        for c, n_c in codes:
            keys.append((c[idx].astype(np.int64), n_c))
        v_codes, v_names = pd.factorize(value[idx])
        keys.append((v_codes.astype(np.int64), len(v_names)))
        dup[a:b] = _duplicated(keys)
    return dup


def filter_events(
    log: CanonicalLog,
    dropped: dict[str, int],
    *,
    dedup: bool,
    kcore: int,
    time_window: tuple[int, int] | None,
) -> FilteredEvents:
    """Event order (stable on timestamp, line), then dedup, time window and k-core.

    Works on integer codes of the user/item/behavior columns (a Categorical's codes, else
    ``pd.factorize``), never on strings.

    Args:
        log: the canonical log.
        dropped: counts of dropped rows by reason, updated in place (``duplicate_rows``,
            ``outside_time_window``, ``kcore``, each only when its filter is on).
        dedup: drop events equal to an earlier one on user, item, time, behavior and value.
        kcore: peel off users and items with fewer than this many events (0: off).
        time_window: keep events with ``start <= timestamp < end`` (``None``: all).

    Raises:
        DataError: when no event is left.
    """
    ev = log.events
    user, user_names = _codes(ev["user"])
    item, item_names = _codes(ev["item"])
    beh, beh_names = _codes(ev["behavior"])
    ts = ev["timestamp"].to_numpy(np.int64)
    line = ev["line"].to_numpy(np.int64)
    rows = None if _in_event_order(ts, line) else np.lexsort((line, ts))  # event order
    del line
    keep: np.ndarray | None = None  # over `rows` (or over rows as they are): kept events
    if dedup:
        codes = [(beh, len(beh_names)), (user, len(user_names)), (item, len(item_names))]
        dup = _dedup(ev, ts, codes, rows) if len(ev) else np.zeros(0, dtype=bool)
        dropped["duplicate_rows"] = dropped.get("duplicate_rows", 0) + int(dup.sum())
        if dup.any():
            keep = ~dup
        del dup, codes
        release_memory()  # the windows' hash tables
    if time_window is not None:
        start, end = time_window
        t = _take(ts, rows)
        inside = (t >= start) & (t < end)
        dropped["outside_time_window"] = int((~inside if keep is None else keep & ~inside).sum())
        keep = inside if keep is None else keep & inside
    if kcore > 0:
        if keep is not None:  # rare at scale: make the kept rows explicit
            rows = np.flatnonzero(keep) if rows is None else rows[keep]
            keep = None
        n = len(ev) if rows is None else len(rows)
        core = _kcore(_take(user, rows), _take(item, rows), kcore)
        rows = core if rows is None else rows[core]
        dropped["kcore"] = n - len(rows)
    if rows is not None and keep is not None:
        rows, keep = rows[keep], None
    n_kept = int(keep.sum()) if keep is not None else len(ev) if rows is None else len(rows)
    if n_kept == 0:
        raise DataError("no events left after filtering", hint="loosen kcore / time_window")
    return FilteredEvents(
        user=user,
        item=item,
        behavior=beh,
        timestamp=ts,
        value=ev["value"].to_numpy(np.float64),
        stage=ev["stage"].to_numpy(np.int8) if "stage" in ev else None,
        user_names=user_names,
        item_names=item_names,
        behavior_names=beh_names,
        rows=rows,
        keep=keep,
        n=n_kept,
    )


def _take(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """``a[rows]`` (an index or a mask); ``rows=None`` means every row, as is (no copy)."""
    return a if rows is None else a[rows]


def _in_event_order(t: np.ndarray, line: np.ndarray) -> bool:
    """Whether rows are already sorted on (timestamp, line), so the stable sort is a no-op."""
    step, n = 1 << 22, len(t) - 1  # blocks: no (E,) temporaries
    for a in range(0, max(n, 0), step):
        b = min(a + step, n)
        t0, t1, l0, l1 = t[a:b], t[a + 1 : b + 1], line[a:b], line[a + 1 : b + 1]
        if not ((t1 > t0) | ((t1 == t0) & (l1 >= l0))).all():
            return False
    return True
