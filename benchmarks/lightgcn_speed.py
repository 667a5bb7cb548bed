"""In-package LightGCN epoch time on MovieLens-100K at RecBole's settings.

Matched settings (BENCHMARKS.md): batch 2048, one uniform BPR negative per positive, 2 layers,
dim 64, full propagation every step. RecBole 1.2.1 is not installable on this stack without
patches, so its 1.9 s/epoch (same 2-core machine kind, BENCHMARKS.md) is the reference; the
propagation benchmark (``propagation.py``) gives the in-run ratio against bare SpMM.

    python benchmarks/lightgcn_speed.py --graph /tmp/bench/graph --epochs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from graphseq.config import TrainConfig
from graphseq.train.trainer import Trainer

RECBOLE_LIGHTGCN_S_PER_EPOCH = 1.9  # BENCHMARKS.md, RecBole 1.2.1 on a 2-core CPU


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", required=True)
    p.add_argument("--epochs", type=int, default=5)
    a = p.parse_args()
    cfg = TrainConfig(
        model="lightgcn", graph=a.graph, batch_size=2048, gnn_layers=2, dim=64, lr=1e-3
    )
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "run", progress=False)
        times = []
        for e in range(a.epochs):
            t0 = time.perf_counter()
            tr._train_epoch(e + 1)
            times.append(time.perf_counter() - t0)
    steps = len(tr._batches(1))
    med = statistics.median(times)
    out = {
        "threads": torch.get_num_threads(),
        "steps_per_epoch": steps,
        "seconds_per_epoch": times,
        "median_s": med,
        "recbole_reference_s": RECBOLE_LIGHTGCN_S_PER_EPOCH,
        "ratio_vs_recbole": med / RECBOLE_LIGHTGCN_S_PER_EPOCH,
    }
    print(f"lightgcn: {steps} steps/epoch, median {med:.3f} s/epoch "
          f"= {out['ratio_vs_recbole']:.3f} x RecBole's {RECBOLE_LIGHTGCN_S_PER_EPOCH} s (target <= 0.25)")  # fmt: skip
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/lightgcn_speed.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
