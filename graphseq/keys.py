"""How a part declares its config keys: a frozen dataclass of :func:`key` fields.

Each part of a model (the sequence encoder, the item encoder, the objective, ...) declares the
keys it owns beside its ``from_config`` — default, one-line doc, range and search space — and
:class:`graphseq.config.TrainConfig` is the union of those declarations. Ranges, the keys
each model reads and the ``graphseq tune`` space are read back from them, so a key is
written down once. This module imports nothing heavy (the CLI parses configs before torch).

Example::

    @dataclass(frozen=True)
    class SequenceKeys:
        num_layers: int = key(2, "Transformer / GRU layers", low=0, space=rng(1, 3))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], str | None]  # a value -> a problem, or None when it is fine


@dataclass(frozen=True)
class Param:
    """One searched key: a range (``low``..``high``, ``log`` scale) or ``choices``; or a
    ``fixed`` value (``choices`` of one). ``integer`` ranges draw ints."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any, name: str) -> Any:
        """The trial's value (``trial`` is an ``optuna.Trial``)."""
        if self.choices is not None:
            if len(self.choices) == 1:
                return self.choices[0]
            return trial.suggest_categorical(name, list(self.choices))
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, "integer": self.integer}


def rng(low: float, high: float, log: bool = False) -> Param:
    """A searched range (ints when both ends are ints)."""
    return Param(low, high, log, isinstance(low, int) and isinstance(high, int))


def pick(*choices: Any) -> Param:
    """Searched choices."""
    return Param(choices=tuple(choices))


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric key (element-wise for tuples)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def problem(self, v: float) -> str | None:
        ok_lo = v > self.low if self.low_open else v >= self.low
        ok_hi = v < self.high if self.high_open else v <= self.high
        if ok_lo and ok_hi:
            return None
        lo = ("(" if self.low_open else "[") + f"{self.low:g}"
        return f"must lie in {lo}, {self.high:g}{')' if self.high_open else ']'}, got {v!r}"


@dataclass(frozen=True)
class KeyInfo:
    """What a :func:`key` field carries besides its default."""

    doc: str
    range: Range | None = None
    space: Param | None = None  # the default ``graphseq tune`` space of this key
    fixed: bool = False  # chooses the data, protocol or run identity: never searched
    check: Check | None = None  # a further check of the value (e.g. the view names)


def key(
    default: Any,
    doc: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    space: Param | None = None,
    fixed: bool = False,
    check: Check | None = None,
) -> Any:
    """A config field: ``default``, a one-line ``doc``, an optional range (``low``/``high``,
    closed unless ``*_open``), a default search ``space``, ``fixed`` (never searched) and a
    ``check`` for what a range cannot say."""
    bounded = low is not None or high is not None
    span = Range(
        -math.inf if low is None else low, math.inf if high is None else high, low_open, high_open
    )
    info = KeyInfo(doc, span if bounded else None, space, fixed, check)
    if isinstance(default, (list, dict, set)):
        raise TypeError("config defaults are immutable: use a tuple")
    return dataclasses.field(default=default, metadata={"key": info})


def key_info(cls: type) -> dict[str, KeyInfo]:
    """``{name: KeyInfo}`` of a keys dataclass (or of :class:`TrainConfig`)."""
    return {f.name: f.metadata["key"] for f in dataclasses.fields(cls) if "key" in f.metadata}


def names(*classes: type) -> tuple[str, ...]:
    """The key names the keys dataclasses ``classes`` declare, in order."""
    return tuple(f.name for c in classes for f in dataclasses.fields(c))
