"""One typed, frozen training config; YAML files and ``--set key=value`` map onto it.

Choice fields are ``Literal`` types and numeric fields have ranges (:data:`RANGES`); both are
checked when the config is parsed, before any data is read, so ``--set loss=foo`` or
``--set batch_size=0`` is one clear error listing what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from data_builders.errors import DataError

Split = Literal["leave_last_out", "global_time", "predefined"]
Device = Literal["auto", "cpu", "cuda"]
Loss = Literal["ce", "sampled", "bpr"]
Minibatch = bool | Literal["auto"]
Head = Literal["dot", "mlp"]
Negatives = Literal["uniform", "popularity"]
Fusion = Literal["attention", "mean", "concat"]
Sequence = Literal["transformer", "gru", "none"]
LightGCNBehaviors = Literal["all", "target"]
ItemGraphKind = Literal["ease", "itemknn"]
Tracker = Literal["none", "tensorboard", "mlflow"]
VIEW_KINDS = ("cooc", "tag", "kg", "behavior")  # a view is KIND or KIND:<behavior> (see views.py)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. Defaults are the tuned configuration for ``graphseq``."""

    model: str = "graphseq"  # a name in graphseq.models.MODELS (pop, mf, lightgcn, sasrec, ...)
    graph: str = ""  # graph directory (stored absolute in the run's config.yaml)
    split: Split = "leave_last_out"  # how held-out targets are chosen (see graph/splits.py)
    global_time_quantiles: tuple[float, ...] = (0.8, 0.9)  # global_time: valid/test cutoffs
    seed: int = 0  # seeds torch, numpy, python and the batch builder
    device: Device = "auto"  # auto: CUDA when present
    amp: bool = False  # bfloat16 autocast on CUDA only
    distributed: bool = False  # DDP under torchrun (gloo on CPU, nccl on CUDA)
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    patience: int = 8  # evaluations without a better valid NDCG@10 before stopping
    eval_every: int = 0  # epochs between validation runs; 0 = auto: about every 16 steps
    # (train/schedule.py: every 2 epochs on ML-100K, every epoch from ~2k users up)
    batch_size: int = 128  # sequences (sequence models) or interactions (mf/lightgcn) per step
    eval_batch_size: int = 512  # users scored per batch; never changes the metrics
    valid_users: int = 0  # validation (early stopping, what validation chooses) scores this
    # many users, drawn once from the seed; 0 = all. Test always scores every user
    eval_chunk: int = 4096  # mini-batch backend: items encoded per chunk when scoring
    lr: float = 2e-3  # AdamW learning rate (chosen on ML-100K validation)
    weight_decay: float = 0.0  # AdamW weight decay
    max_grad_norm: float = 5.0  # gradient clipping (global L2 norm; 0 = off): a guard against
    # spikes, above every step's norm on ML-100K (at most 1.44), so it changes nothing there
    dim: int = 64  # embedding size
    num_layers: int = 2  # Transformer / GRU layers
    num_heads: int = 1  # attention heads (must divide dim)
    dropout: float = 0.3  # embedding and Transformer dropout (ML-100K likes it strong)
    max_seq_len: int = 200  # events per user sequence (most recent kept)
    loss: Loss = "ce"  # ce: full softmax | sampled: sampled softmax (logQ for popularity
    # negatives) | bpr
    ce_max_logits: int = 2**27  # ce: the most logits (positions × items) one step holds at
    # once (512 MiB in float32); above it the softmax runs in item chunks (same loss and
    # gradient, ~1.5× the softmax's time); ML-1M-sized steps (≤ 128 × 200 × 3,706) stay in
    # one buffer. 0 = always one buffer
    head: Head = "dot"  # mlp: an MLP on the user state, still one matmul over items
    num_negatives: int = 256  # negatives per sequence (sampled) or per position (bpr)
    share_negatives: bool = False  # sampled: one set of num_negatives for the whole
    # batch (fewer items to encode in mini-batch mode); per sequence trains far better:
    # ML-100K sasrec loss=sampled valid NDCG@10 after 10 epochs 0.073 vs 0.047 shared
    negatives: Negatives = "uniform"  # how negatives are drawn (popularity: logQ-corrected)
    reg: float = 1e-4  # mf / lightgcn: L2 weight on the batch's embeddings
    lightgcn_edge_dropout: float = 0.0  # lightgcn: share of edges dropped per step
    lightgcn_behaviors: LightGCNBehaviors = "all"  # lightgcn: propagate over every behavior's
    # user–item edges, or over the target behaviors' only
    behavior_order: tuple[str, ...] = ()  # mbcgcn: the cascade; () = rarest non-target
    # behavior first (the funnel, e.g. fav, cart), target behaviors last
    ease_regs: tuple[float, ...] = (50.0, 200.0, 500.0, 1000.0)  # ease: λ tried on valid
    knn_neighbors: tuple[int, ...] = (50, 100, 200)  # itemknn: k tried on valid
    knn_shrinks: tuple[float, ...] = (0.0, 10.0, 50.0)  # itemknn: shrinkage tried on valid
    neighbor_decays: tuple[float, ...] = (5.0, 20.0, math.inf)  # ease/itemknn: history
    # decays (events) tried on valid; inf = every earlier target event weighs 1
    gnn_layers: int = 2  # propagation depth of every view (and of lightgcn)
    views: tuple[str, ...] = ("cooc", "tag", "kg")  # item views; KIND or KIND:<behavior>,
    # KIND in cooc | tag | kg | behavior; views the graph lacks (no tags, no KG) are not built
    fusion: Fusion = "attention"  # how the views are combined per item
    edge_dropout: float = 0.1  # share of view edges dropped at each training step
    sequence: Sequence = "transformer"  # the sequence module
    time_encoding: bool = True  # embed log time gaps between events
    coarse: bool = True  # GRU over graph snapshots; the Tmall figures use it, ML-100K's valid
    # prefers it off (0.1341 vs 0.1326, 3 seeds; docs/results.md)
    num_snapshots: int = 8  # graph snapshots for the coarse scale
    item_graph: bool | None = None  # late-fuse a closed-form item–item graph scorer (kind below),
    # weight chosen on validation; None = the model's default (on for graphseq only)
    own_history_scales: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)  # tried on valid after
    # training: the learned own-history weights times each (1 first: it wins ties) ...
    own_history_sharpen: tuple[float, ...] = (1.0, 4.0, 16.0)  # ... its decays divided by each
    own_history: bool | None = None  # score the user's own earlier edges of each behavior
    # (a learned weight and decay per behavior, trained with the model; any loss but bpr);
    # None = the model's default (on for graphseq only)
    item_graph_kind: ItemGraphKind = "ease"  # the fused graph: ease (dense, λ below, over
    # item_graph_max_items items) | itemknn (sparse shrunk cosine over every item: the
    # item_graph_knn neighbours of each, shrinkage item_graph_shrink)
    item_graph_knn: int = 100  # itemknn: neighbours kept per item
    item_graph_shrink: float = 10.0  # itemknn: cosine shrinkage
    item_graph_reg: float = 200.0  # ease: its L2 weight λ
    item_graph_max_items: int = 10_000  # EASE (dense, cubic) over at most this many of the
    # most popular items; the others get no item–item weights (0 = no EASE graph; itemknn
    # ignores it)
    item_graph_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)  # tried on valid
    item_graph_decays: tuple[float, ...] = (5.0, 20.0)  # history decays (events) tried on valid
    minibatch: Minibatch = "auto"  # true: sampled time-respecting neighbourhoods per batch of
    # users and a chunked full-catalogue evaluation; false: full-graph propagation; auto:
    # mini-batch when a full-graph step would propagate more than AUTO_MINIBATCH_EDGES
    # user-derived view edges (graphseq/train/mode.py); graphseq only
    fanouts: tuple[int, ...] = (10, 5)  # mini-batch: neighbours sampled per hop (one per layer)
    sparse_min_rows: int = 100_000  # mini-batch: embedding tables with at least this many rows
    # get sparse gradients and row-wise AdamW (graphseq/train/optim.py; 0: every table). A
    # default step at 100M events: 0.53 s against 1.42 s for dense AdamW over the 1.7M-user
    # table; a 50k-item table steps faster dense, a 1M-item one 1.9× faster sparse
    item_text: str = ""  # item text column(s) embedded as item features, e.g. title ("" = off)
    item_text_model: str = "all-MiniLM-L6-v2"  # sentence encoder (graphseq.text.TEXT_ENCODERS)
    exclude_seen: bool = True  # drop the user's earlier target items from the ranking
    train_exclude_seen: bool = True  # ce/sampled: drop them from the training softmax too
    # (+0.015 valid NDCG@10 on ML-100K)
    ks: tuple[int, ...] = (5, 10, 20)  # cut-offs for the metrics
    logger: Tracker = "none"  # experiment tracking beside train_log.jsonl (train/loggers.py)
    mlflow_uri: str = ""  # logger=mlflow: tracking URI; "" = $MLFLOW_TRACKING_URI, else a
    # local SQLite store, mlflow.db beside the run directory

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


# key -> (low, high, low inclusive, high inclusive); tuples are checked element-wise
RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "epochs": (1, math.inf, True, True),
    "patience": (1, math.inf, True, True),
    "eval_every": (0, math.inf, True, True),
    "batch_size": (1, math.inf, True, True),
    "eval_batch_size": (1, math.inf, True, True),
    "valid_users": (0, math.inf, True, True),
    "sparse_min_rows": (0, math.inf, True, True),
    "eval_chunk": (1, math.inf, True, True),
    "lr": (0, math.inf, False, True),
    "weight_decay": (0, math.inf, True, True),
    "max_grad_norm": (0, math.inf, True, True),
    "dim": (1, math.inf, True, True),
    "num_layers": (0, math.inf, True, True),
    "num_heads": (1, math.inf, True, True),
    "dropout": (0, 1, True, False),
    "max_seq_len": (1, math.inf, True, True),
    "num_negatives": (1, math.inf, True, True),
    "ce_max_logits": (0, math.inf, True, True),
    "reg": (0, math.inf, True, True),
    "lightgcn_edge_dropout": (0, 1, True, False),
    "gnn_layers": (0, math.inf, True, True),
    "edge_dropout": (0, 1, True, False),
    "num_snapshots": (1, math.inf, True, True),
    "item_graph_knn": (1, math.inf, True, True),
    "item_graph_shrink": (0, math.inf, True, True),
    "item_graph_reg": (0, math.inf, False, True),
    "item_graph_max_items": (0, math.inf, True, True),
    "item_graph_weights": (0, math.inf, True, True),
    "item_graph_decays": (0, math.inf, False, True),
    "own_history_scales": (0, math.inf, False, True),
    "own_history_sharpen": (0, math.inf, False, True),
    "ease_regs": (0, math.inf, False, True),
    "knn_neighbors": (1, math.inf, True, True),
    "knn_shrinks": (0, math.inf, True, True),
    "neighbor_decays": (0, math.inf, False, True),
    "fanouts": (1, math.inf, True, True),
    "ks": (1, math.inf, True, True),
    "global_time_quantiles": (0, 1, False, False),
}


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


def _check_range(name: str, value: Any, source: str) -> None:
    if name not in RANGES or value is None:
        return
    lo, hi, lo_in, hi_in = RANGES[name]
    for v in value if isinstance(value, tuple) else (value,):
        ok = (v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)
        if not ok:
            lo_s, hi_s = ("[" if lo_in else "(") + f"{lo:g}", f"{hi:g}" + ("]" if hi_in else ")")
            raise DataError(
                f"config key '{name}' must lie in {lo_s}, {hi_s}, got {v!r}",
                file=source,
                hint="fix the value",
            )


def _check_views(views: tuple[str, ...], source: str) -> None:
    for v in views:
        kind, _, behavior = v.partition(":")
        if kind not in VIEW_KINDS or (":" in v and (not behavior or kind in ("tag", "kg"))):
            raise DataError(
                f"config key 'views': unknown view {v!r}",
                file=source,
                hint="views are cooc, tag, kg, behavior, or cooc:<behavior> / behavior:<behavior>",
            )


_TYPES = typing.get_type_hints(TrainConfig, include_extras=True)
KEYS = tuple(f.name for f in fields(TrainConfig))


def config_from_dict(
    d: dict[str, Any], base: TrainConfig | None = None, source: str = "config"
) -> TrainConfig:
    """Apply ``d`` onto ``base``; unknown keys, wrong types, values outside their choices or
    ranges are a :class:`DataError` (raised before any data is read)."""
    base = base or TrainConfig()
    changes = {}
    for k, v in (d or {}).items():
        if k not in KEYS:
            raise DataError(
                f"unknown config key '{k}'", file=source, hint=f"valid keys: {', '.join(KEYS)}"
            )
        changes[k] = _coerce(k, _TYPES[k], v, source)
        _check_range(k, changes[k], source)
    if "views" in changes:
        _check_views(changes["views"], source)
    cfg = base.replace(**changes)
    if cfg.dim % cfg.num_heads:
        raise DataError(
            f"num_heads ({cfg.num_heads}) must divide dim ({cfg.dim})", file=source, hint="fix it"
        )
    if len(cfg.global_time_quantiles) != 2 or not (
        cfg.global_time_quantiles[0] < cfg.global_time_quantiles[1]
    ):
        raise DataError(
            f"global_time_quantiles must be two increasing values, got {cfg.global_time_quantiles}",
            file=source,
            hint="e.g. 0.8,0.9",
        )
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
