"""Build at scale: synthetic logs of 10M / 30M / 100M events → graph directory.

Targets: 100M events (~1.7M users, 200k items) from Parquet in < 10 min wall with peak RSS
< 12 GB on the 2-core / 24 GB machine, and a log-log slope <= 1.1 for time and memory over
10M / 30M / 100M. The same 10M log is also timed from CSV, from .csv.gz and through DuckDB
(``--format sql``), and, with ``--baseline-src``, through an older checkout's pandas path.

Every measurement is read + build + save in a fresh subprocess: wall time (interpreter start
and imports included) and the child's own peak RSS (``ru_maxrss``). Logs are generated once
into ``--workdir`` (Parquet in bounded memory, not timed). Results go to
``benchmarks/results/build_scale.json``.

    git archive b9b6a25 | tar -x -C /tmp/graphseq-baseline   # the pre-change code (optional)
    python benchmarks/build_scale.py --workdir /tmp/gs-scale --baseline-src /tmp/graphseq-baseline
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "build_scale.json"
TARGET_S, TARGET_RSS_MB, TARGET_SLOPE = 600.0, 12 * 1024.0, 1.1
NUM_ITEMS = 200_000
SCHEMA = {
    "user": "user_id",
    "item": "item_id",
    "timestamp": "timestamp",
    "behavior": "behavior",
    "value": "value",
    "targets": ["buy"],
}
SQL = "SELECT user_id, item_id, timestamp, behavior, value FROM read_csv('events.csv')"


def _child(fmt: str, path: str, out: str, query: str) -> None:
    """Subprocess entry: read + build + save once; one JSON line on stdout."""
    t0 = time.perf_counter()
    from data_builders.build import build_graph
    from data_builders.readers import read_log
    from data_builders.schema import Schema
    from data_builders.store import save_graph

    t1 = time.perf_counter()
    schema = Schema.from_dict(SCHEMA)
    log = read_log(fmt, path, schema, query=query) if query else read_log(fmt, path, schema)
    t2 = time.perf_counter()
    data, ids, report = build_graph(log)
    t3 = time.perf_counter()
    save_graph(out, data, ids, report, items=log.items, overwrite=True)
    t4 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    secs = {"imports": t1 - t0, "read": t2 - t1, "build": t3 - t2, "save": t4 - t3}
    print(json.dumps({"secs": secs, "peak_rss_mb": rss, "events": report["events"]}))


def _log_dir(workdir: Path, events: int, fmt: str) -> Path:
    """The cached synthetic log (``parquet`` or ``csv``) of ~``events`` events."""
    from data_builders.synthetic import spec_for_events
    from data_builders.synthetic_io import write_synthetic

    spec = spec_for_events(events, num_items=NUM_ITEMS)
    d = workdir / f"{fmt}-{events}"
    meta = d / "spec.json"
    if meta.is_file() and json.loads(meta.read_text())["spec"]["num_users"] == spec.num_users:
        return d
    print(f"generating {events:,} events as {fmt} into {d} (once, not timed)", file=sys.stderr)
    write_synthetic(d, spec, progress=False, format=fmt)
    return d


def _gzipped(csv: Path) -> Path:
    out = csv.with_name(csv.name + ".gz")
    if not out.is_file():
        with open(csv, "rb") as src, gzip.open(out, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 16 * 2**20)
    return out


def _run(name: str, fmt: str, path: Path, workdir: Path, src: Path, query: str = "") -> dict:
    """One measurement in a fresh subprocess with ``src`` first on the path."""
    cmd = [sys.executable, __file__, "--child", fmt, str(path), str(workdir / "graph"), query]
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{name}: {' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    child = json.loads(res.stdout.strip().splitlines()[-1])
    row = {"case": name, "format": fmt, "input": str(path), "code": str(src), "wall_s": wall}
    row.update(child)
    print(
        f"{name:<28}{child['events']:>13,}{wall:>9.1f} s{child['peak_rss_mb']:>9.0f} MB",
        file=sys.stderr,
    )
    return row


def _slope(rows: list[dict], key: str) -> float:
    """Least-squares slope of log(key) on log(events)."""
    xs = [math.log(r["events"]) for r in rows]
    ys = [math.log(r[key]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return num / sum((x - mx) ** 2 for x in xs)


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/graphseq-build-scale"))
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 30_000_000, 100_000_000])
    p.add_argument("--compare-events", type=int, default=10_000_000, help="CSV/gz/DuckDB log")
    p.add_argument("--baseline-src", type=Path, help="older checkout: its pandas path, timed too")
    p.add_argument("--json-out", type=Path, default=RESULTS)
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        _child(*a.child)
        return None
    a.workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    n = a.compare_events
    csv = _log_dir(a.workdir, n, "csv") / "events.csv"
    gz = _gzipped(csv)
    pq_small = _log_dir(a.workdir, n, "parquet") / "events.parquet"
    if a.baseline_src is not None:
        rows.append(_run("baseline pandas / csv", "csv", csv, a.workdir, a.baseline_src))
    rows.append(_run("csv", "csv", csv, a.workdir, ROOT))
    rows.append(_run("csv.gz", "csv", gz, a.workdir, ROOT))
    rows.append(_run("duckdb read_csv", "sql", csv.parent, a.workdir, ROOT, SQL))
    if a.baseline_src is not None:
        rows.append(_run("baseline pandas / parquet", "csv", pq_small, a.workdir, a.baseline_src))
    scale = []
    for size in sorted(a.sizes):
        path = _log_dir(a.workdir, size, "parquet") / "events.parquet"
        scale.append(_run(f"parquet {size:,}", "csv", path, a.workdir, ROOT))
    for r in scale:
        r["pipeline_s"] = r["secs"]["read"] + r["secs"]["build"] + r["secs"]["save"]
    rows += scale
    largest = scale[-1]
    summary = {
        "slope_wall": _slope(scale, "wall_s") if len(scale) > 1 else None,
        "slope_read_build_save": _slope(scale, "pipeline_s") if len(scale) > 1 else None,
        "slope_peak_rss": _slope(scale, "peak_rss_mb") if len(scale) > 1 else None,
        "largest": {k: largest[k] for k in ("events", "wall_s", "peak_rss_mb")},
        "targets": {"wall_s": TARGET_S, "peak_rss_mb": TARGET_RSS_MB, "slope": TARGET_SLOPE},
    }
    summary["pass"] = (
        largest["wall_s"] < TARGET_S
        and largest["peak_rss_mb"] < TARGET_RSS_MB
        and all(summary[k] is None or summary[k] <= TARGET_SLOPE for k in summary if "slope" in k)
    )
    print(json.dumps(summary, indent=2))
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "env": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_end": os.getloadavg()[0],
        },
        "rows": rows,
        "summary": summary,
    }
    a.json_out.parent.mkdir(parents=True, exist_ok=True)
    a.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
