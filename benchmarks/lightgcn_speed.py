"""In-package LightGCN epoch time on MovieLens-100K at RecBole's settings, as a ratio.

Matched settings (as RecBole 1.2.1's reference run): batch 2048, one uniform BPR negative per positive, 2 layers,
dim 64, full propagation every step, the time-ordered leave-last-out training set (98,114
interactions, 48 steps). References: RecBole 1.2.1's own LightGCN run in the same invocation
(``--recbole-python``, a Python with RecBole installed; see ``recbole_lightgcn.py``), rounds
alternating with ours at the same thread count, and the 1.9 s/epoch RecBole took on a 2-core CPU.

    python benchmarks/lightgcn_speed.py --graph /tmp/bench/graph --data /tmp/gsdata \
        --recbole-python /tmp/rb/bin/python --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from graphseq.config import TrainConfig
from graphseq.train.trainer import Trainer

BENCHMARKS_RECBOLE_S = 1.9  # RecBole 1.2.1 LightGCN s/epoch, measured on a 2-core CPU


def _recbole_epoch(python: str, data: str, threads: int) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    script = Path(__file__).with_name("recbole_lightgcn.py")
    res = subprocess.run([python, str(script), "--data", data, "--epochs", "2"],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return json.loads(res.stdout.strip().splitlines()[-1])["seconds_per_epoch"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--graph", required=True, help="graphseq graph directory of ML-100K")
    p.add_argument("--data", help="directory holding ml-100k/ (for RecBole)")
    p.add_argument("--recbole-python", help="a Python with recbole==1.2.1 installed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, RecBole)")
    p.add_argument("--epochs", type=int, default=3, help="our epochs per round")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg = TrainConfig(
        model="lightgcn", graph=a.graph, batch_size=2048, gnn_layers=2, dim=64, lr=1e-3
    )
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "run", progress=False)
        tr._train_epoch(0)  # warm-up: adjacency and caches
        for r in range(a.rounds):
            for e in range(a.epochs):
                t0 = time.perf_counter()
                tr._train_epoch(r * a.epochs + e + 1)
                ours.append(time.perf_counter() - t0)
            if a.recbole_python:  # RecBole's first epoch of each process includes no set-up
                theirs += _recbole_epoch(a.recbole_python, a.data, a.threads)
    med = statistics.median(ours)
    out = {
        "threads": a.threads,
        "steps_per_epoch": len(tr._batches(1)),
        "seconds_per_epoch": ours,
        "median_s": med,
        "ratio_vs_benchmarks_md": med / BENCHMARKS_RECBOLE_S,
    }
    line = f"graphseq lightgcn: median {med:.3f} s/epoch = {med / BENCHMARKS_RECBOLE_S:.3f} x RecBole's reference {BENCHMARKS_RECBOLE_S} s"
    if theirs:
        ref = statistics.median(theirs)
        out |= {
            "recbole_seconds_per_epoch": theirs,
            "recbole_median_s": ref,
            "ratio_vs_recbole_same_run": med / ref,
        }
        line += f"; RecBole 1.2.1 here: {ref:.3f} s/epoch, ratio {med / ref:.3f}"
    print(line + " (target <= 0.25)")  # fmt: skip
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/lightgcn_speed.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
