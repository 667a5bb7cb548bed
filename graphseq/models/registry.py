"""Model registry: which parts each model is composed of.

Every model is a :class:`~graphseq.models.base.Recommender` of an item side, a user encoder,
a scorer and (sequence models) an objective; each part translates the config into its
constructor arguments in its own ``from_config``. A :class:`ModelSpec` names the parts, so
the keys a model reads, whether it takes item features and whether it trains the own-history
pointer are read from it (:mod:`graphseq.models.resolve`). ``--set item_graph=true`` adds
the validated item–item graph fusion to any model with a :class:`Scorer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphseq.graph.shape import GraphShape
from graphseq.models.base import Recommender
from graphseq.models.cascade import CascadeTable
from graphseq.models.items import ItemEncoder
from graphseq.models.mf import CollaborativeTable
from graphseq.models.neighbors import NeighborScorer
from graphseq.models.objectives import SequenceObjective
from graphseq.models.pop import PopularityTable
from graphseq.models.scorer import Scorer, own_history_of
from graphseq.models.users import ConstantUser, SequenceEncoder, SnapshotScale, UserTable

if TYPE_CHECKING:
    from graphseq.config import TrainConfig

Builder = Callable[["TrainConfig", GraphShape], Recommender]


@dataclass(frozen=True)
class ModelSpec:
    """How a model is built and what it reads.

    Args:
        build: ``build(resolved config, shape) → Recommender``.
        reads: the config keys its parts read (besides the run's and, when it trains, the
            trainer's); ``None`` for a model registered without them (nothing is warned).
        trains: ``sequences`` (a softmax over the catalogue) | ``pairs`` (BPR rows) | ``none``.
        features: takes item text features (``item_text``).
        item_graph, own_history: the defaults of those keys for this model.
        fixed: keys the model sets itself, whatever the config says (gru4rec: its GRU).
    """

    build: Builder
    reads: frozenset[str] | None = None
    trains: str = "sequences"
    features: bool = False
    item_graph: bool = False
    own_history: bool = False
    fixed: Mapping[str, Any] = field(default_factory=dict)


def keys_of(
    *parts: type, extra: tuple[str, ...] = (), without: tuple[str, ...] = ()
) -> frozenset[str]:
    """The config keys the ``parts`` classes read (their ``config_keys``), plus ``extra``."""
    out = {k for p in parts for k in p.config_keys} | set(extra)
    return frozenset(out - set(without))


def _suffix(scorer: Any) -> str:
    """The repr suffix of a scorer's optional parts."""
    return ("+itemgraph" if scorer.item_graph is not None else "") + (
        "+history" if scorer.history is not None else ""
    )


def _text(shape: GraphShape) -> str:
    f = shape.side.item_features
    return f", text={f.size(1)}" if f is not None else ""


def sasrec(cfg: TrainConfig, shape: GraphShape) -> Recommender:
    """SASRec with full-softmax CE (Kang & McAuley 2018; gSASRec's CE, Petrov & Macdonald
    2023): the sequence-only baseline and GraphSeq's core."""
    scorer = Scorer.from_config(cfg, shape, trained=True)
    return Recommender(
        "SASRec", shape.num_users, shape.num_items, ItemEncoder.from_config(cfg, shape),
        SequenceEncoder.from_config(cfg, shape), scorer, SequenceObjective.from_config(cfg, shape),
        "sequences", f", dim={cfg.dim}, seq={cfg.sequence}{_suffix(scorer)}{_text(shape)}",
    )  # fmt: skip


def gru4rec(cfg: TrainConfig, shape: GraphShape) -> Recommender:
    """GRU4Rec (Hidasi et al. 2016) trained like SASRec (full-softmax CE at every position,
    as RecBole does): the same inputs (items, behaviors, time gaps), a GRU instead of
    attention, no graph (its spec fixes ``sequence=gru``)."""
    model = sasrec(cfg, shape)
    model.name = "GRU4Rec"
    return model


def graphseq(cfg: TrainConfig, shape: GraphShape) -> Recommender:
    """GraphSeq: multi-view GNN item representations + multi-scale sequence user states."""
    if cfg.minibatch and cfg.loss not in ("ce", "sampled"):
        raise ValueError(f"mini-batch mode trains with loss ce or sampled, not {cfg.loss!r}")
    items = ItemEncoder.from_config(cfg, shape, views=True)
    snapshots = SnapshotScale.from_config(cfg, shape)
    scorer = Scorer.from_config(cfg, shape, trained=True)
    seq = cfg.sequence + ("+snapshots" if snapshots is not None else "") + _suffix(scorer)
    mb = f", minibatch={list(cfg.fanouts)}" if cfg.minibatch else ""
    return Recommender(
        "GraphSeq", shape.num_users, shape.num_items, items, SequenceEncoder.from_config(cfg, shape, snapshots),
        scorer, SequenceObjective.from_config(cfg, shape), "sequences",
        f", dim={cfg.dim}, views={len(items.views)}, seq={seq}{_text(shape)}{mb}",
    )  # fmt: skip


def _tags(scorer: Any) -> str:
    """The repr suffix of a non-sequence model's optional scorer parts."""
    return (", +itemgraph" if scorer.item_graph is not None else "") + (
        ", +history" if scorer.history is not None else ""
    )


def _collaborative(name: str, lightgcn: bool) -> Builder:
    def build(cfg: TrainConfig, shape: GraphShape) -> Recommender:
        table = CollaborativeTable.from_config(cfg, shape, lightgcn)
        scorer = Scorer.from_config(cfg, shape, trained=False)
        extra = (f", layers={table.num_layers}" if table.num_layers else "") + (
            ", target edges" if table.targets_only else ""
        )
        return Recommender(
            name, shape.num_users, shape.num_items, table, UserTable(), scorer, None, "pairs",
            f", dim={cfg.dim}{extra}{_tags(scorer)}",
        )  # fmt: skip

    return build


mf = _collaborative("MF", lightgcn=False)
mf.__doc__ = "BPR-MF."
lightgcn = _collaborative("LightGCN", lightgcn=True)
lightgcn.__doc__ = "LightGCN on the user–item events of every behavior (or of the targets)."


def mbcgcn(cfg: TrainConfig, shape: GraphShape) -> Recommender:
    """MB-CGCN: cascading LightGCN along the behavior chain (``behavior_order``)."""
    table = CascadeTable.from_config(cfg, shape)
    scorer = Scorer.from_config(cfg, shape, trained=False)
    return Recommender(
        "MBCGCN", shape.num_users, shape.num_items, table, UserTable(), scorer, None, "pairs",
        f", dim={cfg.dim}, chain={table.chain_names(shape.behaviors)}{_tags(scorer)}",
    )  # fmt: skip


def _neighbors(kind: str, name: str) -> Builder:
    def build(cfg: TrainConfig, shape: GraphShape) -> Recommender:
        pointer = own_history_of(cfg, shape, trained=False)
        scorer = NeighborScorer.from_config(cfg, shape, kind, pointer)
        return Recommender(
            name, shape.num_users, shape.num_items, PopularityTable(shape.num_items), ConstantUser(), scorer,
            None, "none", ", +history" if pointer else "",
        )  # fmt: skip

    return build


def pop(cfg: TrainConfig, shape: GraphShape) -> Recommender:
    """Popularity of target events in the scoring graph."""
    scorer = Scorer.from_config(cfg, shape, trained=False, dim=1)
    return Recommender(
        "Pop", shape.num_users, shape.num_items, PopularityTable(shape.num_items), ConstantUser(), scorer,
        None, "none", _tags(scorer),
    )  # fmt: skip


_SEQUENCE = keys_of(ItemEncoder, SequenceEncoder, Scorer, SequenceObjective, extra=("head",))
_POINTER = ("own_history", "own_history_scales", "own_history_sharpen")

SPECS: dict[str, ModelSpec] = {
    "pop": ModelSpec(pop, keys_of(Scorer), trains="none"),
    "mf": ModelSpec(mf, keys_of(CollaborativeTable, Scorer), trains="pairs"),
    "lightgcn": ModelSpec(
        lightgcn, keys_of(CollaborativeTable, Scorer, extra=CollaborativeTable.lightgcn_keys),
        trains="pairs",
    ),  # fmt: skip
    "sasrec": ModelSpec(sasrec, _SEQUENCE, features=True),
    "graphseq": ModelSpec(
        graphseq, _SEQUENCE | keys_of(SnapshotScale, extra=ItemEncoder.graph_keys),
        features=True, item_graph=True, own_history=True,
    ),  # fmt: skip
    "ease": ModelSpec(_neighbors("ease", "EASE"), frozenset(
        ("ease_regs", "neighbor_decays", "item_graph_max_items", *_POINTER)), trains="none"),
    "itemknn": ModelSpec(_neighbors("itemknn", "ItemKNN"), frozenset(
        ("knn_neighbors", "knn_shrinks", "neighbor_decays", *_POINTER)), trains="none"),
    "gru4rec": ModelSpec(gru4rec, _SEQUENCE - {"num_heads", "sequence"}, features=True,
                         fixed={"sequence": "gru"}),
    "mbcgcn": ModelSpec(mbcgcn, keys_of(CascadeTable, Scorer), trains="pairs"),
}  # fmt: skip
MODELS: dict[str, Builder] = {name: spec.build for name, spec in SPECS.items()}


def register_model(name: str, builder: Builder, **spec: Any) -> None:
    """Add a model under ``name`` (for users' own models): ``builder(cfg, shape)`` gets the
    resolved config; ``spec`` takes :class:`ModelSpec`'s other fields (``reads`` None: no
    key is warned as unused)."""
    SPECS[name] = ModelSpec(builder, **spec)
    MODELS[name] = builder
