"""Timestamp parsing: epoch seconds, epoch milliseconds or ISO-8601 strings → int64 seconds.

``unit="auto"`` decides per column: numbers above ``1e11`` are milliseconds (1e11 s is the
year 5138; 1e11 ms is 1973), anything else numeric is seconds, and text is ISO-8601 (a string
without a UTC offset is read as UTC). A column mixing seconds and milliseconds is an error.
Every failure is a :class:`DataError` naming the file, the 1-based physical line and the column.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_builders.errors import DataError

UNITS = ("auto", "s", "ms", "iso")
MS_THRESHOLD = 1e11  # numeric values above this are epoch milliseconds in "auto" mode
FUTURE_SLACK_S = 86_400  # timestamps later than now + one day are rejected


def parse_timestamps(
    series: pd.Series,
    *,
    unit: str = "auto",
    file: str | Path | None = None,
    column: str | None = None,
    first_line: int = 2,
    lines: np.ndarray | None = None,
    now: float | None = None,
) -> np.ndarray:
    """Parse a timestamp column to int64 epoch seconds.

    Args:
        series: raw values (strings or numbers), in file order.
        unit: ``"auto"`` | ``"s"`` | ``"ms"`` | ``"iso"``.
        file, column: named in errors.
        first_line: physical line of ``series[0]`` (2 for a file with a header).
        lines: physical line of every value; overrides ``first_line`` when given.
        now: the clock for the future-timestamp check (default: ``time.time()``).

    Shapes: ``series`` (N,) → (N,) int64.
    """
    seconds, _ = parse_timestamps_with_unit(
        series, unit=unit, file=file, column=column, first_line=first_line, lines=lines, now=now
    )
    return seconds


def parse_timestamps_with_unit(
    series: pd.Series,
    *,
    unit: str = "auto",
    expected: str | None = None,
    file: str | Path | None = None,
    column: str | None = None,
    first_line: int = 2,
    lines: np.ndarray | None = None,
    now: float | None = None,
) -> tuple[np.ndarray, str]:
    """Like :func:`parse_timestamps`, also returning the resolved unit (``"s"|"ms"|"iso"``).

    ``expected`` is the unit earlier chunks of the same column resolved to; in ``"auto"``
    mode a chunk that disagrees is a mixed-unit error (chunked readers pass it along).
    """
    if unit not in UNITS:
        raise DataError(
            f"unknown time unit {unit!r}",
            file=file,
            column=column,
            hint=f"use one of {', '.join(UNITS)}",
        )
    n = len(series)
    line_of = np.asarray(lines, dtype=np.int64) if lines is not None else first_line + np.arange(n)

    def fail(idx: int, message: str, hint: str) -> DataError:
        return DataError(message, file=file, line=int(line_of[idx]), column=column, hint=hint)

    raw = series.reset_index(drop=True)
    text = raw.astype("string").str.strip() if not pd.api.types.is_numeric_dtype(raw) else None
    if text is not None:
        empty = (text.isna() | (text == "")).to_numpy(dtype=bool)
    else:
        empty = raw.isna().to_numpy(dtype=bool)
    if empty.any():
        raise fail(
            int(np.argmax(empty)),
            "missing timestamp",
            "every event needs a time; fill it in or drop the row",
        )
    if n == 0:
        return np.zeros(0, dtype=np.int64), expected or ("s" if unit == "auto" else unit)

    num = to_float(raw)
    is_num = np.isfinite(num)
    resolved = unit
    if unit == "auto":
        resolved = "iso" if (expected == "iso" or not is_num[0]) else "num"
    if resolved == "iso":
        seconds = _parse_iso(raw if text is None else text, fail)
        _check_future(seconds, raw, now, fail)
    else:
        if not is_num.all():
            bad = int(np.argmin(is_num))
            raise fail(
                bad,
                f"unparsable timestamp {str(raw.iloc[bad])!r}",
                "expected epoch seconds, epoch milliseconds or ISO-8601",
            )
        neg = num < 0
        if neg.any():
            bad = int(np.argmax(neg))
            raise fail(
                bad,
                f"negative timestamp {str(raw.iloc[bad])!r}",
                "times must be at or after 1970-01-01 (epoch 0)",
            )
        is_ms = num > MS_THRESHOLD if resolved == "num" else np.full(n, resolved == "ms")
        _check_future(np.where(is_ms, num / 1000.0, num), raw, now, fail)
        if resolved == "num":
            first_unit = expected or ("ms" if is_ms[0] else "s")
            odd = is_ms != (first_unit == "ms")
            if odd.any():
                bad = int(np.argmax(odd))
                raise fail(
                    bad,
                    f"timestamp {str(raw.iloc[bad])!r} mixes seconds and milliseconds "
                    f"(earlier values are {first_unit})",
                    "use one unit for the whole column, or set time_unit explicitly",
                )
            resolved = first_unit
        seconds = np.floor(num / 1000.0 if resolved == "ms" else num).astype(np.int64)
    if unit == "auto" and expected is not None and resolved != expected:
        raise fail(
            0,
            f"timestamp {str(raw.iloc[0])!r} is {resolved} but earlier rows are {expected}",
            "use one unit for the whole column",
        )
    return seconds, resolved


def to_float(values: pd.Series) -> np.ndarray:
    """Strings or numbers → float64, NaN where a value does not parse (fast for arrow strings)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        try:
            arr = pc.utf8_trim_whitespace(pa.array(values))
            return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # some value does not parse: the slow path below finds which
    text = values.astype(str).str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _check_future(seconds: np.ndarray, raw: pd.Series, now: float | None, fail: Callable) -> None:
    """DataError at the first time later than now + ``FUTURE_SLACK_S``."""
    future = seconds > (time.time() if now is None else now) + FUTURE_SLACK_S
    if future.any():
        bad = int(np.argmax(future))
        raise fail(
            bad,
            f"timestamp {str(raw.iloc[bad])!r} lies in the future",
            "check the unit (s vs ms) or the clock that wrote the log",
        )


def _parse_iso(text: pd.Series, fail: Callable) -> np.ndarray:
    """ISO-8601 strings → int64 seconds (naive strings are UTC)."""
    parsed = pd.to_datetime(text.astype(str), format="ISO8601", errors="coerce", utc=True)
    bad_mask = parsed.isna().to_numpy(dtype=bool)
    if bad_mask.any():
        bad = int(np.argmax(bad_mask))
        raise fail(
            bad,
            f"unparsable timestamp {str(text.iloc[bad])!r}",
            "expected ISO-8601 like 2024-05-01T12:00:00Z, or epoch seconds",
        )
    seconds = ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.int64
    )
    neg = seconds < 0
    if neg.any():
        bad = int(np.argmax(neg))
        raise fail(
            bad,
            f"negative timestamp {str(text.iloc[bad])!r} (before 1970)",
            "times must be at or after 1970-01-01",
        )
    return seconds
