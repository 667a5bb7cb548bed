"""In-package LightGCN epoch time on MovieLens-100K at RecBole's settings, as a ratio.

Matched settings (as RecBole 1.2.1's reference run): batch 2048, one uniform BPR negative
per positive, 2 layers, dim 64, full propagation every step, the time-ordered leave-last-out
training set (98,114 interactions, 48 steps). References: RecBole 1.2.1's own LightGCN run
in the same invocation (``recbole_python``, a Python with RecBole installed; see
``recbole_lightgcn.py``), rounds alternating with ours at the same thread count, and the
1.9 s/epoch RecBole took on a 2-core CPU.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.runner import build, run, threads_env

BENCHMARKS_RECBOLE_S = 1.9  # RecBole 1.2.1 LightGCN s/epoch, measured on a 2-core CPU
RECBOLE = Path(__file__).with_name("recbole_lightgcn.py")


def _recbole_epoch(python: str, data: Path, threads: int) -> list[float]:
    """RecBole's epochs in a fresh process (``data``: the folder holding ``ml-100k/``)."""
    res = run([python, RECBOLE, "--data", data, "--epochs", "2"], env=threads_env(threads))
    return res.last_json()["seconds_per_epoch"]


def measure(
    ml100k: Path,
    work: Path,
    threads: int = 2,
    rounds: int = 3,
    epochs: int = 3,
    recbole_python: str | None = None,
) -> dict:
    """``rounds`` of ``epochs`` of ours, each round followed by RecBole's (when given)."""
    import torch

    from graphseq.config import TrainConfig
    from graphseq.training.trainer import Trainer

    torch.set_num_threads(threads)
    graph = build(work / "graph-ml100k", "recbole", ml100k)
    cfg = TrainConfig(
        model="lightgcn", graph=str(graph), batch_size=2048, gnn_layers=2, dim=64, lr=1e-3
    )
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "run", progress=False)
        tr._train_epoch(0)  # warm-up: adjacency and caches
        for r in range(rounds):
            for e in range(epochs):
                t0 = time.perf_counter()
                tr._train_epoch(r * epochs + e + 1)
                ours.append(time.perf_counter() - t0)
            if recbole_python:  # RecBole's first epoch of each process includes no set-up
                theirs += _recbole_epoch(recbole_python, Path(ml100k).parent, threads)
    med = statistics.median(ours)
    out = {
        "threads": threads,
        "steps_per_epoch": len(tr._batches(1)),
        "seconds_per_epoch": ours,
        "median_s": med,
        "ratio_vs_benchmarks_md": med / BENCHMARKS_RECBOLE_S,
    }
    line = (f"graphseq lightgcn: median {med:.3f} s/epoch = {med / BENCHMARKS_RECBOLE_S:.3f} x "
            f"RecBole's reference {BENCHMARKS_RECBOLE_S} s")  # fmt: skip
    if theirs:
        ref = statistics.median(theirs)
        out |= {
            "recbole_seconds_per_epoch": theirs,
            "recbole_median_s": ref,
            "ratio_vs_recbole_same_run": med / ref,
        }
        line += f"; RecBole 1.2.1 here: {ref:.3f} s/epoch, ratio {med / ref:.3f}"
    print(line + " (target <= 0.25)")
    return out
