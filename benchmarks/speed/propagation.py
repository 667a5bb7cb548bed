"""Propagation speed: LightGCNView vs a bare torch.sparse.mm chain vs PyG.

PyG is measured two ways: ``pyg_LightGCN`` (the model fed an ``edge_index``: it normalises
and scatters on every call) and ``pyg_LGConv_csr`` (``LGConv(normalize=False)`` given the same
precomputed normalised CSR as ours: PyG's layer used as fast as it goes without pyg-lib).

Random bipartite graph shaped like ML-100K (943 users, 1682 items, 100k interactions ->
200k directed edges), dim 64, 3 layers, CPU. Prints a table. The target: LightGCNView within
1.3x of the bare chain (``speed`` suite, variant ``propagation``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch_geometric.nn import LGConv
from torch_geometric.nn.models import LightGCN

from graphseq.nn import LightGCNView, bipartite_adjacency

USERS, ITEMS, INTERACTIONS, DIM, LAYERS = 943, 1682, 100_000, 64, 3  # ML-100K's shape
SEED = 0


def timeit(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list]:
    """Wall times (ms) of ``runs`` calls of each function, after ``warmup`` calls.

    The functions run interleaved (round-robin, rotating the order every
    round) so that load from other processes hits all of them alike; the i-th
    times of all functions come from the same round.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def bare_chain(adj: Tensor, x: Tensor, num_layers: int) -> Tensor:
    """Reference: mean of x, Ax, A^2x, ... with plain ``torch.sparse.mm``."""
    out, h = x, x
    for _ in range(num_layers):
        h = torch.sparse.mm(adj, h)
        out = out + h
    return out / (num_layers + 1)


def measure(threads: int = 2, runs: int = 30, warmup: int = 5, pyg_runs: int = 20) -> dict:
    """Time every case (``runs`` rounds, ``pyg_runs`` for the slow PyG model); the payload."""
    config = {"users": USERS, "items": ITEMS, "interactions": INTERACTIONS, "dim": DIM,
              "layers": LAYERS, "threads": threads, "runs": runs, "warmup": warmup,
              "pyg_runs": pyg_runs, "seed": SEED}  # fmt: skip
    torch.set_num_threads(threads)

    gen = torch.Generator().manual_seed(SEED)
    num_nodes = USERS + ITEMS
    src = torch.randint(0, USERS, (INTERACTIONS,), generator=gen)
    dst = torch.randint(0, ITEMS, (INTERACTIONS,), generator=gen)
    edge_index = torch.stack([torch.cat([src, dst + USERS]), torch.cat([dst + USERS, src])])

    build = lambda: bipartite_adjacency(src, dst, USERS, ITEMS)  # noqa: E731
    times = timeit({"adjacency_build": build}, runs, warmup)
    adj = bipartite_adjacency(src, dst, USERS, ITEMS)
    x = torch.randn(num_nodes, DIM, generator=gen, requires_grad=True)
    view = LightGCNView(LAYERS)
    pyg = LightGCN(num_nodes, DIM, LAYERS)
    with torch.no_grad():
        pyg.embedding.weight.copy_(x)

    # correctness: all three compute the same embeddings
    ref = bare_chain(adj, x, LAYERS)
    torch.testing.assert_close(view(x, adj), ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pyg.get_embedding(edge_index), ref, rtol=1e-4, atol=1e-5)

    def forward(fn: Callable[[], Tensor]) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad():
                fn()

        return step

    def fwd_bwd(fn: Callable[[], Tensor], leaf: Tensor) -> Callable[[], None]:
        def step() -> None:
            fn().sum().backward()
            leaf.grad = None

        return step

    ours = {
        "bare_spmm": lambda: bare_chain(adj, x, LAYERS),
        "LightGCNView": lambda: view(x, adj),
        "LightGCNView_symmetric": lambda: view(x, adj, symmetric=True),
    }
    conv = LGConv(normalize=False)

    def pyg_csr() -> Tensor:  # PyG's layer on our precomputed normalised CSR
        out, h = x, x
        for _ in range(LAYERS):
            h = conv(h, adj)
            out = out + h
        return out / (LAYERS + 1)

    torch.testing.assert_close(pyg_csr(), ref, rtol=1e-4, atol=1e-5)
    ours["pyg_LGConv_csr"] = pyg_csr
    pyg_fn = {"pyg_LightGCN": lambda: pyg.get_embedding(edge_index)}
    for mode in ("forward", "forward+backward"):
        for fns, n in ((ours, runs), (pyg_fn, pyg_runs)):
            wrapped = {
                f"{name}/{mode}": forward(fn)
                if mode == "forward"
                else fwd_bwd(fn, pyg.embedding.weight if name.startswith("pyg") else x)
                for name, fn in fns.items()
            }
            times.update(timeit(wrapped, n, warmup))
    results = {name: summary(t) for name, t in times.items()}

    # ratio of medians; for our cases also the median of per-round ratios
    # (same round, back to back: robust to load from other processes)
    ratios, paired = {}, {}
    for mode in ("forward", "forward+backward"):
        bare = results[f"bare_spmm/{mode}"]["median_ms"]
        for name in ("LightGCNView", "LightGCNView_symmetric", "pyg_LGConv_csr", "pyg_LightGCN"):
            key = f"{name}/bare ({mode})"
            ratios[key] = results[f"{name}/{mode}"]["median_ms"] / bare
            if name in ours:
                pairs = zip(times[f"{name}/{mode}"], times[f"bare_spmm/{mode}"])
                paired[key] = statistics.median(a / b for a, b in pairs)

    print(f"{'case':<42}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for name, r in results.items():
        print(f"{name:<42}{r['median_ms']:>11.2f}{r['min_ms']:>9.2f}{r['max_ms']:>9.2f}")
    print()
    print(f"{'ratio':<48}{'of medians':>11}{'paired':>9}")
    for name, ratio in ratios.items():
        pair = f"{paired[name]:>8.2f}x" if name in paired else f"{'-':>9}"
        print(f"{name:<48}{ratio:>10.2f}x{pair}")
    # the paired ratio (same round, back to back) is robust to load from other processes
    ok = all(paired[f"LightGCNView/bare ({m})"] <= 1.3 for m in ("forward", "forward+backward"))
    print(f"\nLightGCNView within 1.3x of bare SpMM: {'yes' if ok else 'NO'}")

    return {
        "config": config,
        "graph": {"nodes": num_nodes, "directed_edges": int(edge_index.size(1)), "nnz": adj._nnz()},
        "results": results,
        "ratios": ratios,
        "paired_ratios": paired,
        "within_1.3x": ok,
    }
