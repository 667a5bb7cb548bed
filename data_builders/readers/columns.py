"""Column chunks → canonical event columns, without a Python string per row.

Readers hand :class:`EventColumns` one chunk at a time (pandas Series, numpy or Arrow arrays,
with the physical line of every row). Id and behavior columns are dictionary-encoded per chunk
(``pyarrow.compute.dictionary_encode``): cleaning (strip; integral floats ``12.0`` → ``12``),
validation (empty / NaN-like ids name their line) and casts run on each chunk's dictionary,
not on every row. ``finish()`` unifies the dictionaries into pandas ``Categorical`` columns
whose categories are the raw id strings; every other column is a fixed-dtype numpy array.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_builders.errors import DataError
from data_builders.log import EVENT_COLUMNS
from data_builders.timeparse import TimeColumn, to_float

_log = logging.getLogger(__name__)
NA_STRINGS = ("nan", "NaN", "NAN", "None", "null", "NULL", "<NA>", "N/A", "n/a", "#N/A")
INTEGRAL_FLOAT = r"^([+-]?[0-9]+)\.0+$"  # "12.0" → "12"
STAGES = {"train": 0, "valid": 1, "validation": 1, "val": 1, "test": 2}  # stage column values


def to_arrow(values: Any) -> pa.Array:
    """A pandas Series, numpy array or Arrow (chunked) array as one Arrow array."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy()
            dic = pa.array(values.cat.categories.astype(str))
            return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dic)
        values = pa.array(values, from_pandas=True)  # chunked when pandas holds Arrow chunks
        return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return pa.array(np.asarray(values), from_pandas=True)


def _fail(message: str, file: Path, lines: np.ndarray, row: int, column: str, hint: str):
    return DataError(message, file=file, line=int(lines[row]), column=column, hint=hint)


class IdColumn:
    """An id-like column (user, item, behavior) gathered chunk by chunk as dictionary codes.

    Args:
        column: the source column name (named in errors).
        na_strings: whether ids spelled like NaN / null / None are errors.
    """

    MERGE_EVERY = 16  # chunks whose dictionaries are merged into the column's at a time

    def __init__(self, column: str, *, na_strings: bool = True) -> None:
        self.column = column
        self.na_strings = na_strings
        self.parts: list[pa.DictionaryArray] = []  # chunks not yet merged
        self.codes: list[np.ndarray] = []  # merged chunks: codes into self.dictionary
        self.dictionary = pa.array([], pa.string())  # the column's distinct ids so far
        self.float_rows = 0  # rows whose id was written as an integral float ("12.0", 12.0)

    def add(self, values: Any, lines: np.ndarray, file: Path) -> None:
        """Encode, clean and check one chunk; errors name the file, line and column."""
        arr = to_arrow(values)
        if pa.types.is_dictionary(arr.type) and not _is_text(arr.dictionary.type):
            arr = arr.dictionary.take(arr.indices)  # a dictionary of numbers: decode it
        if arr.null_count:
            row = int(np.argmax(arr.is_null().to_numpy(zero_copy_only=False)))
            raise _fail("missing id", file, lines, row, self.column, f"fill in {self.column}")
        if pa.types.is_dictionary(arr.type):  # Parquet / Arrow dictionaries: use them as they are
            indices, dic = arr.indices, arr.dictionary
        else:
            if pa.types.is_floating(arr.type):
                self.float_rows += int(pc.sum(pc.equal(pc.floor(arr), arr)).as_py() or 0)
                bad = pc.invert(pc.is_finite(arr)).to_numpy(zero_copy_only=False)
                if bad.any():
                    row = int(np.argmax(bad))
                    raise _fail("missing id 'nan'", file, lines, row, self.column, "fill it in")
            enc = pc.dictionary_encode(arr)
            indices, dic = enc.indices, enc.dictionary
        codes = indices.to_numpy(zero_copy_only=False)
        if not _is_text(dic.type):
            dic = pc.cast(dic, pa.string())  # ints and floats: 12, 12.0 → "12"; 12.5 → "12.5"
        else:
            dic = pc.utf8_trim_whitespace(dic)
            is_float = pc.match_substring_regex(dic, INTEGRAL_FLOAT)
            if pc.any(is_float).as_py():
                counts = np.bincount(codes, minlength=len(dic))
                self.float_rows += int(counts[is_float.to_numpy(zero_copy_only=False)].sum())
                dic = pc.replace_substring_regex(dic, INTEGRAL_FLOAT, r"\1")
        bad = pc.equal(dic, "")
        if self.na_strings:
            bad = pc.or_(bad, pc.is_in(dic, value_set=pa.array(NA_STRINGS)))
        bad_np = bad.to_numpy(zero_copy_only=False)
        if bad_np.any() and bad_np[codes].any():
            row = int(np.argmax(bad_np[codes]))
            shown = str(to_arrow(values)[row].as_py())
            raise _fail(
                f"missing id {shown!r}",
                file,
                lines,
                row,
                self.column,
                f"fill in {self.column} or drop the row",
            )
        if len(pc.unique(dic)) < len(dic):  # cleaning merged entries (" a" and "a")
            again = pc.dictionary_encode(dic)
            indices, dic = again.indices.take(indices), again.dictionary
        indices = indices.cast(pa.int32())
        self.parts.append(pa.DictionaryArray.from_arrays(indices, pc.cast(dic, pa.string())))
        if len(self.parts) >= self.MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        """Fold pending chunks into the column dictionary (old ids keep their codes: Arrow's
        unification puts the first chunk's dictionary first), keeping only their codes."""
        head = pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), self.dictionary)
        unified = pa.chunked_array([head, *self.parts]).unify_dictionaries()
        self.parts = []
        self.dictionary = unified.chunks[0].dictionary
        self.codes += [c.indices.to_numpy().astype(np.int32) for c in unified.chunks[1:]]
        pa.default_memory_pool().release_unused()

    def finish(self) -> pd.Categorical:
        """All chunks as one Categorical (codes int32, categories the raw id strings)."""
        self._merge()
        codes = np.concatenate(self.codes) if self.codes else np.zeros(0, np.int32)
        self.codes = []
        categories = pd.Index(self.dictionary.to_pandas(), dtype="str")
        return pd.Categorical.from_codes(codes, categories=categories, validate=False)


def normalize_behaviors(cat: pd.Categorical, normalize: bool, column: str) -> pd.Categorical:
    """Merge behaviors differing only by case or whitespace (``normalize``), else warn."""
    names = pd.Index(cat.categories)
    folded = names.str.lower().str.replace(r"\s+", " ", regex=True)
    if folded.nunique() == len(names):
        return cat
    if not normalize:
        clash = folded[folded.duplicated(keep=False)]
        groups = sorted({" / ".join(sorted(names[folded == f])) for f in clash})
        _log.warning(
            "behavior column %r: names differ only by case or spacing (%s) and become separate "
            "views; set 'normalize_behaviors: true' in the schema to merge them",
            column,
            "; ".join(groups),
        )
        return cat
    new_codes, uniques = pd.factorize(folded)
    codes = new_codes[np.asarray(cat.codes)]
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="str"))


def parse_numbers(values: Any, lines: np.ndarray, *, file: Path, column: str) -> np.ndarray:
    """Numeric column → float64; an empty, unparsable or infinite value is a DataError."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = to_arrow(values).to_pandas()
    num = to_float(pd.Series(values) if not isinstance(values, pd.Series) else values)
    bad = ~np.isfinite(num)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"not a number: {str(pd.Series(values).iloc[i])!r}",
            file=file,
            line=int(lines[i]),
            column=column,
            hint="the column must hold finite numbers",
        )
    return num


def parse_stages(values: Any, lines: np.ndarray, *, file: Path, column: str) -> np.ndarray:
    """Stage column (train / valid / test, any case) → int8 codes 0 / 1 / 2."""
    enc = pc.dictionary_encode(to_arrow(values).cast(pa.string()))
    names = [str(s).strip().lower() if s is not None else "" for s in enc.dictionary.to_pylist()]
    lut = np.array([STAGES.get(n, -1) for n in names] + [-1], dtype=np.int8)
    idx = enc.indices.fill_null(len(names)).to_numpy(zero_copy_only=False)
    out = lut[idx]
    if (out < 0).any():
        row = int(np.argmax(out < 0))
        shown = enc.dictionary[idx[row]].as_py() if idx[row] < len(names) else None
        raise _fail(f"unknown stage {shown!r}", file, lines, row, column, "use train, valid, test")
    return out


class EventColumns:
    """Gathers canonical event columns chunk by chunk; :meth:`finish` makes the events table.

    Args:
        user, item, behavior: source column names (named in errors).
        timed: whether chunks carry timestamps; ``False``: event order is input order and
            ``timestamp`` is the row's position (0..n-1).
        time_unit: the schema's ``time_unit``.
        staged: whether chunks carry a stage (train / valid / test).
    """

    def __init__(
        self,
        user: str = "user",
        item: str = "item",
        behavior: str = "behavior",
        *,
        timed: bool = True,
        time_unit: str = "auto",
        time_column: str = "timestamp",
        staged: bool = False,
    ) -> None:
        self.user, self.item = IdColumn(user), IdColumn(item)
        self.behavior = IdColumn(behavior)
        self.time = TimeColumn(time_column, time_unit) if timed else None
        self.staged = staged
        self.ts: list[np.ndarray] = []
        self.value: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []
        self.stage: list[np.ndarray] = []
        self.rows = 0

    def add(
        self,
        file: Path,
        lines: np.ndarray,
        *,
        user: Any,
        item: Any,
        behavior: Any,
        timestamp: Any = None,
        value: Any = 1.0,
        stage: Any = None,
        line_offset: int = 0,
    ) -> None:
        """One chunk; ``behavior`` and ``value`` may be scalars, ``stage`` a scalar code.

        ``line_offset`` is added to ``lines`` in the ``line`` column (logs read from several
        files keep one increasing order); errors name the physical ``lines``.
        """
        n = len(lines)
        self.user.add(user, lines, file)
        self.item.add(item, lines, file)
        if isinstance(behavior, str):
            behavior = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array([behavior])
            )
        self.behavior.add(behavior, lines, file)
        if self.time is not None:
            self.ts.append(self.time.add(timestamp, lines, file))
        else:
            self.ts.append(np.arange(self.rows, self.rows + n, dtype=np.int64))
        self.value.append(np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy())
        self.lines.append(np.asarray(lines, dtype=np.int64) + line_offset)
        if self.staged:
            self.stage.append(np.broadcast_to(np.asarray(stage, dtype=np.int8), (n,)).copy())
        self.rows += n

    def finish(self, *, normalize: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
        """``(events, info)``: the canonical events and what the reader noticed.

        ``info`` keys: ``time`` (``"timestamp"`` | ``"input_order"``), ``time_resolution``
        (``"day"`` when every timestamp is a whole UTC day), ``float_ids`` (rows per column
        whose id was an integral float, written as an integer).
        """
        cols: dict[str, Any] = {
            "user": self.user.finish(),
            "item": self.item.finish(),
            "timestamp": _cat(self.ts, np.int64),
            "behavior": normalize_behaviors(
                self.behavior.finish(), normalize, self.behavior.column
            ),
            "value": _cat(self.value, np.float64),
            "line": _cat(self.lines, np.int64),
        }
        self.ts, self.value, self.lines = [], [], []
        events = pd.DataFrame(cols, copy=False)[list(EVENT_COLUMNS)]
        if self.staged:
            events["stage"] = _cat(self.stage, np.int8)
        self.stage = []
        release_memory()
        info: dict[str, Any] = {"time": "timestamp" if self.time else "input_order"}
        if self.time is not None:
            info.update(self.time.finish())
        floats = {c.column: c.float_rows for c in (self.user, self.item) if c.float_rows}
        if floats:
            info["float_ids"] = floats
            _log.warning(
                "ids written as integral floats (12.0) were read as integers (12): %s",
                ", ".join(f"{k}: {v} rows" for k, v in floats.items()),
            )
        return events, info


def release_memory() -> None:
    """Hand freed memory back to the OS: Arrow's pool, and glibc's heap (per-chunk arrays
    below glibc's mmap threshold leave free heap pages behind; ``malloc_trim`` returns them)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def clean_strings(values: pd.Series) -> pd.Series:
    """Side-table ids: stripped strings, integral floats written as integers."""
    ids = values.astype(str).str.strip()
    return ids.str.replace(re.compile(INTEGRAL_FLOAT), r"\1", regex=True)
