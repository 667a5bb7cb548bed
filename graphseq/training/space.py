"""Search spaces for ``graphseq tune``: a default per model, overridable in YAML.

A space maps config keys to a :class:`~graphseq.keys.Param`. Each key's default range is
declared with the key (:func:`graphseq.keys.key`, ``space=``); a model's default space is
every such key it reads (:func:`graphseq.models.resolve.keys_read`).

YAML format (``--space FILE``), one entry per config key::

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a range: float, or int for int keys
    num_layers: {low: 1, high: 3}                # int range (both ends included)
    dim: [32, 64, 128]                           # choices
    views: [[cooc, tag, kg], [tag]]              # choices of a list key: lists
    dropout: 0.3                                 # fixed: not searched, this value
    item_graph_reg: null                         # not searched: the config's value
    use_default_space: false                     # start from an empty space, not the default

Entries replace the model's default ones key by key. Every range end and choice is checked
like a ``--set`` value before the search starts.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from data_builders.errors import DataError
from graphseq.config import INFO, KEYS, TrainConfig, config_from_dict, read_config_file
from graphseq.keys import Param

# keys a search may not vary: they choose the data, the protocol or the trial's identity
FIXED_KEYS = frozenset(k for k, info in INFO.items() if info.fixed)
USE_DEFAULT = "use_default_space"


def default_space(model: str) -> dict[str, Param]:
    """The model's default space: every key it reads that declares a search range."""
    from graphseq.models.resolve import keys_read

    read = keys_read(model)
    return {k: info.space for k, info in INFO.items()
            if info.space is not None and not info.fixed and (read is None or k in read)}  # fmt: skip


def _field_type(key: str) -> Any:
    tp = typing.get_type_hints(TrainConfig)[key]
    return typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp


def _as_choice(value: Any) -> Any:
    """A YAML choice as Optuna stores it: lists become comma-joined strings."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def _parse_entry(key: str, spec: Any, source: str) -> Param | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        extra = set(spec) - {"low", "high", "log"}
        if extra or not {"low", "high"} <= set(spec):
            raise DataError(
                f"search space key '{key}': a range is {{low, high[, log]}}, got {spec}",
                file=source,
                hint="or give a list of choices, or one fixed value",
            )
        tp = _field_type(key)
        if tp not in (int, float):
            raise DataError(f"search space key '{key}' is not numeric: give choices", file=source)
        lo, hi = (tp(float(spec[k])) for k in ("low", "high"))
        if lo > hi:
            raise DataError(f"search space key '{key}': low {lo} > high {hi}", file=source)
        return Param(lo, hi, bool(spec.get("log", False)), tp is int)
    if isinstance(spec, list):
        if not spec:
            raise DataError(f"search space key '{key}': no choices", file=source)
        return Param(choices=tuple(_as_choice(v) for v in spec))
    return Param(choices=(_as_choice(spec),))


def check_space(model: str, space: dict[str, Param], source: str = "search space") -> None:
    """Every key is a config key the model reads and may vary; every end and choice is a
    valid value (checked as ``--set`` would)."""
    from graphseq.models.resolve import ignored_keys

    for key, p in space.items():
        if key not in KEYS:
            raise DataError(
                f"unknown config key '{key}' in the search space",
                file=source,
                hint=f"valid keys: {', '.join(KEYS)}",
            )
        if key in FIXED_KEYS:
            raise DataError(
                f"config key '{key}' cannot be searched (it fixes the data or protocol)",
                file=source,
                hint="set it with --set or --config instead",
            )
        if ignored_keys(model, {key}):
            raise DataError(f"model '{model}' does not read config key '{key}'", file=source)
        values = list(p.choices) if p.choices is not None else [p.low, p.high]
        for v in values:
            config_from_dict({key: v}, source=source)


def load_space(model: str, path: str | Path | None = None) -> dict[str, Param]:
    """The default space of ``model``, with the entries of the YAML file ``path`` applied."""
    space = default_space(model)
    if path is not None:
        d = read_config_file(path)
        if not d.pop(USE_DEFAULT, True):
            space = {}
        for key, spec in d.items():
            p = _parse_entry(key, spec, str(path))
            if p is None:
                space.pop(key, None)
            else:
                space[key] = p
    check_space(model, space, str(path) if path is not None else "search space")
    if not any(p.choices is None or len(p.choices) > 1 for p in space.values()):
        raise DataError(
            f"nothing to search for model '{model}'",
            file=path,
            hint="give ranges or choices in --space (ease / itemknn choose theirs on validation)",
        )
    return space


def space_json(space: dict[str, Param]) -> str:
    """A canonical text of the space (stored with the study; a resumed study must match)."""
    return json.dumps({k: p.to_dict() for k, p in sorted(space.items())}, sort_keys=True)


def sample(trial: Any, space: dict[str, Param]) -> dict[str, Any]:
    """One trial's values for every key of ``space``."""
    return {k: p.suggest(trial, k) for k, p in space.items()}


__all__ = ["FIXED_KEYS", "Param", "check_space", "default_space", "load_space", "sample"]
