"""Timestamp parsing: epoch s / ms / µs / ns, or ISO-8601 strings → int64 seconds.

``unit="auto"`` decides per column from the first value: numbers below ``1e11`` are seconds
(1e11 s is the year 5138), below ``1e14`` milliseconds, below ``1e17`` microseconds, above that
nanoseconds (each threshold is 1973 in the smaller unit); text is ISO-8601 (a string without a
UTC offset is read as UTC). A column mixing units is an error. Every failure is a
:class:`DataError` naming the file, the 1-based physical line and the column.
:class:`TimeColumn` parses a column chunk by chunk and warns about suspicious results (every
event in 1970 under an explicit unit; day-only timestamps).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_builders.errors import DataError

_log = logging.getLogger(__name__)
UNITS = ("auto", "s", "ms", "us", "ns", "iso")
FACTORS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}  # units per second
NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
MS_THRESHOLD = 1e11  # "auto": numeric values at or above this are not seconds ...
AUTO_LIMITS = (("s", 1e11), ("ms", 1e14), ("us", 1e17))  # ... but the first unit they are below
FUTURE_SLACK_S = 86_400  # timestamps later than now + one day are rejected
PLAUSIBLE_S = 10**8  # 1973-03-03: an explicit unit putting every event before this is suspect
DAY_S = 86_400


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
        unit: ``"auto"`` | ``"s"`` | ``"ms"`` | ``"us"`` | ``"ns"`` | ``"iso"``.
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
    """Like :func:`parse_timestamps`, also returning the resolved unit (``s|ms|us|ns|iso``).

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
        _check_range(seconds, raw, now, fail)
    else:
        if not is_num.all():
            bad = int(np.argmin(is_num))
            raise fail(
                bad,
                f"unparsable timestamp {str(raw.iloc[bad])!r}",
                "expected epoch seconds, epoch milliseconds or ISO-8601",
            )
        if resolved == "num":
            below = [num < lim for _, lim in AUTO_LIMITS]
            units = np.select(below, [u for u, _ in AUTO_LIMITS], "ns")
            own = num / np.select(below, [FACTORS[u] for u, _ in AUTO_LIMITS], FACTORS["ns"])
            _check_range(np.floor(own), raw, now, fail)  # each value in its own unit first
            first_unit = expected or str(units[0])
            odd = units != first_unit
            if odd.any():
                bad = int(np.argmax(odd))
                raise fail(
                    bad,
                    f"timestamp {str(raw.iloc[bad])!r} mixes {NAMES[first_unit]} and "
                    f"{NAMES[str(units[bad])]} (earlier values are {first_unit})",
                    "use one unit for the whole column, or set time_unit explicitly",
                )
            resolved = first_unit
        factor = FACTORS[resolved]
        use_int = factor > 1 or pd.api.types.is_integer_dtype(raw.dtype)
        exact = _as_int(raw) if use_int else None  # no float rounding for us / ns
        if exact is not None:
            seconds = exact // factor
            _check_range(seconds, raw, now, fail)
        else:
            floored = np.floor(num / factor)
            _check_range(floored, raw, now, fail)  # before the cast: 1e30 must not wrap
            seconds = floored.astype(np.int64)
    if unit == "auto" and expected is not None and resolved != expected:
        raise fail(
            0,
            f"timestamp {str(raw.iloc[0])!r} is {resolved} but earlier rows are {expected}",
            "use one unit for the whole column",
        )
    return seconds, resolved


def _as_int(raw: pd.Series) -> np.ndarray | None:
    """int64 values of an integer column or of integer strings; ``None`` otherwise."""
    if pd.api.types.is_integer_dtype(raw.dtype):
        return raw.to_numpy(np.int64)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return None
    try:
        arr = pc.utf8_trim_whitespace(pa.array(raw.astype(str)))
        return pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


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


def _check_range(seconds: np.ndarray, raw: pd.Series, now: float | None, fail: Callable) -> None:
    """DataError at the first time before 1970 or later than now + ``FUTURE_SLACK_S``."""
    neg = seconds < 0
    if neg.any():
        bad = int(np.argmax(neg))
        raise fail(
            bad,
            f"negative timestamp {str(raw.iloc[bad])!r} (before 1970)",
            "times must be at or after 1970-01-01 (epoch 0)",
        )
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
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(
        dtype=np.int64
    )


def _arrow_seconds(arr: pa.Array) -> np.ndarray | None:
    """int64 seconds of an Arrow timestamp / date column (``None`` for other types)."""
    if pa.types.is_timestamp(arr.type):
        factor = FACTORS[arr.type.unit]
        return arr.cast(pa.int64()).to_numpy(zero_copy_only=False) // factor
    if pa.types.is_date32(arr.type):
        return arr.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64) * DAY_S
    if pa.types.is_date64(arr.type):
        return arr.cast(pa.int64()).to_numpy(zero_copy_only=False) // 1000
    return None


class TimeColumn:
    """A timestamp column parsed chunk by chunk (the unit resolved by the first chunk holds).

    Args:
        column: the source column (named in errors and warnings).
        unit: the schema's ``time_unit``.
    """

    def __init__(self, column: str, unit: str = "auto") -> None:
        self.column, self.unit = column, unit
        self.resolved: str | None = None
        self.lo, self.hi = None, None
        self.whole_days = True

    def add(self, values: Any, lines: np.ndarray, file: str | Path | None) -> np.ndarray:
        """Seconds of one chunk (pandas Series, numpy or Arrow array)."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array):
            if values.null_count:
                row = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
                raise DataError(
                    "missing timestamp",
                    file=file,
                    line=int(lines[row]),
                    column=self.column,
                    hint="every event needs a time; fill it in or drop the row",
                )
            typed = _arrow_seconds(values)
            if typed is not None:
                self.resolved = self.resolved or "typed"
                return self._seen(typed, values.to_pandas(), lines, file)
            values = values.to_pandas()
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        seconds, self.resolved = parse_timestamps_with_unit(
            series,
            unit=self.unit,
            expected=self.resolved,
            file=file,
            column=self.column,
            lines=lines,
        )
        if self.resolved == "iso":
            text = series.astype(str).str.strip()
            self.whole_days &= bool((text.str.len() <= 10).all())
        return self._seen(seconds, series, lines, file)

    def _seen(
        self, seconds: np.ndarray, raw: pd.Series, lines: np.ndarray, file: Any
    ) -> np.ndarray:
        if len(seconds):
            lo, hi = int(seconds.min()), int(seconds.max())
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)
            if self.resolved != "iso":
                self.whole_days &= bool((seconds % DAY_S == 0).all())
        if self.resolved == "typed":
            fail = _failer(file, self.column, lines)
            _check_range(seconds, raw.reset_index(drop=True), None, fail)
        return seconds

    def finish(self) -> dict[str, Any]:
        """Reader notes (``time_unit``, ``time_resolution``); logs a warning when an explicit
        unit puts every event before 1973 and another unit would not."""
        info: dict[str, Any] = {"time_unit": self.resolved}
        if self.hi is None:
            return info
        if self.unit in ("ms", "us", "ns") and self.hi < PLAUSIBLE_S:
            raw_hi = self.hi * FACTORS[self.unit]
            fits = [u for u, f in FACTORS.items() if PLAUSIBLE_S <= raw_hi / f <= time.time()]
            _log.warning(
                "column %r: with time_unit %s every event lies between %s and %s; %s",
                self.column,
                self.unit,
                _day(self.lo),
                _day(self.hi),
                f"time_unit {fits[0]} would put them in {_day(raw_hi // FACTORS[fits[0]])}"
                if fits
                else "check time_unit",
            )
            info["time_warning"] = f"implausible range for time_unit {self.unit}"
        if self.whole_days and self.hi > self.lo:
            info["time_resolution"] = "day"
        return info


def _day(seconds: int) -> str:
    return str(pd.Timestamp(int(seconds), unit="s").date())


def _failer(file: Any, column: str, lines: np.ndarray) -> Callable:
    def fail(idx: int, message: str, hint: str) -> DataError:
        return DataError(message, file=file, line=int(lines[idx]), column=column, hint=hint)

    return fail
