"""CLI latency: how long ``graphseq`` takes to answer, as a fresh process each time.

Times (median of ``--repeats`` runs, wall clock, each a new ``python -m graphseq`` process):
``--help``, ``--version``, an argument error (``recommend -k 0``), ``recommend`` for one
known user with ``--json``, and, as the reference in the same run, ``python -c "import torch"``. Then, in one process, where ``recommend``'s time goes: importing
``graphseq.recommend`` (torch, PyG, pandas), ``load_run`` and the first and second call.

Without ``--run`` it trains a ``graphseq`` run on the quickstart's synthetic data (1,000 users,
500 items; ``--epochs`` epochs, default 2: scoring cost does not depend on how long it
trained) in a temporary directory. Writes ``benchmarks/results/cli_latency.json``.

    python benchmarks/cli_latency.py
    python benchmarks/cli_latency.py --run runs/gs --user 196 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "cli_latency.json"

BREAKDOWN = """
import json, sys, time
t0 = time.perf_counter()
import graphseq.recommend as r
t1 = time.perf_counter()
run = r.load_run(sys.argv[1])
t2 = time.perf_counter()
run.recommend([sys.argv[2]], k=10)
t3 = time.perf_counter()
run.recommend([sys.argv[2]], k=10)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_run_s": t2 - t1, "first_call_s": t3 - t2,
                  "second_call_s": t4 - t3, "model": repr(run.model)}))
"""


def _wall(cmd: list[str], repeats: int, ok: int = 0) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if res.returncode != ok:
            raise RuntimeError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr[-500:]}")
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def _make_run(workdir: Path, epochs: int) -> Path:
    from data_builders.build import build_graph
    from data_builders.readers.synthetic import read_synthetic, write_synthetic
    from data_builders.store import save_graph
    from graphseq.quickstart import quickstart_configs, quickstart_spec
    from graphseq.train.trainer import Trainer

    data = write_synthetic(workdir / "data", quickstart_spec(), progress=False)
    log = read_synthetic(data)
    g, ids, report = build_graph(log)
    save_graph(workdir / "graph", g, ids, report, items=log.items)
    cfg = quickstart_configs(str(workdir / "graph"))["graphseq"].replace(epochs=epochs)
    Trainer(cfg, workdir / "gs", progress=False).fit()
    return workdir / "gs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", help="run directory (default: train one on synthetic data)")
    p.add_argument("--user", default="u1", help="raw user id to recommend for")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2, help="epochs of the run trained here")
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(a.run) if a.run else _make_run(Path(tmp), a.epochs)
        cli = [sys.executable, "-m", "graphseq"]
        rec = [*cli, "recommend", "--run", str(run), "--users", a.user, "-k", "10", "--json"]
        res = {
            "help": _wall([*cli, "--help"], a.repeats),
            "version": _wall([*cli, "--version"], a.repeats),
            "argument_error": _wall(
                [*cli, "recommend", "--run", "r", "-k", "0", "--users", "u"], a.repeats, ok=2
            ),
            "recommend_one_user": _wall(rec, a.repeats),
            # the floor in the same run: a process that imports torch and nothing else
            "import_torch": _wall([sys.executable, "-c", "import torch"], a.repeats),
        }
        out = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(run), a.user], capture_output=True, text=True
        )
        if out.returncode:
            raise RuntimeError(out.stderr[-500:])
        res["recommend_breakdown"] = json.loads(out.stdout)
    res["run"] = a.run or f"synthetic quickstart data, graphseq, {a.epochs} epochs"
    res["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    for name, r in res.items():
        if isinstance(r, dict) and "median_s" in r:
            print(
                f"{name:20s} median {r['median_s']:.2f} s  (min {r['min_s']:.2f}, max {r['max_s']:.2f})"
            )
    print(json.dumps(res["recommend_breakdown"]))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
