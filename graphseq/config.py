"""One typed, frozen training config, the union of what each part declares.

Every part of a model declares its keys beside its ``from_config`` (a frozen dataclass of
:func:`graphseq.keys.key` fields: default, doc, range, search space); :class:`TrainConfig`
inherits them all, and the run-level keys are declared here. YAML files and ``--set
key=value`` map onto it. Choice fields are ``Literal`` types and numeric fields have ranges;
both are checked when the config is parsed, before any data is read, so ``--set loss=foo`` or
``--set batch_size=0`` is one clear error listing what is allowed.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from data_builders.errors import DataError
from graphseq.keys import KeyInfo, Range, key, key_info, pick, rng
from graphseq.models.cascade import CascadeKeys
from graphseq.models.items import ItemKeys
from graphseq.models.mf import CollaborativeKeys
from graphseq.models.neighbors import NeighborKeys
from graphseq.models.objectives import ObjectiveKeys
from graphseq.models.propagation import PropagationKeys
from graphseq.models.scorer import HeadKeys, ItemGraphKeys, OwnHistoryKeys
from graphseq.models.users import SequenceKeys, SnapshotKeys

log = logging.getLogger("graphseq")

Split = Literal["leave_last_out", "global_time", "predefined"]
Device = Literal["auto", "cpu", "cuda"]
Tracker = Literal["none", "tensorboard", "mlflow"]


def _quantiles_problem(q: tuple[float, ...]) -> str | None:
    if len(q) != 2 or not q[0] < q[1]:
        return f"must be two increasing values, e.g. 0.8,0.9, got {q}"
    return None


@dataclass(frozen=True)
class RunKeys:
    """What a run trains on and how it is evaluated (every model)."""

    model: str = key("graphseq", "a name in graphseq.models.MODELS (pop, mf, lightgcn, sasrec, "
                     "...)", fixed=True)  # fmt: skip
    graph: str = key("", "graph directory (stored absolute in the run's config.yaml)", fixed=True)
    split: Split = key("leave_last_out", "how held-out targets are chosen (graph/splits.py)",
                       fixed=True)  # fmt: skip
    global_time_quantiles: tuple[float, ...] = key(
        (0.8, 0.9), "global_time: the valid and test cutoffs as quantiles of event time", low=0,
        high=1, low_open=True, high_open=True, fixed=True, check=_quantiles_problem,
    )  # fmt: skip
    seed: int = key(0, "seeds torch, numpy, python and the batch builder", fixed=True)
    device: Device = key("auto", "auto: CUDA when present", fixed=True)
    max_seq_len: int = key(200, "events per user history, the most recent kept (sequences "
                           "and the histories every model is scored with)", low=1,
                           space=pick(50, 100, 200))  # fmt: skip
    eval_batch_size: int = key(512, "users scored per batch; never changes the metrics", low=1,
                               fixed=True)  # fmt: skip
    valid_users: int = key(0, "validation (early stopping and what it chooses) scores this many "
                           "users, drawn once from the seed; 0 = all; test scores everyone",
                           low=0)  # fmt: skip
    exclude_seen: bool = key(True, "drop the user's earlier target items from the ranking",
                             fixed=True)  # fmt: skip
    ks: tuple[int, ...] = key((5, 10, 20), "cut-offs of the metrics", low=1, fixed=True)
    logger: Tracker = key("none", "experiment tracking beside train_log.jsonl "
                          "(train/loggers.py)", fixed=True)  # fmt: skip
    mlflow_uri: str = key("", "logger=mlflow: tracking URI; '' = $MLFLOW_TRACKING_URI, else a "
                          "local SQLite store beside the run directory", fixed=True)  # fmt: skip


@dataclass(frozen=True)
class TrainingKeys:
    """How a model that trains is trained (the trainer)."""

    epochs: int = key(200, "upper bound; early stopping on validation ends sooner", low=1)
    patience: int = key(8, "validations without a better valid NDCG@10 before stopping", low=1)
    eval_every: int = key(0, "epochs between validations; 0 = about every 16 steps "
                          "(train/schedule.py)", low=0)  # fmt: skip
    batch_size: int = key(128, "sequences (sequence models) or interactions (mf, lightgcn) per "
                          "step", low=1)  # fmt: skip
    lr: float = key(2e-3, "AdamW learning rate", low=0, low_open=True,
                    space=rng(3e-4, 1e-2, log=True))  # fmt: skip
    weight_decay: float = key(0.0, "AdamW weight decay", low=0,
                              space=pick(0.0, 1e-4, 1e-3, 1e-2))  # fmt: skip
    max_grad_norm: float = key(5.0, "gradient clipping (global L2 norm; 0 = off), a guard "
                               "against spikes", low=0)  # fmt: skip
    dim: int = key(64, "embedding size", low=1, space=pick(32, 64, 128))
    amp: bool = key(False, "bfloat16 autocast, on CUDA only")
    distributed: bool = key(False, "DDP under torchrun (gloo on CPU, nccl on CUDA)", fixed=True)


@dataclass(frozen=True)
class TrainConfig(
    OwnHistoryKeys,
    ItemGraphKeys,
    NeighborKeys,
    CascadeKeys,
    CollaborativeKeys,
    SnapshotKeys,
    PropagationKeys,
    ItemKeys,
    HeadKeys,
    ObjectiveKeys,
    SequenceKeys,
    TrainingKeys,
    RunKeys,
):
    """Everything a training run needs; the defaults are those of ``graphseq``. Each key is
    declared (default, doc, range) by the part that owns it; :data:`DOCS` has every key's
    one-line description.

    Every value is checked when the config is made, as ``--set`` checks it (types, choices,
    ranges): ``TrainConfig(epochs=0)`` or ``TrainConfig(lr="fast")`` is a
    :class:`~data_builders.errors.DataError` before anything reads data or writes a file.
    Numbers and lists are taken as typed (``lr=1`` is 1.0, a list is a tuple, a string is a
    one-element tuple).
    """

    def __post_init__(self) -> None:
        for name, tp in _TYPES.items():
            value = getattr(self, name)
            fixed = _coerce(name, tp, value, "TrainConfig")
            _check_value(name, fixed, "TrainConfig")
            if fixed is not value:
                object.__setattr__(self, name, fixed)
        _check_together(self, "TrainConfig")

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


INFO: dict[str, KeyInfo] = key_info(TrainConfig)
KEYS = tuple(INFO)
DOCS: dict[str, str] = {k: v.doc for k, v in INFO.items()}
RANGES: dict[str, Range] = {k: v.range for k, v in INFO.items() if v.range is not None}
_TYPES = typing.get_type_hints(TrainConfig, include_extras=True)


def keys_table() -> str:
    """Every config key as a Markdown table (``docs/config.md`` is this text; a test keeps it
    in step): key, default, allowed values, the part that declares it, the models that read
    it, and what it does."""
    from graphseq.models.registry import SPECS
    from graphseq.models.resolve import keys_read

    read = {m: keys_read(m) for m in SPECS}
    owner = {f: cls.__name__ for cls in TrainConfig.__mro__[1:-1]
             for f in cls.__dataclass_fields__}  # fmt: skip
    rows = [
        "| key | default | allowed | declared by | read by | what |",
        "|---|---|---|---|---|---|",
    ]
    defaults = TrainConfig()
    for name, info in INFO.items():
        tp = _TYPES[name]
        allowed = _type_name(tp)
        if typing.get_origin(tp) is tuple:
            allowed = f"list of {_type_name(typing.get_args(tp)[0])}"
        if info.range is not None:
            r = info.range
            lo = ("(" if r.low_open else "[") + f"{r.low:g}"
            allowed += f" in {lo}, {r.high:g}{')' if r.high_open else ']'}"
        default = _plain(getattr(defaults, name))
        doc, allowed = (t.replace("|", r"\|") for t in (info.doc, allowed))
        models = [m for m, keys in read.items() if keys is None or name in keys]
        by = "every model" if len(models) == len(read) else ", ".join(models)
        rows.append(f"| `{name}` | `{default!r}` | {allowed} | `{owner[name]}` | {by} | {doc} |")
    return "\n".join(rows) + "\n"


# keys renamed since the last release: old name -> new name (the old one still read, warned)
RENAMED = {"coarse": "snapshot_scale"}
# keys removed since the last release (measured no gain: docs/results.md, "What did not help"):
# their value that changed nothing; a config that holds it loads (an old run's config.yaml),
# any other value is refused
REMOVED: dict[str, Any] = {
    "view_align": 0.0, "view_align_temp": 0.2, "view_side": "both", "view_input": "shared",
    "view_gate": False, "view_dropout": 0.0, "seq_contrast": 0.0, "seq_contrast_temp": 0.2,
    "item_graph_mode": "posthoc", "item_id_dropout": 0.0, "view_encoder": "lightgcn",
    "gbce_t": 0.75,
}  # fmt: skip


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(map(str, typing.get_args(tp)))
    return getattr(tp, "__name__", str(tp))


def _number(tp: type, value: Any) -> Any:
    """``"1e-3"`` → 0.001 for floats and ``1e3`` → 1000 for ints, as a user types them (YAML
    reads ``1e-3`` as a string and ``1e3`` as a float)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return value
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def _coerce(name: str, tp: Any, value: Any, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        elem = args[0]
        if isinstance(value, str):  # "10,5" → [10, 5]; "cooc,tag" → ["cooc", "tag"]
            value = [v.strip() if elem is str else yaml.safe_load(v) for v in value.split(",")]
            value = [v for v in value if v != ""]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(name, elem, v, source) for v in value)
    if origin is typing.Union or type(tp).__name__ == "UnionType":  # bool | None, bool | "auto"
        if type(None) in args and (
            value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))
        ):
            return None
        options = [a for a in args if a is not type(None)]
        for a in options:  # the first member that takes the value as it is
            try:
                return _coerce(name, a, value, source)
            except DataError:
                continue
        raise DataError(
            f"config key '{name}' must be {' | '.join(_type_name(a) for a in options)}, "
            f"got {value!r}",
            file=source,
            hint="fix the value",
        )
    if origin is Literal:
        if value not in args:
            raise DataError(
                f"config key '{name}' must be one of {', '.join(map(str, args))}, got {value!r}",
                file=source,
                hint="fix the value",
            )
        return value
    if tp in (int, float):
        value = _number(tp, value)
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if not ok:
        raise DataError(
            f"config key '{name}' must be {_type_name(tp)}, got {value!r}",
            file=source,
            hint="fix the value",
        )
    return value


def _check_value(name: str, value: Any, source: str) -> None:
    """The key's range (element-wise for tuples) and its own check."""
    info = INFO[name]
    if value is None:
        return
    if info.range is not None:
        for v in value if isinstance(value, tuple) else (value,):
            problem = info.range.problem(v)
            if problem:
                raise DataError(f"config key '{name}' {problem}", file=source, hint="fix the value")
    if info.check is not None and (problem := info.check(value)):
        raise DataError(f"config key '{name}': {problem}", file=source, hint="fix the value")


def _check_together(cfg: TrainConfig, source: str) -> None:
    if cfg.dim % cfg.num_heads:
        raise DataError(
            f"num_heads ({cfg.num_heads}) must divide dim ({cfg.dim})", file=source, hint="fix it"
        )


def _current_name(k: str, v: Any, source: str) -> str | None:
    """The key ``k`` is read as (its new name), or None for a removed key at its no-op value."""
    if k in RENAMED:
        log.warning("warning: config key '%s' is now '%s' (%s); the old name is read until "
                    "the next release", k, RENAMED[k], source)  # fmt: skip
        return RENAMED[k]
    if k in REMOVED:
        if v == REMOVED[k]:
            return None
        raise DataError(
            f"config key '{k}' was removed: it measured no gain (docs: Results, What did not "
            "help)", file=source, hint="drop it; the code is in git history",
        )  # fmt: skip
    return k


def config_from_dict(
    d: dict[str, Any], base: TrainConfig | None = None, source: str = "config"
) -> TrainConfig:
    """Apply ``d`` onto ``base``; unknown keys, wrong types, values outside their choices or
    ranges are a :class:`DataError` (raised before any data is read)."""
    base = base or TrainConfig()
    changes = {}
    for k, v in (d or {}).items():
        name = _current_name(k, v, source) if k not in INFO else k
        if name is None:
            continue
        if name not in INFO:
            raise DataError(
                f"unknown config key '{k}'", file=source, hint=f"valid keys: {', '.join(KEYS)}"
            )
        changes[name] = _coerce(name, _TYPES[name], v, source)
        _check_value(name, changes[name], source)
    cfg = base.replace(**changes)
    _check_together(cfg, source)
    return cfg


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=5", "lr=0.01"]`` → ``{"epochs": 5, "lr": 0.01}`` (values parsed as YAML scalars)."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise DataError(f"--set takes key=value, got {p!r}", hint="e.g. --set epochs=5 lr=0.01")
        k, v = p.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file (a :class:`DataError` when it is not one)."""
    p = Path(path)
    if not p.exists():
        raise DataError("config file not found", file=p)
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataError(f"not valid YAML: {e}", file=p) from None
    if not isinstance(d, dict):
        raise DataError("config must be a mapping of key: value", file=p)
    return d


def load_config(
    path: str | Path | None = None, sets: list[str] | None = None, base: TrainConfig | None = None
) -> TrainConfig:
    """Defaults ← YAML file ← ``--set`` pairs."""
    cfg = base or TrainConfig()
    if path is not None:
        cfg = config_from_dict(read_config_file(path), cfg, str(path))
    if sets:
        cfg = config_from_dict(parse_set(sets), cfg, "--set")
    return cfg


def explicit_keys(path: str | Path | None = None, sets: list[str] | None = None) -> set[str]:
    """The keys a user set themselves (in the YAML file or with ``--set``)."""
    keys = set(read_config_file(path)) if path is not None else set()
    return keys | set(parse_set(sets or []))


def save_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
