"""LightGCN propagation estimated on a sampled, time-respecting tree (mini-batch mode)."""

from __future__ import annotations

from torch import Tensor

from graphseq.graph.sampler import SampledSubgraph


def tree_lightgcn(
    x: Tensor, sub: SampledSubgraph, num_layers: int, keep: Tensor | None = None
) -> Tensor:
    """``mean_{l=0..L} (D^-1/2 A D^-1/2)^l x`` at the seeds of ``sub``, estimated from its
    sampled edges (https://arxiv.org/abs/2002.02126; sampling as in GraphSAGE).

    Each sampled edge ``c -> p`` carries ``weight / sqrt(deg_p deg_c)``, with the degrees
    counted over the edges before the root seed's time; ``weight`` (inverse inclusion
    probability) makes every layer an unbiased estimate of the full-graph sum, exact when
    every fan-out is at least the degree. ``keep`` (M,) bool drops edges (e.g. the batch
    users' own edges, edge dropout) without renormalising.

    Args:
        x: (N, d) layer-0 features of every occurrence in ``sub``.
        sub: a tree from :func:`graphseq.graph.sampler.sample_subgraph` with ``num_layers`` hops.
        num_layers: propagation depth L.
    Shapes: x (N, d) → (S, d) for the S seeds.
    """
    if len(sub.hop_ptr) - 2 < num_layers:
        raise ValueError(f"need {num_layers} sampled hops, got {len(sub.hop_ptr) - 2}")
    c, p = sub.edge_index
    deg = sub.degree.to(x.dtype).clamp(min=1)
    coef = sub.weight.to(x) * (deg[c] * deg[p]).rsqrt()  # (M,)
    if keep is not None:
        coef = coef * keep.to(x)
    hop = sub.hop_ptr.tolist()
    s = hop[1]
    out, h = x[:s], x
    for layer in range(1, num_layers + 1):
        # layer l is only needed on levels <= L - l: a prefix of the nodes and of the edges
        # (edges are stored hop by hop, one per child occurrence)
        n, m = hop[num_layers - layer + 1], hop[num_layers - layer + 2] - s
        h = x.new_zeros(n, x.size(1)).index_add(0, p[:m], coef[:m, None] * h[c[:m]])  # (n, d)
        out = out + h[:s]
    return out / (num_layers + 1)
