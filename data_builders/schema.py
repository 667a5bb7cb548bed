"""``Schema``: how to read a custom behavior log (``--format csv``).

A schema is a YAML file (``graphseq build --format csv --input DIR --schema log.yaml``) or
``Schema.from_dict({...})``. Only ``user`` and ``item`` name required columns; every other key
has a default. File paths are relative to the input directory (when the input is a file, it
*is* the events file and side tables are found next to it). Every text file may be compressed
(.gz, .bz2, .xz, .zst)::

    events: ratings.csv          # events file or Parquet directory; default: the input itself
    # events: {sql: "SELECT ... FROM 'part-*.parquet'", database: log.duckdb}   # DuckDB query
    # sources:                   # or several files, read in this order (GHCF / MuLe style)
    #   - {file: buy.txt, behavior: buy}
    #   - {file: test.txt, behavior: buy, stage: test}
    delimiter: ","               # , \\t ; |  (or "tab", "space"); default: sniffed
    encoding: utf-8              # text encoding of every file (a byte-order mark overrides it)
    header: true                 # false: name the columns with `columns: [user, item, ...]`
    user: userId                 # column names in the events file
    item: movieId
    timestamp: timestamp         # omit it: event order is input order (report "time")
    behavior: null               # column holding the behavior name (click, buy, ...)
    value: rating                # numeric column stored as the edge value (default 1.0)
    default_behavior: interact   # behavior of every event when there is no behavior column
    behavior_rule:               # split a rating-only log into two views
      {column: rating, threshold: 4, at_or_above: rate_high, below: rate_low}
    normalize_behaviors: false   # true: Buy, BUY and buy are one behavior (buy)
    stage: null                  # column of train / valid / test (split=predefined)
    targets: [rate_high]         # behaviors to recommend and evaluate; null = all
    time_unit: auto              # auto | s | ms | us | ns | iso
    items: {file: movies.csv, item: movieId, tags: genres, tag_sep: "|", title: title}
    kg: {file: kg.tsv, head: head, relation: relation, tail: tail}
    links: {file: links.tsv, item: movieId, entity: entity}
    tag_events: {file: tags.csv, user: userId, tag: tag, timestamp: timestamp}

With a ``behavior_rule`` and no ``value`` column, the rule's column is the value.
An unknown key or a wrong type is a :class:`DataError` that names the file, the line and the
valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data_builders.errors import DataError
from data_builders.timeparse import UNITS

DELIMITER_ALIASES = {
    "tab": "\t",
    "\\t": "\t",
    "comma": ",",
    "semicolon": ";",
    "pipe": "|",
    "space": " ",
}


@dataclass(frozen=True)
class BehaviorRule:
    """Behavior from a numeric column: ``at_or_above`` when ``column >= threshold``, else ``below``."""

    column: str  # numeric column the rule reads
    threshold: float = 4.0  # ratings at or above this are "high"
    at_or_above: str = "rate_high"  # behavior for values >= threshold
    below: str = "rate_low"  # behavior for values < threshold


@dataclass(frozen=True)
class ItemsSpec:
    """Item side table: one row per item, with tags and a title."""

    file: str | None = None  # path relative to the input directory; None: a table in memory
    item: str = "item"  # item id column
    tags: str | None = None  # column of tags / genres joined by tag_sep
    tag_sep: str = "|"  # separator inside the tags column
    title: str | None = None  # free-text title column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class KGSpec:
    """Knowledge-graph triples file."""

    file: str | None = None  # path relative to the input directory; None: a table in memory
    head: str = "head"  # head entity column
    relation: str = "relation"  # relation column
    tail: str = "tail"  # tail entity column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class LinksSpec:
    """Item → KG entity links file."""

    file: str | None = None  # path relative to the input directory; None: a table in memory
    item: str = "item"  # item id column
    entity: str = "entity"  # KG entity column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class TagEventsSpec:
    """User tag events file (a user applies a tag at a time)."""

    file: str | None = None  # path relative to the input directory; None: a table in memory
    user: str = "user"  # user id column
    tag: str = "tag"  # tag column
    timestamp: str = "timestamp"  # time column, parsed like the events' time column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class SourceSpec:
    """One events file of several (e.g. one file per behavior, plus valid and test files)."""

    file: str  # path relative to the input directory (text, compressed text or Parquet)
    behavior: str | None = None  # behavior of every event in the file (None: the schema's)
    stage: str | None = None  # train | valid | test for every event (None: the stage column)


@dataclass(frozen=True)
class Schema:
    """How to read a custom log; see the module docstring for the YAML form."""

    user: str  # user id column
    item: str  # item id column
    timestamp: str | None = None  # time column; None: event order is input order
    events: str | None = None  # events file or Parquet directory; None: the input path itself
    sql: str | None = None  # DuckDB query giving the events (schema `events: {sql: ...}`)
    database: str | None = None  # DuckDB database file the query reads (None: in-memory)
    sources: tuple[SourceSpec, ...] | None = None  # several events files (per behavior/stage)
    delimiter: str | None = None  # None: sniffed among , \t ; |
    encoding: str = "utf-8"  # text encoding of every file (a byte-order mark overrides it)
    header: bool = True  # whether line 1 of each events file names the columns
    columns: tuple[str, ...] | None = None  # column names of headerless events files
    behavior: str | None = None  # behavior column; None: default_behavior or behavior_rule
    value: str | None = None  # numeric value column; None: 1.0 (or the rule's column)
    default_behavior: str = "interact"  # behavior when there is no behavior column
    behavior_rule: BehaviorRule | None = None  # split a rating log into views
    normalize_behaviors: bool = False  # merge behaviors differing by case/spacing (Buy, buy)
    stage: str | None = None  # column of train / valid / test, for split=predefined
    targets: tuple[str, ...] | None = None  # target behaviors; None: all
    time_unit: str = "auto"  # auto | s | ms | us | ns | iso
    items: ItemsSpec | None = None  # item side table
    kg: KGSpec | None = None  # knowledge-graph triples
    links: LinksSpec | None = None  # item → entity links
    tag_events: TagEventsSpec | None = None  # user tag events

    def __post_init__(self) -> None:
        """``Schema(...)`` in Python takes what YAML does: a string for a list (``targets="buy"``
        is ``("buy",)``), lists for tuples and dicts for the nested sections; anything else
        is a :class:`DataError` naming the key."""
        hints = typing.get_type_hints(Schema)
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            if val is None or dataclasses.is_dataclass(val):
                continue
            if isinstance(val, tuple) and all(dataclasses.is_dataclass(v) for v in val) and val:
                continue
            plain = list(val) if isinstance(val, tuple) else val
            fixed = _value(hints[f.name], plain, (f.name,), "Schema", {}, None)
            if fixed != val or type(fixed) is not type(val):
                object.__setattr__(self, f.name, fixed)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Schema:
        """Read a schema YAML file; errors name the file and the line of the offending key."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise DataError(f"cannot read schema: {err.strerror}", file=path) from err
        try:
            data = yaml.safe_load(text)
            key_lines = _key_lines(yaml.compose(text))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(err, "problem", None) or str(err)
            raise DataError(f"invalid YAML: {problem}", file=path, line=line) from err
        return cls.from_dict(data if data is not None else {}, file=path, key_lines=key_lines)

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], *, file: str | Path | None = None, key_lines: dict | None = None
    ) -> Schema:
        """Build a schema from a plain dict (the parsed YAML); validates keys and types."""
        key_lines = key_lines or {}
        if not isinstance(d, dict):
            raise DataError(
                f"a schema must be a mapping, got {type(d).__name__}", file=file, line=1
            )
        kwargs = _convert(cls, d, (), file, key_lines)
        for key in ("user", "item"):
            if key not in kwargs:
                raise DataError(
                    f"schema lacks the required key {key!r}",
                    file=file,
                    hint="name the user and item columns (and timestamp, when there is one)",
                )
        for src in kwargs.get("sources") or ():
            if src.stage is not None and src.stage not in ("train", "valid", "test"):
                raise DataError(
                    f"source {src.file!r}: stage must be train, valid or test",
                    file=file,
                    line=key_lines.get(("sources",)),
                )
        given = [k for k in ("events", "sql", "sources") if kwargs.get(k)]
        if len(given) > 1:
            raise DataError(
                f"give one of events, events: {{sql: ...}} and sources, not {' and '.join(given)}",
                file=file,
                line=key_lines.get((given[-1],)),
            )
        if kwargs.get("behavior") and kwargs.get("behavior_rule"):
            raise DataError(
                "give either 'behavior' or 'behavior_rule', not both",
                file=file,
                line=key_lines.get(("behavior_rule",)),
            )
        if kwargs.get("time_unit", "auto") not in UNITS:
            raise DataError(
                f"time_unit must be one of {', '.join(UNITS)}",
                file=file,
                line=key_lines.get(("time_unit",)),
            )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready) form of the schema (tuples as lists)."""

        def plain(v: Any) -> Any:
            if isinstance(v, (tuple, list)):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return plain(dataclasses.asdict(self))

    @property
    def staged(self) -> bool:
        """Whether events carry a stage (a stage column or per-source stages)."""
        return self.stage is not None or any(s.stage for s in self.sources or ())


def _convert(cls: type, d: dict, prefix: tuple, file: Any, key_lines: dict) -> dict[str, Any]:
    """Check ``d`` against the typed fields of dataclass ``cls``; return constructor kwargs.

    The field annotations are the specification: ``str``, ``bool``, ``float``,
    ``tuple[str, ...]`` (a string is a one-element list), a nested spec dataclass, or a tuple
    of them; ``X | None`` also takes null. Required fields (no default) must be present.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    where = "".join(p + "." for p in prefix)
    out: dict[str, Any] = {}
    for key, val in d.items():
        line = key_lines.get((*prefix, key))
        if key not in fields:
            raise DataError(
                f"unknown schema key '{where}{key}'",
                file=file,
                line=line,
                hint=f"valid keys: {', '.join(fields)}",
            )
        if cls is Schema and key == "events" and isinstance(val, dict):
            val = _events_mapping(val, file, line)  # events: {sql: ..., database: ...}
            out.update(val)
            continue
        if val is None:
            if fields[key].default is dataclasses.MISSING:
                raise _bad(where + key, "set", val, file, line)
            out[key] = None
            continue
        out[key] = _value(hints[key], val, (*prefix, key), file, key_lines, line)
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in out]
    if required and prefix:
        raise DataError(
            f"schema key {prefix[-1]!r} lacks {', '.join(required)}",
            file=file,
            line=key_lines.get(prefix),
        )
    return out


def _value(hint: Any, val: Any, path: tuple, file: Any, key_lines: dict, line: Any) -> Any:
    """``val`` checked (and converted) against the type ``hint``."""
    name = ".".join(path)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]  # every optional field is `X | None`
        args = list(typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        elem = args[0]
        items = [val] if isinstance(val, (str, dict)) else val
        if not isinstance(items, list):
            raise _bad(name, _describe(hint), val, file, line)
        return tuple(_value(elem, v, path, file, key_lines, line) for v in items)
    if dataclasses.is_dataclass(hint):
        if not isinstance(val, dict):
            raise _bad(name, "a mapping", val, file, line)
        return hint(**_convert(hint, val, path, file, key_lines))
    if hint is bool:
        if not isinstance(val, bool):
            raise _bad(name, "true or false", val, file, line)
        return val
    if hint is float:
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise _bad(name, "a number", val, file, line)
        return float(val)
    if not isinstance(val, str):
        raise _bad(name, "a list of strings" if path[-1] in _LISTS else "a string", val, file, line)
    if path[-1] == "delimiter":
        val = DELIMITER_ALIASES.get(val, val)
        if len(val) != 1:
            raise _bad(name, "one character (or 'tab')", val, file, line)
    return val


_LISTS = {"targets", "columns"}  # tuple[str, ...] fields, named so in errors


def _describe(hint: Any) -> str:
    elem = typing.get_args(hint)[0]
    return "a list of strings" if elem is str else "a list of mappings"


def _bad(key: str, expected: str, val: Any, file: Any, line: Any) -> DataError:
    return DataError(
        f"schema key '{key}' must be {expected}, got {type(val).__name__} {val!r}",
        file=file,
        line=line,
    )


def _events_mapping(val: dict, file: Any, line: Any) -> dict[str, Any]:
    """``events: {sql: QUERY, database: FILE}`` → the ``sql`` / ``database`` keys."""
    unknown = sorted(set(val) - {"sql", "database"})
    if unknown or not isinstance(val.get("sql"), str):
        raise DataError(
            "schema key 'events' as a mapping takes sql (a query) and optionally database",
            file=file,
            line=line,
            hint='events: {sql: "SELECT user_id, item_id, ts FROM events"}',
        )
    return {k: v for k, v in val.items() if v is not None}


def _key_lines(node: Any, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path of a composed YAML mapping to its 1-based line."""
    out: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, val_node in node.value:
            path = (*prefix, key_node.value)
            out[path] = key_node.start_mark.line + 1
            out.update(_key_lines(val_node, path))
    return out
