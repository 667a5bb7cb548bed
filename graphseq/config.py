"""One typed, frozen training config; YAML files and ``--set key=value`` map onto it."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from data_builders.errors import DataError


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. Defaults are the tuned configuration for ``graphseq``."""

    model: str = "graphseq"  # pop | mf | lightgcn | sasrec | graphseq
    graph: str = ""  # graph directory (stored absolute in the run's config.yaml)
    split: str = "leave_last_out"  # leave_last_out | global_time
    seed: int = 0  # seeds torch, numpy and python
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda
    amp: bool = False  # bfloat16 autocast on CUDA only
    distributed: bool = False  # DDP under torchrun (gloo on CPU, nccl on CUDA)
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    patience: int = 8  # evaluations without a better valid NDCG@10 before stopping
    eval_every: int = 0  # epochs between validation runs; 0 = auto: about every 16 steps
    # (Trainer.eval_interval: every 2 epochs on ML-100K, every epoch from ~2k users up)
    batch_size: int = 128  # sequences (sequence models) or interactions (mf/lightgcn) per step
    eval_batch_size: int = 512  # users scored per batch; never changes the metrics
    lr: float = 2e-3  # AdamW learning rate (chosen on ML-100K validation)
    weight_decay: float = 0.0  # AdamW weight decay
    dim: int = 64  # embedding size
    num_layers: int = 2  # Transformer / GRU layers
    num_heads: int = 1  # attention heads
    dropout: float = 0.3  # embedding and Transformer dropout (ML-100K likes it strong)
    max_seq_len: int = 200  # events per user sequence (most recent kept)
    loss: str = "ce"  # ce (full softmax) | sampled (sampled softmax, logQ) | bpr
    head: str = "dot"  # dot | mlp (MLP on the user state, still one matmul over items)
    num_negatives: int = 256  # negatives for sampled softmax / bpr
    negatives: str = "uniform"  # uniform | popularity
    gnn_layers: int = 2  # LightGCN propagation depth of every view
    views: tuple[str, ...] = ("cooc", "tag", "kg")  # item views: cooc | tag | kg | behavior
    fusion: str = "attention"  # attention | mean | concat
    edge_dropout: float = 0.1  # share of view edges dropped at each training step
    sequence: str = "transformer"  # transformer | gru | none
    time_encoding: bool = True  # embed log time gaps between events
    coarse: bool = (
        True  # coarse scale (GRU over graph snapshots): +0.002 valid NDCG@10 on ML-100K, 3 seeds
    )
    num_snapshots: int = 8  # graph snapshots for the coarse scale
    item_graph: bool = True  # graphseq: late-fuse a closed-form item–item graph (EASE) scorer
    item_graph_reg: float = 200.0  # its L2 weight λ
    item_graph_max_items: int = 10_000  # dense (I, I): larger catalogues skip it
    item_graph_weights: tuple[float, ...] = (
        0.0,
        0.25,
        0.5,
        1.0,
        2.0,
    )  # fusion weights tried on valid
    item_graph_decays: tuple[float, ...] = (5.0, 20.0)  # history decays (events) tried on valid
    minibatch: bool = False  # graphseq only: sampled time-respecting neighbourhoods per batch
    # of users, sampled-softmax loss, chunked full-catalogue evaluation (graphs beyond one SpMM)
    fanouts: tuple[int, ...] = (10, 5)  # mini-batch: neighbours sampled per hop (one per gnn layer)
    item_text: str = ""  # item text column(s) embedded as item features, e.g. title ("" = off)
    item_text_model: str = "all-MiniLM-L6-v2"  # sentence encoder (graphseq.text.TEXT_ENCODERS)
    item_id_dropout: float = 0.0  # with item_text: IDs dropped per step (0.2, 0.5: no gain)
    exclude_seen: bool = True  # drop the user's earlier target items from the ranking
    train_exclude_seen: bool = (
        True  # ce: drop them from the training softmax too (+0.015 valid NDCG@10 on ML-100K)
    )
    ks: tuple[int, ...] = (5, 10, 20)  # cut-offs for the metrics

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _coerce(name: str, tp: Any, value: Any, source: str) -> Any:
    origin = typing.get_origin(tp)
    ok: bool
    if origin is tuple:
        elem = typing.get_args(tp)[0]
        if isinstance(value, str):  # "10,5" → [10, 5]; "cooc,tag" → ["cooc", "tag"]
            value = [v if elem is str else yaml.safe_load(v) for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(name, elem, v, source) for v in value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp) if isinstance(tp, type) else True
    if not ok:
        raise DataError(
            f"config key '{name}' must be {getattr(tp, '__name__', tp)}, got {value!r}",
            file=source,
            hint="fix the value",
        )
    return value


_TYPES = typing.get_type_hints(TrainConfig)


def config_from_dict(
    d: dict[str, Any], base: TrainConfig | None = None, source: str = "config"
) -> TrainConfig:
    """Apply ``d`` onto ``base``; unknown keys and wrong types are a :class:`DataError`."""
    base = base or TrainConfig()
    valid = [f.name for f in fields(TrainConfig)]
    changes = {}
    for k, v in (d or {}).items():
        if k not in valid:
            raise DataError(
                f"unknown config key '{k}'", file=source, hint=f"valid keys: {', '.join(valid)}"
            )
        changes[k] = _coerce(k, _TYPES[k], v, source)
    return base.replace(**changes)


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """``["epochs=5", "lr=0.01"]`` → ``{"epochs": 5, "lr": 0.01}`` (values parsed as YAML scalars)."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise DataError(f"--set takes key=value, got {p!r}", hint="e.g. --set epochs=5 lr=0.01")
        k, v = p.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
    return out


def load_config(
    path: str | Path | None = None, sets: list[str] | None = None, base: TrainConfig | None = None
) -> TrainConfig:
    """Defaults ← YAML file ← ``--set`` pairs."""
    cfg = base or TrainConfig()
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise DataError("config file not found", file=p)
        try:
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise DataError(f"not valid YAML: {e}", file=p) from None
        if not isinstance(d, dict):
            raise DataError("config must be a mapping of key: value", file=p)
        cfg = config_from_dict(d, cfg, str(p))
    if sets:
        cfg = config_from_dict(parse_set(sets), cfg, "--set")
    return cfg


def save_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
