"""Search spaces for ``graphseq tune``: a default per model, overridable in YAML.

A space maps config keys to a :class:`Param`. Only keys the model reads are searched
(``KEYS_READ`` in ``graphseq/models/registry.py``); the default spaces are filtered by it.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_builders.errors import DataError
from graphseq.config import KEYS, TrainConfig, config_from_dict, read_config_file

# keys a search may not vary: they choose the data, the protocol or the trial's identity
FIXED_KEYS = {"model", "graph", "split", "global_time_quantiles", "seed", "device",
              "distributed", "item_text", "item_text_model", "ks", "exclude_seen", "logger",
              "mlflow_uri", "eval_batch_size", "eval_chunk"}  # fmt: skip
USE_DEFAULT = "use_default_space"


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
    return Param(low, high, log, isinstance(low, int) and isinstance(high, int))


def pick(*choices: Any) -> Param:
    return Param(choices=tuple(choices))


# keys sequence models share (sasrec, graphseq, gru4rec): the same ranges for each
SEQUENCE_SPACE: dict[str, Param] = {
    "lr": rng(3e-4, 1e-2, log=True),
    "dim": pick(32, 64, 128),
    "num_layers": rng(1, 3),
    "num_heads": pick(1, 2),
    "dropout": rng(0.0, 0.6),
    "weight_decay": pick(0.0, 1e-4, 1e-3, 1e-2),
    "max_seq_len": pick(50, 100, 200),
    "item_graph": pick(False, True),
    "item_graph_reg": rng(50.0, 1000.0, log=True),
}
GRAPH_SPACE: dict[str, Param] = {
    "gnn_layers": rng(1, 3),
    "views": pick("cooc,tag,kg", "cooc,tag", "tag", "cooc"),
    "edge_dropout": rng(0.0, 0.3),
    "coarse": pick(False, True),
    "fusion": pick("attention", "mean"),
}
PAIR_SPACE: dict[str, Param] = {
    "lr": rng(3e-4, 1e-2, log=True),
    "dim": pick(32, 64, 128),
    "reg": rng(1e-6, 1e-2, log=True),
    "gnn_layers": rng(1, 4),
    "lightgcn_edge_dropout": rng(0.0, 0.3),
    "item_graph": pick(False, True),
    "item_graph_reg": rng(50.0, 1000.0, log=True),
}


def default_space(model: str) -> dict[str, Param]:
    """The model's default space: every key above that ``model`` reads."""
    from graphseq.models.registry import ignored_keys

    pool = {**PAIR_SPACE, **SEQUENCE_SPACE, **GRAPH_SPACE}
    return {k: p for k, p in pool.items() if not ignored_keys(model, {k})}


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
    from graphseq.models.registry import ignored_keys

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
