"""One tree's side of the ``epoch`` benchmark: a warm trainer that runs epochs on command.

Run by :mod:`benchmarks.speed.epoch` as ``python epoch_child.py --graph G --model M ...``
with ``PYTHONPATH`` set to the tree being timed (this file is read from the current tree, so
it uses only what every tree has: ``TrainConfig``, ``Trainer`` and its ``_train_epoch``).
It prints one JSON line when ready, then reads commands from stdin, one a line, and answers
each with one JSON line:

- ``epoch E``: train epoch ``E`` (its first ``--steps`` batches when > 0) → seconds, mean
  loss and the epoch's matmul FLOPs (sasrec-like models);
- ``peak``: the best fp32 matmul rate at this thread count (a 2048³ micro-benchmark).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PEAK_N = 2048  # square matmul of the peak micro-benchmark
PEAK_REPEATS = 10  # its best of


def transformer_step_flops(
    batch: int, length: int, rows: int, items: int, dim: int, layers: int
) -> float:
    """Matmul FLOPs of one training step of a causal-Transformer sequence model with a full
    softmax, forward and backward (backward = 2 × forward for every matmul): per layer the
    Q/K/V and output projections (4 d × d), the point-wise FFN of width d (2 d × d) over
    ``batch × length`` positions, attention scores and their weighted sum (2 L × d per
    position); the logits of ``rows`` used positions over ``items`` items."""
    positions = batch * length
    per_layer = 2 * positions * dim * dim * 6 + 2 * 2 * batch * length * length * dim
    return 3.0 * (layers * per_layer + 2 * rows * items * dim)


def _epoch_flops(tr, epoch: int) -> float | None:
    """Matmul FLOPs of the batches of ``epoch`` (sasrec-like models: a Transformer and the
    full softmax; None for others)."""
    cfg = tr.cfg
    if cfg.sequence != "transformer" or tr.model.train_mode != "sequences" or cfg.loss != "ce":
        return None
    total = 0.0
    for step, idx in enumerate(tr._batches(epoch)):
        inp, _, use = tr.builder.make(idx, epoch, step).seq.shift()
        B, L = inp.item.shape
        total += transformer_step_flops(B, L, int(use.sum()), tr.ev.num_items, cfg.dim,
                                        cfg.num_layers)  # fmt: skip
    return total


def _peak() -> float:
    import torch

    a, b = torch.randn(PEAK_N, PEAK_N), torch.randn(PEAK_N, PEAK_N)
    c = torch.empty(PEAK_N, PEAK_N)
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2 * PEAK_N**3 / best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--graph", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[])
    a = p.parse_args()
    import torch

    import graphseq
    from graphseq.config import load_config
    from graphseq.training.trainer import Trainer

    torch.set_num_threads(a.threads)
    cfg = load_config(None, [f"model={a.model}", f"graph={a.graph}", *a.set])
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, Path(tmp) / "run", progress=False)
        if a.steps:
            full = tr._batches
            tr._batches = lambda epoch: full(epoch)[: a.steps]
        ready = {"ready": True, "graphseq": str(Path(graphseq.__file__).parent),
                 "model": repr(tr.model), "steps": len(tr._batches(1))}  # fmt: skip
        print(json.dumps(ready), flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "epoch":
                epoch = int(cmd[1])
                flops = _epoch_flops(tr, epoch)  # before the clock starts
                t0 = time.perf_counter()
                loss = tr._train_epoch(epoch)
                out = {"seconds": time.perf_counter() - t0, "loss": loss, "flops": flops}
            elif cmd[0] == "peak":
                out = {"peak_flops": _peak()}
            else:
                out = {"error": f"unknown command {cmd[0]!r}"}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
