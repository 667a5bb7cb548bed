"""Training-epoch time of models on a graph, this tree against a base tree, in one run.

Each (tree, model) gets one warm child process (:mod:`benchmarks.speed.epoch_child`, with
``PYTHONPATH`` set to its tree) that builds the trainer once and trains an epoch each time it
is told to. The parent runs one untimed warm-up epoch per child, then ``rounds`` rounds in
which each model's trees take turns (new, base, new, base, ...), so that load from other
jobs falls on both alike; every tree trains the same epochs (same seed, same batches). It
also asks each new-tree child for the fp32 matmul peak at the same thread count and, for
sasrec-like models, reports the achieved matmul FLOP rate of an epoch against it.

    python -m benchmarks speed --variants epoch --graph G --models sasrec graphseq \\
        --base /tmp/speed_base --rounds 3 --threads 2
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.envelope import ROOT

CHILD = Path(__file__).with_name("epoch_child.py")
WARMUP_EPOCH = 10_000  # the warm-up epoch's number (its batches are not a timed epoch's)


class _Child:
    """One warm trainer in a child process, spoken to one JSON line at a time."""

    def __init__(self, tree: Path, graph: Path, model: str, threads: int, steps: int,
                 sets: list[str]) -> None:  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, str(CHILD), "--graph", str(graph), "--model", model,
               "--threads", str(threads), "--steps", str(steps), "--set", *sets]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=tree)  # fmt: skip
        self.ready = self._read()
        if Path(self.ready["graphseq"]).resolve() != (tree / "graphseq").resolve():
            raise RuntimeError(f"the child imported {self.ready['graphseq']}, not {tree}")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"epoch child exited with {self.proc.wait()}")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def measure(
    graph: Path,
    models: list[str],
    base: Path | None = None,
    threads: int = 2,
    rounds: int = 3,
    steps: int = 0,
    sets: list[str] | None = None,
) -> dict:
    """Seconds of ``rounds`` epochs (their first ``steps`` batches when > 0) of each model in
    this tree and, with ``base``, in that tree, interleaved; medians and the ratio new/base."""
    trees = {"new": ROOT} | ({"base": Path(base).resolve()} if base else {})
    out: dict = {"graph": str(graph), "threads": threads, "rounds": rounds, "steps": steps,
                 "sets": sets or [], "trees": {k: str(v) for k, v in trees.items()},
                 "models": {}}  # fmt: skip
    for model in models:
        children = {
            k: _Child(t, graph, model, threads, steps, sets or []) for k, t in trees.items()
        }
        try:
            for c in children.values():
                c.ask(f"epoch {WARMUP_EPOCH}")
            runs: dict[str, list[dict]] = {k: [] for k in trees}
            for r in range(1, rounds + 1):
                for k, c in children.items():
                    runs[k].append(c.ask(f"epoch {r}"))
                    print(f"{model} {k} round {r}: {runs[k][-1]['seconds']:.2f} s", file=sys.stderr)
            peak = children["new"].ask("peak")["peak_flops"]
        finally:
            for c in children.values():
                c.close()
        res: dict = {"peak_fp32_flops": peak}
        for k, c in children.items():
            secs = [x["seconds"] for x in runs[k]]
            row = {"model": c.ready["model"], "steps_per_epoch": c.ready["steps"],
                   "seconds": secs, "median_s": statistics.median(secs),
                   "loss": [x["loss"] for x in runs[k]]}  # fmt: skip
            flops = [x["flops"] for x in runs[k]]
            if all(f is not None for f in flops):
                rate = statistics.median(f / s for f, s in zip(flops, secs))
                row |= {"matmul_flops_per_epoch": statistics.median(flops),
                        "achieved_flops": rate, "share_of_peak": rate / peak}  # fmt: skip
            res[k] = row
        if "base" in res:
            res["ratio_new_over_base"] = res["new"]["median_s"] / res["base"]["median_s"]
        out["models"][model] = res
        line = f"{model}: new {res['new']['median_s']:.2f} s/epoch"
        if "base" in res:
            line += f", base {res['base']['median_s']:.2f}, ratio {res['ratio_new_over_base']:.3f}"
        print(line, file=sys.stderr)
    return out
