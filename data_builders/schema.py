"""``Schema``: how to read a custom behavior log (``--format csv``).

A schema is a YAML file (``graphseq build --format csv --input DIR --schema log.yaml``) or
``Schema.from_dict({...})``. Only ``user``, ``item`` and ``timestamp`` name required columns;
every other key has a default. File paths are relative to the input directory (when the input
is a file, it *is* the events file and side tables are found next to it)::

    events: ratings.csv          # events file; default: the input path itself
    delimiter: ","               # , \\t ; |  (or "tab"); default: sniffed. .parquet also works
    encoding: utf-8              # text encoding of every file
    user: userId                 # column names in the events file
    item: movieId
    timestamp: timestamp
    behavior: null               # column holding the behavior name (click, buy, ...)
    value: rating                # numeric column stored as the edge value (default 1.0)
    default_behavior: interact   # behavior of every event when there is no behavior column
    behavior_rule:               # split a rating-only log into two views
      {column: rating, threshold: 4, at_or_above: rate_high, below: rate_low}
    targets: [rate_high]         # behaviors to recommend and evaluate; null = all
    time_unit: auto              # auto | s | ms | iso
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data_builders.errors import DataError
from data_builders.timeparse import UNITS

DELIMITER_ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


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

    file: str  # path relative to the input directory
    item: str = "item"  # item id column
    tags: str | None = None  # column of tags / genres joined by tag_sep
    tag_sep: str = "|"  # separator inside the tags column
    title: str | None = None  # free-text title column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class KGSpec:
    """Knowledge-graph triples file."""

    file: str  # path relative to the input directory
    head: str = "head"  # head entity column
    relation: str = "relation"  # relation column
    tail: str = "tail"  # tail entity column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class LinksSpec:
    """Item → KG entity links file."""

    file: str  # path relative to the input directory
    item: str = "item"  # item id column
    entity: str = "entity"  # KG entity column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class TagEventsSpec:
    """User tag events file (a user applies a tag at a time)."""

    file: str  # path relative to the input directory
    user: str = "user"  # user id column
    tag: str = "tag"  # tag column
    timestamp: str = "timestamp"  # time column, parsed like the events' time column
    delimiter: str | None = None  # default: sniffed


@dataclass(frozen=True)
class Schema:
    """How to read a custom log; see the module docstring for the YAML form."""

    user: str  # user id column
    item: str  # item id column
    timestamp: str  # time column
    events: str | None = None  # events file; None: the input path itself
    delimiter: str | None = None  # None: sniffed among , \t ; |
    encoding: str = "utf-8"  # text encoding of every file
    behavior: str | None = None  # behavior column; None: default_behavior or behavior_rule
    value: str | None = None  # numeric value column; None: 1.0 (or the rule's column)
    default_behavior: str = "interact"  # behavior when there is no behavior column
    behavior_rule: BehaviorRule | None = None  # split a rating log into views
    targets: tuple[str, ...] | None = None  # target behaviors; None: all
    time_unit: str = "auto"  # auto | s | ms | iso
    items: ItemsSpec | None = None  # item side table
    kg: KGSpec | None = None  # knowledge-graph triples
    links: LinksSpec | None = None  # item → entity links
    tag_events: TagEventsSpec | None = None  # user tag events

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
        for key in ("user", "item", "timestamp"):
            if key not in kwargs:
                raise DataError(
                    f"schema lacks the required key {key!r}",
                    file=file,
                    hint="name the user, item and timestamp columns",
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
        if kwargs.get("targets") is not None:
            kwargs["targets"] = tuple(kwargs["targets"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready) form of the schema."""
        out = dataclasses.asdict(self)
        if out["targets"] is not None:
            out["targets"] = list(out["targets"])
        return out


_NESTED = {
    "behavior_rule": BehaviorRule,
    "items": ItemsSpec,
    "kg": KGSpec,
    "links": LinksSpec,
    "tag_events": TagEventsSpec,
}
_FLOATS = {"threshold"}
_LISTS = {"targets"}


def _convert(cls: type, d: dict, prefix: tuple, file: Any, key_lines: dict) -> dict[str, Any]:
    """Check ``d`` against the fields of dataclass ``cls``; return constructor kwargs."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
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

        def bad(expected: str, key: str = key, val: Any = val, line: Any = line) -> DataError:
            return DataError(
                f"schema key '{where}{key}' must be {expected}, got {type(val).__name__} {val!r}",
                file=file,
                line=line,
            )

        if val is None:
            if fields[key].default is dataclasses.MISSING:
                raise bad("set")
            out[key] = None
        elif key in _NESTED:
            if not isinstance(val, dict):
                raise bad("a mapping")
            sub = _convert(_NESTED[key], val, (*prefix, key), file, key_lines)
            required = [
                f.name
                for f in dataclasses.fields(_NESTED[key])
                if f.default is dataclasses.MISSING and f.name not in sub
            ]
            if required:
                raise DataError(
                    f"schema key {key!r} lacks {', '.join(required)}", file=file, line=line
                )
            out[key] = _NESTED[key](**sub)
        elif key in _FLOATS:
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise bad("a number")
            out[key] = float(val)
        elif key in _LISTS:
            if isinstance(val, str):
                val = [val]
            if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
                raise bad("a list of strings")
            out[key] = list(val)
        elif not isinstance(val, str):
            raise bad("a string")
        else:
            if key == "delimiter":
                val = DELIMITER_ALIASES.get(val, val)
                if len(val) != 1:
                    raise bad("one character (or 'tab')")
            out[key] = val
    return out


def _key_lines(node: Any, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path of a composed YAML mapping to its 1-based line."""
    out: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, val_node in node.value:
            path = (*prefix, key_node.value)
            out[path] = key_node.start_mark.line + 1
            out.update(_key_lines(val_node, path))
    return out
