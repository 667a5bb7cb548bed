"""Neighbour sampler speed: one vectorised call for every seed vs the same sampler per seed.

A random 50k-node graph with 300k timed edges, fan-outs (10, 5), ``seeds`` seed nodes (10,000);
the per-seed loop is timed on 50 seeds (what a Python loop over nodes would cost per seed).
"""

from __future__ import annotations

import time

import torch

from graphseq.graph.sampler import TemporalCSR, sample_subgraph

NODES, EDGES, FANOUTS, LOOP_SEEDS = 50_000, 300_000, (10, 5), 50


def measure(threads: int = 2, seeds: int = 10_000) -> dict:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(4)
    src, dst = (
        torch.randint(NODES, (EDGES,), generator=g),
        torch.randint(NODES, (EDGES,), generator=g),
    )
    t = torch.randint(0, 50, (EDGES,), generator=g)
    csr = TemporalCSR.from_edges(src, dst, NODES, t, undirected=True)
    nodes, ts = torch.randint(NODES, (seeds,), generator=g), torch.full((seeds,), 25)
    sample_subgraph(csr, nodes[:100], ts[:100], FANOUTS)  # warm-up
    t0 = time.perf_counter()
    sub = sample_subgraph(csr, nodes, ts, FANOUTS)
    vec = (time.perf_counter() - t0) / seeds
    t0 = time.perf_counter()
    for i in range(LOOP_SEEDS):
        sample_subgraph(csr, nodes[i : i + 1], ts[i : i + 1], FANOUTS)
    loop = (time.perf_counter() - t0) / LOOP_SEEDS
    print(f"vectorised {vec * 1e6:.1f} us/seed, per-seed loop {loop * 1e6:.1f} us/seed: "
          f"{loop / vec:.0f}x")  # fmt: skip
    return {"seeds": seeds, "sampled_edges": int(sub.edge_index.size(1)),
            "vectorised_us_per_seed": vec * 1e6, "loop_us_per_seed": loop * 1e6,
            "speedup": loop / vec, "threads": threads}  # fmt: skip
