"""Neighbour sampler speed: one vectorised call for every seed vs the same sampler per seed.

A random 50k-node graph with 300k timed edges, fan-outs (10, 5), 10,000 seeds; the per-seed
loop is timed on 50 seeds (what a Python loop over nodes would cost per seed). Writes
``benchmarks/results/sampler_speed.json``.

    python benchmarks/sampler_speed.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from graphseq.graph.sampler import TemporalCSR, sample_subgraph

OUT = Path(__file__).resolve().parent / "results" / "sampler_speed.json"


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", type=int, default=10_000)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(4)
    n, e = 50_000, 300_000
    src, dst = torch.randint(n, (e,), generator=g), torch.randint(n, (e,), generator=g)
    t = torch.randint(0, 50, (e,), generator=g)
    csr = TemporalCSR.from_edges(src, dst, n, t, undirected=True)
    seeds, ts = torch.randint(n, (a.seeds,), generator=g), torch.full((a.seeds,), 25)
    sample_subgraph(csr, seeds[:100], ts[:100], (10, 5))  # warm-up
    t0 = time.perf_counter()
    sub = sample_subgraph(csr, seeds, ts, (10, 5))
    vec = (time.perf_counter() - t0) / a.seeds
    t0 = time.perf_counter()
    for i in range(50):
        sample_subgraph(csr, seeds[i : i + 1], ts[i : i + 1], (10, 5))
    loop = (time.perf_counter() - t0) / 50
    out = {"seeds": a.seeds, "sampled_edges": int(sub.edge_index.size(1)),
           "vectorised_us_per_seed": vec * 1e6, "loop_us_per_seed": loop * 1e6,
           "speedup": loop / vec, "threads": a.threads}  # fmt: skip
    print(
        f"vectorised {vec * 1e6:.1f} us/seed, per-seed loop {loop * 1e6:.1f} us/seed: {loop / vec:.0f}x"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
