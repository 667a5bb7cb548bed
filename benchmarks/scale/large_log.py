"""Default ``graphseq`` on a ~1M-event interactions-only log: whole-run wall time.

Issue 3 asks the default configuration to cope with an interactions-only file of ~1M events
(no item file, no KG) in under ~25 minutes on 2 cores. The log is synthetic
(``data_builders.synthetic``) and shaped like MovieLens-1M: 6,040 users, 3,706 items, ~165
events per user, written as a plain ``user,item,timestamp`` CSV and built with ``graphseq
build --format csv``. Then ``graphseq train --model graphseq`` with no config; the wall time
and peak RSS (the runner's) cover everything the command does (loading, training, early
stopping, the post-training validation grid, test, writing the run).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.runner import GRAPHSEQ, build, run, threads_env

SHAPE = {"num_users": 6040, "num_items": 3706, "events_per_user": 165.0}  # ML-1M's


def make_log(work: Path, seed: int, shape: dict = SHAPE) -> Path:
    """The CSV and its schema (written once); returns the schema file."""
    from data_builders.synthetic import SyntheticSpec, generate

    csv = work / "events.csv"
    if not csv.exists():
        spec = SyntheticSpec(**shape, seed=seed)
        generate(spec).events[["user", "item", "timestamp"]].to_csv(csv, index=False)
    schema = work / "schema.yaml"
    schema.write_text("events: events.csv\nuser: user\nitem: item\ntimestamp: timestamp\n")
    return schema


def measure(work: Path, seed: int = 1, threads: int = 2, shape: dict = SHAPE) -> dict:
    """Build the log's graph (not timed), then time one fresh ``graphseq train``."""
    work.mkdir(parents=True, exist_ok=True)
    schema = make_log(work, seed, shape)
    graph = build(work / "graph", "csv", work / "events.csv", schema)
    out = work / "run"
    if out.exists():
        raise RuntimeError(f"{out} exists: remove it to time a fresh run")
    res = run([*GRAPHSEQ, "train", "--graph", graph, "--model", "graphseq", "--out", out],
              env=threads_env(threads))  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    curve = {r["epoch"]: round(r["valid_NDCG@10"], 4) for r in log if "valid_NDCG@10" in r}
    to_best = sum(r["seconds"] for r in log if r["epoch"] <= m["best_epoch"])
    result = {
        "events": json.loads((graph / "report.json").read_text()).get("events"),
        "seed": seed,
        "threads": threads,
        "wall_s": round(res.wall_s, 1),
        "peak_rss_mb": round(res.peak_rss_mb, 1),
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "seconds_per_epoch": m["seconds_per_epoch"],
        "seconds_to_best_epoch": round(to_best, 1),
        "valid_NDCG@10_by_epoch": curve,
        "test_NDCG@10": m["test"]["NDCG@10"],
        "item_graph": m.get("item_graph", {}).get("weight"),
    }
    print(json.dumps(result, indent=2))
    return result
