"""Build at scale: synthetic logs of 10M / 30M / 100M events → graph directory.

Targets: 100M events (~1.7M users, 200k items) from Parquet in < 10 min wall with peak RSS
< 12 GB on the 2-core / 24 GB machine, and a log-log slope <= 1.1 for time and memory over
10M / 30M / 100M. The same 10M log is also timed from CSV, from .csv.gz and through DuckDB
(``--format sql``), and, with a baseline checkout, through its older pandas path.

Every measurement is read + build + save in a fresh subprocess (``children.py columns``, run
with the measured checkout first on ``PYTHONPATH``): wall time (interpreter start and
imports included) and the child's peak RSS (the runner's). Logs are generated once into the
work directory (Parquet in bounded memory, not timed).

    git archive b9b6a25 | tar -x -C /tmp/graphseq-baseline   # the pre-change code (optional)
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import sys
from pathlib import Path

from benchmarks.runner import run

ROOT = Path(__file__).resolve().parents[2]
CHILDREN = Path(__file__).with_name("children.py")
TARGET_S, TARGET_RSS_MB, TARGET_SLOPE = 600.0, 12 * 1024.0, 1.1
NUM_ITEMS = 200_000
SIZES = [10_000_000, 30_000_000, 100_000_000]
SQL = "SELECT user_id, item_id, timestamp, behavior, value FROM read_csv('events.csv')"


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
    cmd = [sys.executable, CHILDREN, "columns", fmt, path, workdir / "graph", query]
    res = run(cmd, env={**os.environ, "PYTHONPATH": str(src)}, cwd=src)
    child = res.last_json()
    row = {"case": name, "format": fmt, "input": str(path), "code": str(src),
           "wall_s": res.wall_s, **child, "peak_rss_mb": res.peak_rss_mb}  # fmt: skip
    print(f"{name:<28}{child['events']:>13,}{res.wall_s:>9.1f} s{res.peak_rss_mb:>9.0f} MB",
          file=sys.stderr)  # fmt: skip
    return row


def _slope(rows: list[dict], key: str) -> float:
    """Least-squares slope of log(key) on log(events)."""
    xs = [math.log(r["events"]) for r in rows]
    ys = [math.log(r[key]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return num / sum((x - mx) ** 2 for x in xs)


def measure(
    workdir: Path,
    sizes: list[int] | None = None,
    compare_events: int = 10_000_000,
    baseline_src: Path | None = None,
) -> dict:
    """The format comparison at ``compare_events`` and the Parquet logs of ``sizes``."""
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    n = compare_events
    csv = _log_dir(workdir, n, "csv") / "events.csv"
    gz = _gzipped(csv)
    pq_small = _log_dir(workdir, n, "parquet") / "events.parquet"
    if baseline_src is not None:
        rows.append(_run("baseline pandas / csv", "csv", csv, workdir, baseline_src))
    rows.append(_run("csv", "csv", csv, workdir, ROOT))
    rows.append(_run("csv.gz", "csv", gz, workdir, ROOT))
    rows.append(_run("duckdb read_csv", "sql", csv.parent, workdir, ROOT, SQL))
    if baseline_src is not None:
        rows.append(_run("baseline pandas / parquet", "csv", pq_small, workdir, baseline_src))
    scale = []
    for size in sorted(sizes or SIZES):
        path = _log_dir(workdir, size, "parquet") / "events.parquet"
        scale.append(_run(f"parquet {size:,}", "csv", path, workdir, ROOT))
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
    return {"rows": rows, "summary": summary}
