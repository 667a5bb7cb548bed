"""Default ``graphseq`` on a ~1M-event interactions-only log: whole-run wall time.

Issue 3 asks the default configuration to cope with an interactions-only file of ~1M events
(no item file, no KG) in under ~25 minutes on 2 cores. The log is synthetic
(``data_builders/readers/synthetic.py``) and shaped like MovieLens-1M: 6,040 users, 3,706
items, ~165 events per user, written as a plain ``user,item,timestamp`` CSV and built with
``graphseq build --format csv``. Then ``graphseq train --model graphseq`` with no config;
the wall time covers everything the command does (loading, training, early stopping, the
post-training validation grid, test, writing the run).

    python benchmarks/large_log.py --work /tmp/large_log
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def make_log(work: Path, seed: int) -> Path:
    from data_builders.readers.synthetic import SyntheticSpec, generate

    csv = work / "events.csv"
    if not csv.exists():
        spec = SyntheticSpec(num_users=6040, num_items=3706, events_per_user=165.0, seed=seed)
        generate(spec).events[["user", "item", "timestamp"]].to_csv(csv, index=False)
    schema = work / "schema.yaml"
    schema.write_text("events: events.csv\nuser: user\nitem: item\ntimestamp: timestamp\n")
    return schema


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/large_log")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic log")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    schema, graph, run = make_log(work, a.seed), work / "graph", work / "run"
    gs = [sys.executable, "-m", "graphseq"]
    if not graph.exists():
        subprocess.run([*gs, "build", "--format", "csv", "--input", str(work / "events.csv"),
                        "--schema", str(schema), "--out", str(graph)], check=True)  # fmt: skip
    if run.exists():
        sys.exit(f"{run} exists: remove it to time a fresh run")
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    t0 = time.perf_counter()
    subprocess.run(
        [*gs, "train", "--graph", str(graph), "--model", "graphseq", "--out", str(run)],
        check=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    m = json.loads((run / "metrics.json").read_text())
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    curve = {r["epoch"]: round(r["valid_NDCG@10"], 4) for r in log if "valid_NDCG@10" in r}
    to_best = sum(r["seconds"] for r in log if r["epoch"] <= m["best_epoch"])
    out = {
        "command": "python benchmarks/large_log.py --work " + str(work),
        "events": json.loads((graph / "report.json").read_text()).get("events"),
        "threads": a.threads,
        "wall_s": round(wall, 1),
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "seconds_per_epoch": m["seconds_per_epoch"],
        "seconds_to_best_epoch": round(to_best, 1),
        "valid_NDCG@10_by_epoch": curve,
        "test_NDCG@10": m["test"]["NDCG@10"],
        "item_graph": m.get("item_graph", {}).get("weight"),
    }
    print(json.dumps(out, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "large_log.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
