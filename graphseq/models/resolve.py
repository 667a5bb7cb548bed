"""``resolve(cfg, shape)``: every choice the config leaves open, decided once, before the
model and the batches exist — and written down.

What it decides: ``minibatch=auto`` (and, when that picks mini-batch, an objective that
scales: :func:`~graphseq.models.mode.scalable_objective`), ``item_graph`` / ``own_history``
left at None (the model's default), keys a model fixes (gru4rec's GRU), time-gap
embeddings and the snapshot scale on a log without timestamps, and views whose side graph
the log lacks. Each change is a :class:`Change` with its reason; the trainer writes them to
``metrics.json`` (``resolved``). Nothing rewrites the config after this.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from data_builders.errors import DataError
from graphseq.config import RunKeys, TrainConfig, TrainingKeys
from graphseq.graph.shape import GraphShape
from graphseq.keys import names
from graphseq.models.base import Recommender
from graphseq.models.mode import ModeChoice, choose_mode, scalable_objective
from graphseq.models.registry import SPECS, ModelSpec
from graphseq.models.views import parse_views

ALWAYS = frozenset(names(RunKeys))  # read for every model
TRAINING = frozenset(names(TrainingKeys))  # read by every model that trains


@dataclass(frozen=True)
class Change:
    """One key ``resolve`` set: from ``old`` to ``new``, and ``why``."""

    key: str
    old: Any
    new: Any
    why: str

    def as_dict(self) -> dict[str, Any]:
        plain = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
        return {"key": self.key, "from": plain(self.old), "to": plain(self.new), "why": self.why}


@dataclass(frozen=True)
class ResolvedConfig:
    """A config with nothing left open (``cfg``), what was changed to get there, and the
    training backend chosen (``mode``)."""

    cfg: TrainConfig
    changes: tuple[Change, ...]
    mode: ModeChoice

    def as_list(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.changes]


def spec_of(model: str) -> ModelSpec:
    """The model's spec; an unknown name is a :class:`DataError` listing the models."""
    if model not in SPECS:
        raise DataError(f"unknown model {model!r}", hint=f"valid: {', '.join(SPECS)}")
    return SPECS[model]


def check_model_name(name: str) -> None:
    spec_of(name)


def keys_read(model: str) -> frozenset[str] | None:
    """Every config key ``model`` reads (None: a registered model that did not say)."""
    spec = spec_of(model)
    if spec.reads is None:
        return None
    return ALWAYS | (TRAINING if spec.trains != "none" else frozenset()) | spec.reads


def ignored_keys(model: str, keys: set[str]) -> list[str]:
    """Keys of ``keys`` that ``model`` does not read (empty for users' own models)."""
    read = keys_read(model)
    return [] if read is None else sorted(k for k in keys if k not in read)


class _Changes:
    def __init__(self, cfg: TrainConfig, reads: frozenset[str] | None) -> None:
        self.cfg, self.reads, self.done = cfg, reads, []

    def set(self, key: str, value: Any, why: str) -> None:
        old = getattr(self.cfg, key)
        if old == value and type(old) is type(value):
            return
        self.cfg = self.cfg.replace(**{key: value})
        if self.reads is None or key in self.reads:  # keys the model ignores change silently
            self.done.append(Change(key, old, value, why))


def resolve(cfg: TrainConfig, shape: GraphShape) -> ResolvedConfig:
    """Decide what ``cfg`` leaves open for a graph of ``shape`` (``behavior_events``: the
    training graph's). Idempotent: a resolved config resolves to itself, with no changes."""
    spec = spec_of(cfg.model)
    reads = keys_read(cfg.model)
    ch = _Changes(cfg, reads)
    for key, value in spec.fixed.items():
        ch.set(key, value, f"{cfg.model} fixes it")
    if cfg.item_text and not spec.features:
        raise DataError(
            f"model {cfg.model!r} does not use item features (item_text={cfg.item_text!r})",
            hint="use sasrec or graphseq, or leave item_text empty",
        )
    if not shape.timed:
        for key in ("time_encoding", "snapshot_scale"):
            if getattr(ch.cfg, key):
                ch.set(key, False, "the log has no timestamps (event order = input order)")
    if reads is None or "views" in reads:
        _, skipped = parse_views(ch.cfg.views, list(shape.behaviors), shape.side)
        if skipped:
            kept = tuple(v for v in ch.cfg.views if v not in skipped)
            ch.set("views", kept, f"the graph has no side graph for {', '.join(skipped)}")
    mode = choose_mode(ch.cfg, shape.behaviors, shape.behavior_events)
    if ch.cfg.minibatch == "auto":
        ch.set("minibatch", mode.minibatch, mode.reason)
        if mode.minibatch:
            scaled, note = scalable_objective(ch.cfg, shape.behaviors, shape.targets)
            for key in ("loss", "share_negatives"):
                ch.set(key, getattr(scaled, key), note)
            mode = replace(mode, objective=note)
    if ch.cfg.minibatch is True and cfg.model != "graphseq":
        raise DataError(f"minibatch=true applies to graphseq only, not {cfg.model!r}")
    _scorer_defaults(ch, spec, shape)
    return ResolvedConfig(ch.cfg, tuple(ch.done), mode)


def _scorer_defaults(ch: _Changes, spec: ModelSpec, shape: GraphShape) -> None:
    """``item_graph`` and ``own_history``: the model's defaults, and off where they cannot
    score."""
    c = ch.cfg
    if c.item_graph is None:
        ch.set("item_graph", spec.item_graph, f"{c.model}'s default")
    if ch.cfg.item_graph and c.item_graph_kind == "ease" and c.item_graph_max_items <= 0:
        ch.set("item_graph", False, "item_graph_max_items=0 leaves no EASE graph")
    softmax = spec.trains == "sequences"
    if softmax and c.loss not in ("ce", "sampled"):  # bpr scores no softmax to point into
        if c.own_history:
            raise DataError(f"own_history=true needs loss=ce or sampled, not {c.loss!r}")
        ch.set("own_history", False, f"loss={c.loss} trains no softmax to point into")
    elif c.own_history is None:
        ch.set("own_history", spec.own_history, f"{c.model}'s default")


def build_model(cfg: TrainConfig | ResolvedConfig, shape: GraphShape) -> Recommender:
    """Instantiate the model of ``cfg`` for a graph of ``shape`` (``cfg`` is resolved first
    when it is a plain config)."""
    resolved = cfg if isinstance(cfg, ResolvedConfig) else resolve(cfg, shape)
    c = resolved.cfg
    return spec_of(c.model).build(c, shape)
