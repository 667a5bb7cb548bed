"""Closed-form item–item graphs scored over a user's recency-decayed history.

Two graphs, both from the visible target events of one scoring graph:

- EASE (Steck 2019, https://arxiv.org/abs/1905.03375): the dense weights ``B`` that best
  rebuild every user's item row from their other items, ``B = I - P / diag(P)`` with
  ``P = (XᵀX + λI)⁻¹`` and a zero diagonal. On catalogues above ``max_items`` it is computed
  over the ``max_items`` most popular items (the rest get no weights): the inverse is cubic.
- ItemKNN (Sarwar et al. 2001): cosine similarity of item columns with shrinkage,
  ``s_ij = x_i·x_j / (|x_i| |x_j| + shrink)``, the ``k`` largest per item kept (sparse).

A user's score is one hop of their history over the graph, ``h_u G``, where ``h_u`` weights
each earlier target event by ``exp(-age / decay)`` (age in events, 0 for the most recent;
``decay = inf``: every event weighs 1). :class:`ItemGraphScorer` late-fuses that score with a
model's own; ``EASE`` / ``ItemKNN`` models use it alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from graphseq.graph.context import GraphContext, PerContext
from graphseq.graph.sequences import SeqBatch

__all__ = [
    "GraphCache",
    "ItemGraph",
    "ItemGraphScorer",
    "decayed_history",
    "fusion_settings",
    "ease_graph",
    "ease_item_graph",
    "knn_graph",
    "top_per_row",
    "standardize",
]


@dataclass
class ItemGraph:
    """Item–item weights: dense (M, M) over items ``index`` (all items when None), or a
    sparse CSR (I, I). Shapes: :meth:`apply` (B, I) → (B, I)."""

    weights: Tensor
    index: Tensor | None = None

    def apply(self, h: Tensor) -> Tensor:
        if self.weights.layout == torch.sparse_csr:  # (I, I) sparse: h @ W = (Wᵀ hᵀ)ᵀ
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
                return torch.sparse.mm(self.weights_t, h.T).T
        x = h if self.index is None else h[:, self.index]
        # histories are short: a sparse (B, M) history costs nnz × M, not B × M × M
        y = torch.sparse.mm(x.to_sparse(), self.weights) if x.is_cpu else x @ self.weights
        if self.index is None:
            return y
        out = torch.zeros_like(h)
        out[:, self.index] = y
        return out

    @property
    def weights_t(self) -> Tensor:
        if not hasattr(self, "_t"):
            self._t = self.weights.t().to_sparse_csr()
        return self._t

    def to(self, device: torch.device | str) -> ItemGraph:
        idx = None if self.index is None else self.index.to(device)
        return ItemGraph(self.weights.to(device), idx)


def _binary_matrix(users: Tensor, items: Tensor, num_users: int, num_items: int) -> sp.csr_matrix:
    """The binary user × item matrix of the (user, item) pairs (repeats count once)."""
    u, i = users.cpu().numpy(), items.cpu().numpy()
    x = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(num_users, num_items))
    x.data[:] = 1.0  # duplicates were summed
    return x


def ease_item_graph(
    users: Tensor, items: Tensor, num_users: int, num_items: int, reg: float = 200.0
) -> Tensor:
    """Dense EASE weights (I, I), zero diagonal, of the binary user × item matrix.

    Args:
        users, items: (E,) event endpoints (repeats count once).
        num_users, num_items: matrix size.  reg: L2 weight λ (200).
    """
    x = _binary_matrix(users, items, num_users, num_items)
    gram = torch.from_numpy((x.T @ x).toarray()).double()  # (I, I) co-occurrence counts
    gram.diagonal().add_(reg)
    p = torch.linalg.inv(gram)
    b = -p / p.diagonal()[None, :]
    b.fill_diagonal_(0.0)
    return b.float().to(items.device)


def top_items(items: Tensor, num_items: int, max_items: int) -> Tensor | None:
    """The ``max_items`` items with the most events, sorted (None: all items fit)."""
    if num_items <= max_items:
        return None
    counts = torch.bincount(items.cpu(), minlength=num_items)
    return torch.argsort(counts, descending=True, stable=True)[:max_items].sort().values


def ease_graph(
    users: Tensor,
    items: Tensor,
    num_users: int,
    num_items: int,
    reg: float,
    max_items: int,
    index: Tensor | None = None,
) -> ItemGraph:
    """EASE over every item, or over ``index`` (default: the ``max_items`` with the most
    events)."""
    index = top_items(items, num_items, max_items) if index is None else index.cpu()
    if index is None:
        return ItemGraph(ease_item_graph(users, items, num_users, num_items, reg))
    max_items = len(index)
    local = torch.full((num_items,), -1, dtype=torch.long)
    local[index] = torch.arange(max_items)
    keep = local[items.cpu()] >= 0
    w = ease_item_graph(users.cpu()[keep], local[items.cpu()[keep]], num_users, max_items, reg)
    return ItemGraph(w.to(items.device), index.to(items.device))


def top_per_row(rows: np.ndarray, values: np.ndarray, num_rows: int, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``values`` of each row (``k <= 0``: all), rows ascending
    and values descending within each. Shapes: rows, values (n,) → (m,) int."""
    order = np.lexsort((-values, rows))  # by row, then value descending
    if k <= 0:
        return order
    r = rows[order]
    rank = np.arange(len(r)) - np.searchsorted(r, np.arange(num_rows))[r]
    return order[rank < k]


def knn_graph(
    users: Tensor, items: Tensor, num_users: int, num_items: int, k: int, shrink: float
) -> ItemGraph:
    """Sparse ItemKNN graph: shrunk cosine similarity, the ``k`` largest per item (row)."""
    x = _binary_matrix(users, items, num_users, num_items)
    co = (x.T @ x).tocoo()  # (I, I) co-occurrence counts
    norm = np.sqrt(np.asarray(x.sum(0)).ravel())
    off = co.row != co.col
    r, c = co.row[off], co.col[off]
    s = co.data[off] / (norm[r] * norm[c] + shrink)
    keep = top_per_row(r, s, num_items, k)
    w = sp.csr_matrix((s[keep], (r[keep], c[keep])), shape=(num_items, num_items))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        t = torch.sparse_csr_tensor(
            torch.from_numpy(w.indptr.astype(np.int64)),
            torch.from_numpy(w.indices.astype(np.int64)),
            torch.from_numpy(w.data.astype(np.float32)),
            w.shape,
            check_invariants=False,
        )
    return ItemGraph(t.to(items.device))


def decayed_history(hist: SeqBatch, num_items: int, decay: Tensor | float) -> Tensor:
    """(B, I) weight of each item in each row's target events: ``exp(-age / decay)`` summed
    over its occurrences, age = events between it and the row's most recent event."""
    pos = torch.arange(hist.item.size(1), device=hist.item.device)  # (L,)
    age = (hist.last[:, None] - pos[None, :]).clamp(min=0).float()  # (B, L)
    w = torch.exp(-age / decay) * (hist.mask & hist.is_target)  # (B, L)
    out = torch.zeros(len(hist.item), num_items + 1, device=w.device)  # spare column: padding
    return out.scatter_add_(1, hist.item, w)[:, :num_items]


def standardize(scores: Tensor) -> Tensor:
    """Per-row z-score over the catalogue: ranking-neutral, puts two scorers on one scale.
    Shapes: (B, I) → (B, I)."""
    mean = scores.mean(1, keepdim=True)
    return (scores - mean) / scores.std(1, keepdim=True).clamp(min=1e-8)


MakeGraph = Callable[[Tensor, Tensor, int], "ItemGraph"]  # (users, items, num_users) -> graph


class GraphCache:
    """A part's item–item graph of each scoring context's target events, rebuilt when its
    parameters (``key``) change, so a validation grid over λ or k holds one graph at a time."""

    def __init__(self) -> None:
        self._of: PerContext[tuple[tuple, ItemGraph]] = PerContext()

    def get(
        self, ctx: GraphContext, key: tuple, make: MakeGraph, device: torch.device
    ) -> ItemGraph:
        held = self._of.peek(ctx)
        if held is None or held[0] != key:
            self._of.forget(ctx)  # free the old graph before building the next
            vis = ctx.visible
            t = vis.is_target
            self._of.set(ctx, (key, make(vis.user[t], vis.item[t].to(device), vis.num_users)))
        return self._of.peek(ctx)[1]


def fusion_settings(weights: Sequence[float], decays: Sequence[float]) -> list[dict[str, float]]:
    """Weight 0 (no fusion) first, where the decay is moot; then every weight × decay."""
    out = [{"weight": 0.0, "decay": float(decays[0])}]
    return out + [
        {"weight": float(w), "decay": float(d)}
        for w in sorted(set(weights) - {0.0})
        for d in decays
    ]


class ItemGraphScorer(nn.Module):
    """Late fusion of a model's scores with an item–item graph's:
    ``standardize(model) + weight · standardize(h_u B)``.

    ``weight`` and ``decay`` are buffers (saved with the model): they are chosen on
    validation after training (``graphseq.training.posthoc``), and ``weight = 0`` (the default)
    leaves the model's scores untouched.

    Args:
        num_items: catalogue size.
        reg: EASE λ (200).
        max_items: EASE is computed over at most this many (most popular) items (10,000).
        kind: ``ease`` (dense, Steck 2019) or ``itemknn`` (sparse shrunk cosine over every
            item, the ``k`` most similar of each, shrinkage ``shrink``).
        weights, decays: the grid tried on validation after training (:meth:`posthoc_grid`).
    """

    posthoc_key = "item_graph"  # where metrics.json reports what validation chose

    def __init__(
        self,
        num_items: int,
        reg: float = 200.0,
        max_items: int = 10_000,
        kind: str = "ease",
        k: int = 100,
        shrink: float = 10.0,
        weights: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0),
        decays: Sequence[float] = (5.0, 20.0),
    ) -> None:
        super().__init__()
        if kind not in ("ease", "itemknn"):
            raise ValueError(f"unknown item graph {kind!r}; valid: ease, itemknn")
        self.num_items, self.max_items, self.kind = num_items, max_items, kind
        self.k, self.shrink = int(k), float(shrink)
        self.grid_weights, self.grid_decays = tuple(weights), tuple(decays)
        self.register_buffer("weight", torch.zeros(()))
        self.register_buffer("decay", torch.tensor(20.0))
        self.register_buffer("reg", torch.tensor(float(reg)))
        self._graphs = GraphCache()

    def posthoc_grid(self) -> list[dict[str, float]]:
        """The settings of ``weight`` and ``decay`` tried on validation (no fusion first)."""
        return fusion_settings(self.grid_weights, self.grid_decays)

    def graph_key(self) -> tuple:
        if self.kind == "itemknn":
            return ("itemknn", self.k, self.shrink)
        return ("ease", float(self.reg), self.max_items)

    @property
    def enabled(self) -> bool:
        return self.kind == "itemknn" or self.max_items > 0

    def reset_parameters(self) -> None:
        self.weight.zero_()
        self.decay.fill_(20.0)

    def graph(self, users: Tensor, items: Tensor, num_users: int) -> ItemGraph:
        """The item–item graph of one scoring graph's target events."""
        if self.kind == "itemknn":
            return knn_graph(users, items, num_users, self.num_items, self.k, self.shrink)
        return ease_graph(users, items, num_users, self.num_items, float(self.reg), self.max_items)

    def graph_of(self, ctx: GraphContext, device: torch.device) -> ItemGraph:
        """The graph of ``ctx``'s target events (built once per context and setting)."""
        return self._graphs.get(ctx, self.graph_key(), self.graph, device)

    def forward(self, scores: Tensor, hist: SeqBatch, graph: ItemGraph | Tensor) -> Tensor:
        """Shapes: ``scores`` (B, I), ``hist`` fields (B, L) → (B, I)."""
        if float(self.weight) == 0.0:
            return scores
        g = graph if isinstance(graph, ItemGraph) else ItemGraph(graph)
        h = decayed_history(hist, self.num_items, self.decay)  # (B, I)
        return standardize(scores) + self.weight * standardize(g.apply(h))

    def __repr__(self) -> str:
        graph = (
            f"k={self.k}, shrink={self.shrink:g}"
            if self.kind == "itemknn"
            else f"reg={float(self.reg):g}"
        )
        return f"ItemGraphScorer({self.num_items}i, {self.kind}, {graph}, weight={float(self.weight):g}, decay={float(self.decay):g})"
