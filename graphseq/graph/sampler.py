"""Time-respecting neighbour sampling on a CSR, vectorised in torch (no loop over nodes).

A :class:`TemporalCSR` holds each node's neighbours sorted by edge time (stable: input order
breaks ties, so event order is kept). The edges of node ``v`` strictly before time ``t`` are
a prefix of its row, found for every seed at once with one ``torch.searchsorted`` on the
combined key ``row * (T + 1) + rank(time)``. Inside that prefix each seed draws up to ``k``
distinct neighbours:

- ``uniform``: the prefix is cut into ``min(k, n)`` equal strata (in time order) and one
  position is drawn uniformly inside each, with ``torch.rand`` (stratified sampling: distinct
  edges, spread over the node's history, each drawn with probability ~k/n);
- ``even``: the middle of each stratum (deterministic; for evaluation);
- ``recent``: the last ``k`` edges before the seed time.

Each sampled edge carries a weight (the size of its stratum, or ``n / k`` for ``recent``)
such that ``sum(weight * f(edge))`` estimates the sum of ``f`` over all valid edges without
bias (Horvitz–Thompson), so LightGCN sums on the sampled tree estimate the full-graph ones.
When ``k >= n`` every valid edge comes back with weight 1.

Multi-hop sampling is *disjoint* (as PyG's ``disjoint=True``): every sampled occurrence is
its own node carrying its root seed's time, and every hop only uses edges strictly before
that time. PyG's own temporal loaders (:func:`pyg_link_loader`) need pyg-lib or torch-sparse;
:func:`pyg_sampler_available` says whether they can run here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NO_TIME = torch.iinfo(torch.int64).min  # time of untimed edges (tags, KG): before any seed
ALL_TIME = torch.iinfo(torch.int64).max  # a seed time that admits every timed edge
STRATEGIES = ("uniform", "even", "recent")


def _compact(x: Tensor, bound: int) -> Tensor:
    """``x`` as int32 when every value lies below ``bound`` < 2^31 (half the memory of the
    int64 slot arrays on large graphs; indexing and ``cat`` accept either)."""
    return x.to(torch.int32) if bound < torch.iinfo(torch.int32).max else x


@dataclass
class TemporalCSR:
    """Neighbours of each node in time order.

    Attributes:
        ptr: (N+1,) row pointers.  col: (E,) neighbour of each CSR slot (int32 when the
        node count allows).  eid: (E,) index of the slot's edge in the edge lists given to
        :meth:`from_edges` (int32 when it allows).  key: (E,) sorted
        ``row * (T+1) + rank(time)``.  times: (T,) sorted unique times.
        The slot's time is not stored: it is ``times[key % (T+1)]`` (:meth:`time_at`), so a
        slot costs 16 bytes (col, eid, key) instead of 32.
    """

    ptr: Tensor
    col: Tensor
    eid: Tensor
    key: Tensor
    times: Tensor

    @property
    def num_nodes(self) -> int:
        return self.ptr.numel() - 1

    def time_at(self, slot: Tensor) -> Tensor:
        """(S,) int64 edge time of each slot. Shapes: slot (S,)."""
        return self.times[self.key[slot] % (self.times.numel() + 1)]

    @property
    def time(self) -> Tensor:
        """(E,) int64 edge time of every slot, non-decreasing within a row (derived)."""
        return self.times[self.key % (self.times.numel() + 1)]

    @classmethod
    def from_edges(
        cls,
        src: Tensor,
        dst: Tensor,
        num_nodes: int,
        time: Tensor | None = None,
        undirected: bool = False,
    ) -> TemporalCSR:
        """CSR of ``src -> dst`` (both directions when ``undirected``; ``eid`` then indexes
        the input list for either direction). ``time`` ``None``: untimed edges.
        Shapes: src, dst, time (E,)."""
        src, dst = src.long(), dst.long()
        n_edges = src.numel()
        eid = torch.arange(n_edges)
        time = torch.full_like(src, NO_TIME) if time is None else time.long()
        if undirected:
            src, dst = torch.cat([src, dst]), torch.cat([dst, src])
            eid, time = torch.cat([eid, eid]), torch.cat([time, time])
        times = torch.unique(time)  # sorted
        key = torch.searchsorted(times, time)  # the time's rank
        del time
        key += src * (times.numel() + 1)
        key, perm = torch.sort(key, stable=True)
        ptr = torch.zeros(num_nodes + 1, dtype=torch.int64)
        ptr[1:] = torch.cumsum(torch.bincount(src, minlength=num_nodes), 0)
        del src
        return cls(ptr, _compact(dst[perm], num_nodes), _compact(eid[perm], n_edges), key, times)

    def num_before(self, nodes: Tensor, time: Tensor) -> Tensor:
        """(S,) number of edges of each node strictly before its time.
        Shapes: nodes, time (S,)."""
        r = torch.searchsorted(self.times, time.contiguous())  # unique times < t
        q = nodes * (self.times.numel() + 1) + r
        return torch.searchsorted(self.key, q) - self.ptr[nodes]


@dataclass
class SampledSubgraph:
    """A disjoint sampled tree: seeds first, then each hop's occurrences.

    Attributes:
        node: (N,) global node id of each occurrence.  node_time: (N,) its root seed's time.
        hop_ptr: (H+2,) occurrences of hop ``h`` are ``hop_ptr[h]:hop_ptr[h+1]`` (hop 0: seeds).
        edge_index: (2, M) local ``(neighbour occurrence, parent occurrence)``.
        edge_time: (M,) time of each sampled edge (always < its parent's ``node_time``).
        edge_id: (M,) ``eid`` of each sampled edge.  weight: (M,) inverse inclusion probability.
        degree: (N,) number of valid edges (before ``node_time``) of each occurrence.
    """

    node: Tensor
    node_time: Tensor
    hop_ptr: Tensor
    edge_index: Tensor
    edge_time: Tensor
    edge_id: Tensor
    weight: Tensor
    degree: Tensor

    @property
    def num_seeds(self) -> int:
        return int(self.hop_ptr[1])

    def to(self, device: torch.device | str) -> SampledSubgraph:
        return SampledSubgraph(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def sample_hop(
    csr: TemporalCSR,
    nodes: Tensor,
    time: Tensor,
    k: int,
    strategy: str = "uniform",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Up to ``k`` distinct neighbours of every node among its edges strictly before ``time``.

    Returns ``(parent, slot, weight, n)``: for each sampled edge the index of its seed in
    ``nodes`` and its CSR slot (``csr.col[slot]`` is the neighbour), its weight, and per seed
    the number ``n`` of valid edges. Shapes: nodes, time (S,) → (M,), (M,), (M,), (S,).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    if k < 1:
        raise ValueError(f"fan-out must be >= 1, got {k}")
    n = csr.num_before(nodes, time)  # (S,)
    m = n.clamp(max=k)
    parent = torch.repeat_interleave(torch.arange(nodes.numel()), m)  # (M,)
    start = torch.cumsum(m, 0) - m
    j = torch.arange(parent.numel()) - start[parent]  # slot rank inside the seed's draw
    nn_, mm = n[parent], m[parent]
    if strategy == "recent":
        off = nn_ - mm + j
        weight = nn_.double() / mm
    else:  # stratum j of the valid prefix: [j*n//m, (j+1)*n//m), never empty as n >= m
        lo, hi = (j * nn_) // mm, ((j + 1) * nn_) // mm
        width = hi - lo
        if strategy == "even":
            u = torch.full((parent.numel(),), 0.5, dtype=torch.float64)
        else:
            u = torch.rand(parent.numel(), generator=generator, dtype=torch.float64)
        off = lo + torch.minimum((u * width).long(), width - 1)
        weight = width.double()
    slot = csr.ptr[nodes][parent] + off
    return parent, slot, weight.float(), n


def sample_subgraph(
    csr: TemporalCSR,
    seeds: Tensor,
    seed_time: Tensor,
    fanouts: tuple[int, ...] | list[int],
    strategy: str = "uniform",
    generator: torch.Generator | None = None,
) -> SampledSubgraph:
    """Multi-hop time-respecting sampling: hop ``h`` draws up to ``fanouts[h]`` neighbours of
    every occurrence of hop ``h-1``, among its edges strictly before its root's seed time.

    Shapes: seeds, seed_time (S,) → a :class:`SampledSubgraph`.
    """
    seeds, seed_time = seeds.long(), seed_time.long()
    nodes, times = [seeds], [seed_time]
    hop_ptr = [0, seeds.numel()]
    src, dst, etime, eid, weight, degree = [], [], [], [], [], []
    front, ftime, offset = seeds, seed_time, 0
    for k in fanouts:
        parent, slot, w, n = sample_hop(csr, front, ftime, k, strategy, generator)
        degree.append(n)
        child = csr.col[slot].long()
        base = hop_ptr[-1]
        src.append(base + torch.arange(child.numel()))
        dst.append(offset + parent)
        etime.append(csr.time_at(slot))
        eid.append(csr.eid[slot].long())
        weight.append(w)
        offset = base
        front, ftime = child, ftime[parent]
        nodes.append(front)
        times.append(ftime)
        hop_ptr.append(base + front.numel())
    degree.append(csr.num_before(front, ftime))  # the last hop's degrees (for normalisation)
    cat = torch.cat
    empty = torch.zeros(0, dtype=torch.long)
    return SampledSubgraph(
        node=cat(nodes),
        node_time=cat(times),
        hop_ptr=torch.tensor(hop_ptr),
        edge_index=torch.stack([cat(src or [empty]), cat(dst or [empty])]),
        edge_time=cat(etime or [empty]),
        edge_id=cat(eid or [empty]),
        weight=cat(weight) if weight else torch.zeros(0),
        degree=cat(degree),
    )


def pyg_sampler_available() -> bool:
    """Whether PyG's neighbour loaders can run (they need pyg-lib or torch-sparse)."""
    import torch_geometric.typing as tg

    return bool(tg.WITH_PYG_LIB or tg.WITH_TORCH_SPARSE)


def pyg_link_loader(
    data,
    edge_type: tuple[str, str, str],
    fanouts: tuple[int, ...] | list[int],
    batch_size: int = 128,
    time_attr: str = "time",
    temporal_strategy: str = "uniform",
    **kwargs,
):
    """PyG's ``LinkNeighborLoader`` over the target edges of ``data`` (a ``HeteroData``),
    time-respecting through ``time_attr`` (each seed edge's time bounds its neighbourhood).

    Only for users with pyg-lib or torch-sparse (see :func:`pyg_sampler_available`);
    graphseq's own training uses :func:`sample_subgraph`, which needs neither.
    """
    if not pyg_sampler_available():
        raise RuntimeError(
            "PyG's neighbour loaders need pyg-lib or torch-sparse, which are not installed; "
            "use graphseq.graph.sampler.sample_subgraph (pure torch) instead"
        )
    from torch_geometric.loader import LinkNeighborLoader

    store = data[edge_type]
    return LinkNeighborLoader(
        data,
        num_neighbors=list(fanouts),
        edge_label_index=(edge_type, store.edge_index),
        edge_label_time=store[time_attr] - 1,  # strictly before the seed event
        time_attr=time_attr,
        temporal_strategy=temporal_strategy,
        batch_size=batch_size,
        **kwargs,
    )
