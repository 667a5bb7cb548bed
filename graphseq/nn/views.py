"""View encoders: propagate node embeddings over one view's graph."""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor, nn

from graphseq.nn.adjacency import sparse_rows

__all__ = ["LightGCNView", "bipartite_propagate", "sparse_propagate"]

_CACHE_SIZE = 4  # adjacencies per LightGCNView whose transpose is kept


def _transpose(adj: Tensor) -> Tensor:
    if adj.layout == torch.sparse_csr:
        return adj.t().to_sparse_csr()
    if adj.layout == torch.sparse_coo:
        return adj.t().coalesce()
    return adj.t()


class _SpMM(torch.autograd.Function):
    """``adj @ x`` whose backward multiplies by a given ``adj_t`` (no per-call transpose)."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adjs = (adj, adj_t)
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        adj, adj_t = ctx.adjs
        return None, None, _SpMM.apply(adj_t, adj, grad)  # twice differentiable


def sparse_propagate(adj: Tensor, x: Tensor, adj_t: Tensor | None = None) -> Tensor:
    """``adj @ x`` for a sparse (CSR/COO) ``adj``, differentiable w.r.t. ``x``.

    PyTorch's own backward converts ``adj.t()`` to CSR on every call (~10 ms for
    200k edges); passing ``adj_t`` (``adj`` itself when symmetric) skips that.
    Gradients w.r.t. ``adj`` values are supported only through the plain
    ``torch.sparse.mm`` path, taken when ``adj.requires_grad``.

    Shapes: adj (N, M) sparse, x (M, d) -> (N, d).
    """
    if adj.requires_grad or adj_t is None:
        return torch.sparse.mm(adj, x)
    return _SpMM.apply(adj, adj_t, x)


def bipartite_propagate(
    a_sd: Tensor,
    a_ds: Tensor,
    x_s: Tensor,
    x_d: Tensor,
    num_layers: int,
    rows: Tensor | None = None,
) -> Tensor:
    """Source-side output of LightGCN on a bipartite graph given by its normalised blocks
    (:func:`graphseq.nn.adjacency.bipartite_blocks`): the mean over layers ``0..L`` of the
    source nodes ``rows`` (all when ``None``). Equals the first ``num_src`` rows of
    ``LightGCNView(L)(cat([x_s, x_d]), bipartite_adjacency(...))``, but computes only what
    those rows need: for L = 2 and a batch of rows, one pass over the edges instead of four.

    Shapes: a_sd sparse (S, D), a_ds sparse (D, S), x_s (S, d), x_d (D, d), rows (B,)
    → (B, d), or (S, d) when ``rows`` is None.
    """
    a_rows = a_sd if rows is None else sparse_rows(a_sd, rows)
    s, d = x_s, x_d
    out = x_s if rows is None else x_s[rows]
    for layer in range(1, num_layers + 1):
        every = rows is None or layer <= num_layers - 2  # a later target layer reads all of s
        s_new = sparse_propagate(a_sd, d, a_ds) if every else sparse_propagate(a_rows, d)
        if layer < num_layers:  # target side, layer l (from the source side at l - 1)
            d = sparse_propagate(a_ds, s, a_sd)
        s = s_new
        out = out + (s[rows] if every and rows is not None else s)
    return out / (num_layers + 1)


class LightGCNView(nn.Module):
    """Parameter-free LightGCN propagation (https://arxiv.org/abs/2002.02126).

    ``out = mean_{l=0..L} A^l x`` on a precomputed normalised adjacency, e.g.
    from :func:`graphseq.nn.bipartite_adjacency`. The transpose that backward
    needs is computed once per adjacency and cached (up to 4 live adjacencies,
    keyed by a weak reference to ``adj`` and the version of its values), so training on a fixed graph pays
    three SpMMs forward and three backward; pass ``symmetric=True`` in
    :meth:`forward` to use ``adj`` itself, as for every matrix built by
    :mod:`graphseq.nn.adjacency`.

    Args:
        num_layers: number of propagation steps L (default 2).

    Shapes: x (N, d), adj sparse (N, N) -> (N, d).
    """

    def __init__(self, num_layers: int = 2) -> None:
        super().__init__()
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        self.num_layers = num_layers
        self._cache: list[tuple[weakref.ref, int, Tensor]] = []  # (adj, version, adj.T)

    def reset_parameters(self) -> None:
        """No parameters; drops the cached transposes."""
        self._cache = []

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_cache"] = []  # weak references do not pickle
        return state

    def _adj_t(self, adj: Tensor) -> Tensor:
        if adj.layout == torch.sparse_csr:
            version = adj.values()._version
        elif adj.layout == torch.sparse_coo:
            version = adj._values()._version
        else:
            version = adj._version
        for ref, cached_version, adj_t in self._cache:
            if ref() is adj and cached_version == version:
                return adj_t
        # drop freed adjacencies and stale transposes of this one (edited in place)
        self._cache = [e for e in self._cache if e[0]() is not None and e[0]() is not adj]
        adj_t = _transpose(adj)
        self._cache = [*self._cache[-(_CACHE_SIZE - 1) :], (weakref.ref(adj), version, adj_t)]
        return adj_t

    def forward(self, x: Tensor, adj: Tensor, symmetric: bool = False) -> Tensor:
        """Propagate ``x``; ``symmetric=True`` promises ``adj == adj.T``.

        Shapes: x (N, d), adj sparse (N, N) -> (N, d).
        """
        adj_t = None
        if torch.is_grad_enabled() and x.requires_grad and not adj.requires_grad:
            adj_t = adj if symmetric else self._adj_t(adj)
        out, h = x, x
        for _ in range(self.num_layers):
            h = sparse_propagate(adj, h, adj_t)  # (N, d)
            out = out + h
        return out / (self.num_layers + 1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(layers={self.num_layers})"
