"""Model registry: the one place where a config becomes constructor arguments.

Every model is a :class:`~graphseq.models.base.Recommender` composed of an item side, a user
encoder, a scorer and (sequence models) an objective; the builders below choose the parts.
``--set item_graph=true`` adds the validated item–item graph fusion to any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from data_builders.errors import DataError
from graphseq.config import TrainConfig
from graphseq.graph.context import ItemSide
from graphseq.graph.events import EventTable
from graphseq.models.base import Recommender
from graphseq.models.cascade import CascadeTable, behavior_chain
from graphseq.models.items import ItemEncoder
from graphseq.models.mf import CollaborativeTable
from graphseq.models.mode import resolve_minibatch
from graphseq.models.neighbors import NeighborScorer
from graphseq.models.objectives import SequenceObjective
from graphseq.models.pop import PopularityTable
from graphseq.models.propagation import FullGraph, Sampled
from graphseq.models.scorer import Scorer
from graphseq.models.users import ConstantUser, SequenceEncoder, SnapshotScale, UserTable
from graphseq.models.views import extra_sizes, parse_views
from graphseq.nn.history import OwnHistory
from graphseq.nn.itemgraph import ItemGraphScorer
from graphseq.train.posthoc import fusion_settings

log = logging.getLogger("graphseq")


@dataclass(frozen=True)
class GraphShape:
    """What a model needs to know of its graph: sizes, behavior names, item side graphs."""

    num_users: int
    num_items: int
    behaviors: tuple[str, ...]
    side: ItemSide
    targets: tuple[str, ...] = ()  # target behaviors
    overlap: tuple[float, ...] = ()  # per behavior: share of its user–item pairs that are
    # also target pairs (how close a behavior is to the target)
    timed: bool = True  # False when the log had no timestamps (time = input position)
    behavior_events: tuple[int, ...] = ()  # events per behavior (the trainer: training events),
    # what minibatch=auto decides on (graphseq/models/mode.py)

    @classmethod
    def of(cls, ev: EventTable, side: ItemSide) -> GraphShape:
        pair = ev.user * ev.num_items + ev.item
        tgt = torch.isin(pair, pair[ev.is_target])
        overlap = [float(tgt[ev.behavior == b].float().mean()) if bool((ev.behavior == b).any())
                   else 0.0 for b in range(len(ev.behaviors))]  # fmt: skip
        targets = sorted({ev.behaviors[b] for b in ev.behavior[ev.is_target].unique().tolist()})
        counts = tuple(torch.bincount(ev.behavior, minlength=len(ev.behaviors)).tolist())
        return cls(ev.num_users, ev.num_items, tuple(ev.behaviors), side, tuple(targets),
                   tuple(overlap), ev.time_kind != "input_order", counts)  # fmt: skip


Builder = Callable[[TrainConfig, GraphShape], Recommender]

# config keys each kind of model reads (beyond ALWAYS); a key set by the user that the chosen
# model ignores gets a warning
ALWAYS = {"model", "graph", "split", "global_time_quantiles", "seed", "device", "eval_batch_size",
          "valid_users", "exclude_seen", "ks", "max_seq_len", "item_graph", "item_graph_reg",
          "item_graph_kind", "item_graph_knn", "item_graph_shrink", "item_graph_max_items", "item_graph_weights", "item_graph_decays", "logger",
          "mlflow_uri"}  # fmt: skip
TRAINING = {"epochs", "patience", "eval_every", "batch_size", "lr", "weight_decay",
            "max_grad_norm", "amp", "distributed", "dim"}  # fmt: skip
POINTER = {"own_history", "own_history_scales", "own_history_sharpen"}
SEQUENCE = TRAINING | POINTER | {"num_layers", "num_heads", "dropout", "loss", "head", "num_negatives",
                       "negatives", "sequence", "time_encoding", "item_text", "item_text_model",
                       "train_exclude_seen", "ce_max_logits", "share_negatives"}  # fmt: skip
GRAPH = {"gnn_layers", "views", "fusion", "edge_dropout", "coarse", "num_snapshots", "minibatch",
         "fanouts", "eval_chunk", "sparse_min_rows"}  # fmt: skip
KEYS_READ: dict[str, set[str]] = {
    "pop": POINTER,
    "mf": TRAINING | POINTER | {"reg"},
    "lightgcn": TRAINING | POINTER | {"reg", "gnn_layers", "lightgcn_edge_dropout",
                                      "lightgcn_behaviors"},
    "sasrec": SEQUENCE,
    "graphseq": SEQUENCE | GRAPH,
    "gru4rec": SEQUENCE - {"num_heads", "sequence"},
    "mbcgcn": TRAINING | POINTER | {"reg", "gnn_layers", "behavior_order"},
    "ease": POINTER | {"ease_regs", "neighbor_decays"},
    "itemknn": POINTER | {"knn_neighbors", "knn_shrinks", "neighbor_decays"},
}  # fmt: skip


def item_graph(c: TrainConfig, shape: GraphShape, default: bool) -> ItemGraphScorer | None:
    """The post-hoc item–item graph fusion when ``c.item_graph`` (or the model's default)
    asks for it."""
    if not (default if c.item_graph is None else c.item_graph):
        return None
    ig = ItemGraphScorer(shape.num_items, c.item_graph_reg, c.item_graph_max_items,
                         c.item_graph_kind, c.item_graph_knn, c.item_graph_shrink)  # fmt: skip
    if not ig.enabled:
        log.info("item graph skipped: %d items > item_graph_max_items", shape.num_items)
        return None
    return ig


def untimed(c: TrainConfig, s: GraphShape) -> TrainConfig:
    """Without timestamps there are no time gaps and no snapshots: both are turned off."""
    if s.timed or not (c.time_encoding or c.coarse):
        return c
    log.info("the log has no timestamps (event order = input order): time-gap embeddings "
             "and the snapshot scale are off")  # fmt: skip
    return c.replace(time_encoding=False, coarse=False)


def _extras(c: TrainConfig, s: GraphShape, default: bool) -> tuple[str, tuple]:
    """The scorer's optional parts of a sequence model, and their repr suffix."""
    ig, oh = item_graph(c, s, default), own_history(c, s, default)
    tag = "+itemgraph" if ig is not None else ""
    return tag + ("+history" if oh is not None else ""), (ig, oh)


def _tags(ig: object, oh: object) -> str:
    """The repr suffix of a non-sequence model's optional scorer parts."""
    return (", +itemgraph" if ig else "") + (", +history" if oh else "")


def own_history(c: TrainConfig, s: GraphShape, default: bool) -> OwnHistory | None:
    """The learned own-earlier-edges term, when asked for (or by the model's default)."""
    if not (default if c.own_history is None else c.own_history):
        return None
    if c.model in UNTRAINED_POINTER:
        return OwnHistory(len(s.behaviors), skip_targets=c.exclude_seen, trained=False)
    if c.loss not in ("ce", "sampled"):  # bpr scores no softmax to point into
        if c.own_history:
            raise ValueError(f"own_history=true needs loss=ce or sampled, not {c.loss!r}")
        return None
    return OwnHistory(len(s.behaviors), skip_targets=c.exclude_seen)


# models that train no softmax: ``own_history=true`` gives them the pointer untrained, its
# strength and decay chosen on validation after training (the same grid as the calibration
# of the models that learn it)
UNTRAINED_POINTER = ("pop", "mf", "lightgcn", "mbcgcn", "ease", "itemknn")


def _objective(c: TrainConfig, s: GraphShape) -> SequenceObjective:
    return SequenceObjective(c.loss, c.train_exclude_seen and c.exclude_seen, c.ce_max_logits)


def _sequence_users(c: TrainConfig, s: GraphShape, snapshots=None) -> SequenceEncoder:
    return SequenceEncoder(
        len(s.behaviors), c.dim, c.max_seq_len, c.num_layers, c.num_heads, c.dropout,
        c.sequence, c.time_encoding, snapshots,
    )  # fmt: skip


def _text(c: TrainConfig, s: GraphShape) -> str:
    f = s.side.item_features
    return f", text={f.size(1)}" if f is not None else ""


def sasrec(c: TrainConfig, s: GraphShape) -> Recommender:
    """SASRec with full-softmax CE (Kang & McAuley 2018; gSASRec's CE, Petrov & Macdonald
    2023): the sequence-only baseline and GraphSeq's core."""
    c = untimed(c, s)
    items = ItemEncoder(s.num_items, c.dim, item_features=s.side.item_features)
    tag, parts = _extras(c, s, default=False)
    seq = c.sequence + tag
    return Recommender(
        "SASRec", s.num_users, s.num_items, items, _sequence_users(c, s),
        Scorer(c.dim, c.head, *parts), _objective(c, s), "sequences",
        f", dim={c.dim}, seq={seq}{_text(c, s)}",
    )  # fmt: skip


def graphseq(c: TrainConfig, s: GraphShape) -> Recommender:
    """GraphSeq: multi-view GNN item representations + multi-scale sequence user states."""
    c = untimed(c, s)
    views, skipped = parse_views(c.views, list(s.behaviors), s.side)
    if skipped:
        log.info("views %s not built: the graph has no %s", skipped, "side graph for them")
    if c.minibatch:
        if len(c.fanouts) != c.gnn_layers:
            raise ValueError(f"fanouts {c.fanouts} need one entry per gnn layer ({c.gnn_layers})")
        if c.loss not in ("ce", "sampled"):
            raise ValueError(f"mini-batch mode trains with loss ce or sampled, not {c.loss!r}")
        backend: FullGraph | Sampled = Sampled(c.fanouts, c.edge_dropout, c.eval_chunk)
    else:
        backend = FullGraph(c.gnn_layers, c.edge_dropout)
    items = ItemEncoder(
        s.num_items, c.dim, views, extra_sizes(views, s.num_users, s.side), backend, c.fusion,
        s.side.item_features,
    )  # fmt: skip
    snaps = None
    if c.coarse:
        sampled = Sampled(c.fanouts, 0.0, c.eval_chunk) if c.minibatch else None
        snaps = SnapshotScale(
            s.num_users, s.num_items, c.dim, c.num_snapshots, c.gnn_layers, sampled
        )
    tag, parts = _extras(c, s, default=True)
    seq = c.sequence + ("+snapshots" if c.coarse else "") + tag
    mb = f", minibatch={list(c.fanouts)}" if c.minibatch else ""
    return Recommender(
        "GraphSeq", s.num_users, s.num_items, items, _sequence_users(c, s, snaps),
        Scorer(c.dim, c.head, *parts), _objective(c, s), "sequences",
        f", dim={c.dim}, views={len(views)}, seq={seq}{_text(c, s)}{mb}",
    )  # fmt: skip


def gru4rec(c: TrainConfig, s: GraphShape) -> Recommender:
    """GRU4Rec (Hidasi et al. 2016) trained like SASRec (full-softmax CE at every position,
    as RecBole does): the same inputs (items, behaviors, time gaps), a GRU instead of
    attention, no graph."""
    model = sasrec(c.replace(sequence="gru"), s)
    model.name = "GRU4Rec"
    return model


def _collaborative(name: str, layers: int, dropout: float, targets_only: bool = False) -> Builder:
    def build(c: TrainConfig, s: GraphShape) -> Recommender:
        table = CollaborativeTable(s.num_users, s.num_items, c.dim, layers, c.reg, dropout,
                                   targets_only)  # fmt: skip
        ig, oh = item_graph(c, s, default=False), own_history(c, s, default=False)
        extra = (f", layers={layers}" if layers else "") + (
            ", target edges" if targets_only else ""
        )
        extra += _tags(ig, oh)
        return Recommender(
            name, s.num_users, s.num_items, table, UserTable(), Scorer(c.dim, "dot", ig, oh),
            None, "pairs", f", dim={c.dim}{extra}",
        )  # fmt: skip

    return build


def mf(c: TrainConfig, s: GraphShape) -> Recommender:
    """BPR-MF."""
    return _collaborative("MF", 0, 0.0)(c, s)


def lightgcn(c: TrainConfig, s: GraphShape) -> Recommender:
    """LightGCN on the user–item events of every behavior (or of the target behaviors)."""
    only = c.lightgcn_behaviors == "target"
    return _collaborative("LightGCN", c.gnn_layers, c.lightgcn_edge_dropout, only)(c, s)


def mbcgcn(c: TrainConfig, s: GraphShape) -> Recommender:
    """MB-CGCN: cascading LightGCN along the behavior chain (``behavior_order``)."""
    behaviors = list(s.behaviors)
    chain = list(c.behavior_order) or behavior_chain(behaviors, list(s.targets), list(s.overlap))
    unknown = [b for b in chain if b not in behaviors]
    if unknown:
        raise ValueError(f"behavior_order {unknown} not in the graph ({behaviors})")
    table = CascadeTable(s.num_users, s.num_items, c.dim, [behaviors.index(b) for b in chain],
                         c.gnn_layers, c.reg)  # fmt: skip
    ig, oh = item_graph(c, s, default=False), own_history(c, s, default=False)
    extra = _tags(ig, oh)
    return Recommender(
        "MBCGCN", s.num_users, s.num_items, table, UserTable(), Scorer(c.dim, "dot", ig, oh),
        None, "pairs", f", dim={c.dim}, chain={'>'.join(chain)}{extra}",
    )  # fmt: skip


def _neighbors(kind: str, name: str) -> Builder:
    def build(c: TrainConfig, s: GraphShape) -> Recommender:
        oh = own_history(c, s, default=False)
        scorer = NeighborScorer(s.num_items, kind, c.ease_regs[0], c.item_graph_max_items,
                                c.knn_neighbors[0], c.knn_shrinks[0], c.neighbor_decays[0],
                                oh)  # fmt: skip
        return Recommender(
            name, s.num_users, s.num_items, PopularityTable(s.num_items), ConstantUser(), scorer,
            None, "none", ", +history" if oh else "",
        )  # fmt: skip

    return build


ease = _neighbors("ease", "EASE")
itemknn = _neighbors("itemknn", "ItemKNN")


def pop(c: TrainConfig, s: GraphShape) -> Recommender:
    """Popularity of target events in the scoring graph."""
    ig, oh = item_graph(c, s, default=False), own_history(c, s, default=False)
    return Recommender(
        "Pop", s.num_users, s.num_items, PopularityTable(s.num_items), ConstantUser(),
        Scorer(1, "dot", ig, oh), None, "none",
        _tags(ig, oh),
    )  # fmt: skip


MODELS: dict[str, Builder] = {
    "pop": pop,
    "mf": mf,
    "lightgcn": lightgcn,
    "sasrec": sasrec,
    "graphseq": graphseq,
    "ease": ease,
    "itemknn": itemknn,
    "gru4rec": gru4rec,
    "mbcgcn": mbcgcn,
}


def posthoc_plan(c: TrainConfig, model: Recommender) -> list[tuple[nn.Module, list[dict], str]]:
    """What is chosen on validation after training, in order: ``(module whose buffers are
    set, the settings to try in order (the first wins ties), metrics.json key)`` each.

    The own-history calibration comes first: the pointer is added on top of the fused
    scores (``Scorer.forward``), so the item–item graph is best chosen for the ranking
    below a pointer already at its strength. In the other order, on Tmall, validation
    chose no item graph against the pointer's weaker learned strength (seed 0: test
    NDCG@10 0.1314 against 0.1388 in this order)."""
    plans = []
    hist = getattr(model.scorer, "history", None)
    grid = [{"scale": float(a), "sharpen": float(b)}
            for a in c.own_history_scales for b in c.own_history_sharpen]  # fmt: skip
    if hist is not None and not hist.trained:  # untrained: off first, then the same grid
        plans.append((hist, [{"scale": 0.0, "sharpen": 1.0}, *grid], "own_history_choice"))
    elif hist is not None and float(hist.weights().detach().abs().sum()) > 0:  # it scores
        plans.append((hist, grid, "own_history_choice"))
    return plans + _posthoc_scorer(c, model)


def _posthoc_scorer(c: TrainConfig, model: Recommender) -> list[tuple[nn.Module, list[dict], str]]:
    sc = model.scorer
    if isinstance(sc, NeighborScorer):
        decays = [float(d) for d in c.neighbor_decays]
        if sc.kind == "ease":
            grid = [{"reg": float(r), "decay": d} for r in c.ease_regs for d in decays]
        else:
            grid = [{"k": float(k), "shrink": float(sh), "decay": d}
                    for k in c.knn_neighbors for sh in c.knn_shrinks for d in decays]  # fmt: skip
        return [(sc, grid, "neighbors")]
    if model.item_graph is not None:
        return [
            (model.item_graph, fusion_settings(c.item_graph_weights, c.item_graph_decays),
             "item_graph")
        ]  # fmt: skip
    return []


NO_FEATURES = (
    "pop",
    "mf",
    "lightgcn",
    "mbcgcn",
    "ease",
    "itemknn",
)  # built-in models without an item-feature input


def check_model_name(name: str) -> None:
    if name not in MODELS:
        raise DataError(f"unknown model {name!r}", hint=f"valid: {', '.join(MODELS)}")


def ignored_keys(model: str, keys: set[str]) -> list[str]:
    """Keys of ``keys`` that ``model`` does not read (empty for users' own models)."""
    if model not in KEYS_READ:
        return []
    return sorted(k for k in keys if k not in ALWAYS | KEYS_READ[model])


def build_model(cfg: TrainConfig, shape: GraphShape) -> Recommender:
    """Instantiate ``cfg.model`` for a graph of ``shape``."""
    check_model_name(cfg.model)
    cfg = resolve_minibatch(cfg, shape.behaviors, shape.behavior_events)  # auto → true/false
    if cfg.minibatch is True and cfg.model != "graphseq":
        raise ValueError(f"minibatch=true applies to graphseq only, not {cfg.model!r}")
    if shape.side.item_features is not None and cfg.model in NO_FEATURES:
        raise DataError(
            f"model {cfg.model!r} does not use item features (item_text={cfg.item_text!r})",
            hint="use sasrec or graphseq, or leave item_text empty",
        )
    return MODELS[cfg.model](cfg, shape)


def register_model(name: str, builder: Builder) -> None:
    """Add a model under ``name`` (for users' own models): ``builder(cfg, shape)``."""
    MODELS[name] = builder
