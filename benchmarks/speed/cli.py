"""CLI latency: how long ``graphseq`` takes to answer, as a fresh process each time.

Times (median of ``repeats`` runs, wall clock, each a new ``python -m graphseq`` process):
``--help``, ``--version``, an argument error (``recommend -k 0``), ``recommend`` for one
known user with ``--json``, and, as the reference in the same run, ``python -c "import
torch"``. Then, in one process, where ``recommend``'s time goes: importing
``graphseq.recommend`` (torch, PyG, pandas), ``load_run`` and the first and second call.

Without a run it trains a ``graphseq`` run on the quickstart's synthetic data (1,000 users,
500 items; ``epochs`` epochs, default 2: scoring cost does not depend on how long it
trained) in the work directory, kept for the next call (the serve variant uses it too).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from benchmarks.runner import GRAPHSEQ, run

BREAKDOWN = """
import json, sys, time
t0 = time.perf_counter()
import graphseq.recommend as r
t1 = time.perf_counter()
run = r.load_run(sys.argv[1])
t2 = time.perf_counter()
run.recommend_dict([sys.argv[2]], k=10)
t3 = time.perf_counter()
run.recommend_dict([sys.argv[2]], k=10)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_run_s": t2 - t1, "first_call_s": t3 - t2,
                  "second_call_s": t4 - t3, "model": repr(run.model)}))
"""
SYNTHETIC_USER = "u1"  # a user of the quickstart's synthetic data


def _wall(cmd: list[str], repeats: int, ok: int = 0) -> dict[str, float]:
    times, peaks = [], []
    for _ in range(repeats):
        res = run(cmd, check=False)
        if res.returncode != ok:
            raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr_tail[-500:]}")
        times.append(res.wall_s)
        peaks.append(res.peak_rss_mb)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "peak_rss_mb": statistics.median(peaks)}  # fmt: skip


def synthetic_run(work: Path, epochs: int = 2) -> Path:
    """A ``graphseq`` run on the quickstart's synthetic data, trained once into ``work``."""
    out = work / f"synthetic-graphseq-{epochs}ep"
    if (out / "metrics.json").exists():
        return out
    from data_builders.build import build_graph
    from data_builders.store import save_graph
    from data_builders.synthetic_io import read_synthetic, write_synthetic
    from graphseq.quickstart import quickstart_configs, quickstart_spec
    from graphseq.training.trainer import Trainer

    data = write_synthetic(work / "synthetic-data", quickstart_spec(), progress=False)
    log = read_synthetic(data)
    g, ids, report = build_graph(log)
    save_graph(work / "synthetic-graph", g, ids, report, items=log.items, overwrite=True)
    cfg = quickstart_configs(str(work / "synthetic-graph"))["graphseq"].replace(epochs=epochs)
    Trainer(cfg, out, progress=False).fit()
    return out


def measure(run_dir: Path | None, work: Path, user: str | None = None, repeats: int = 5,
            epochs: int = 2) -> dict:  # fmt: skip
    """Every timing above, of ``run_dir`` (default: the synthetic run) for ``user``."""
    run_path = run_dir or synthetic_run(work, epochs)
    user = user or SYNTHETIC_USER
    rec = [*GRAPHSEQ, "recommend", "--run", str(run_path), "--users", user, "-k", "10", "--json"]
    res = {
        "help": _wall([*GRAPHSEQ, "--help"], repeats),
        "version": _wall([*GRAPHSEQ, "--version"], repeats),
        "argument_error": _wall(
            [*GRAPHSEQ, "recommend", "--run", "r", "-k", "0", "--users", "u"], repeats, ok=2
        ),
        "recommend_one_user": _wall(rec, repeats),
        # the floor in the same run: a process that imports torch and nothing else
        "import_torch": _wall([sys.executable, "-c", "import torch"], repeats),
    }
    res["recommend_breakdown"] = run([sys.executable, "-c", BREAKDOWN, run_path, user]).last_json()
    res["run"] = (
        str(run_dir) if run_dir else f"synthetic quickstart data, graphseq, {epochs} epochs"
    )
    for name, r in res.items():
        if isinstance(r, dict) and "median_s" in r:
            print(f"{name:20s} median {r['median_s']:.2f} s  (min {r['min_s']:.2f}, "
                  f"max {r['max_s']:.2f})")  # fmt: skip
    print(res["recommend_breakdown"])
    return res
