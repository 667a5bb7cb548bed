"""Build speed: log → graph directory (read + build + save), MovieLens-100K and synthetic.

Targets:

* MovieLens-100K (RecBole atomic files) → graph directory in < 2 s (read + build + save;
  in-process, imports excluded, median of ``reps`` runs);
* 10M synthetic events → graph directory in < 60 s with peak RSS < 4 GB. The CSV is
  generated once into the work directory (cached, not timed); read + build + save then run
  in a fresh subprocess whose wall time (interpreter start and imports included) and peak
  RSS (the runner's) are the figures checked against the target.

Prints a table (stage, seconds, rows/s, peak RSS MB).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.runner import run
from benchmarks.scale.children import pipeline

CHILDREN = Path(__file__).with_name("children.py")
ML100K_TARGET_S = 2.0
SYNTH_TARGET_S = 60.0
SYNTH_TARGET_RSS_MB = 4096.0


def _row(stage: str, secs: float, rows: int | None, rss: float | None) -> dict:
    """One table row; ``rows_per_s`` is events / seconds of the stage."""
    return {
        "stage": stage,
        "seconds": round(secs, 4),
        "rows_per_s": round(rows / secs) if rows and secs > 0 else None,
        "peak_rss_mb": None if rss is None else round(rss, 1),
    }


def bench_ml100k(path: Path, workdir: Path, reps: int) -> dict:
    """In-process read/build/save of RecBole ML-100K, ``reps`` times; medians per stage."""
    runs = [pipeline("recbole", str(path), str(workdir / "graph-ml100k")) for _ in range(reps)]
    events = runs[0]["events"]
    med = {k: statistics.median(r["secs"][k] for r in runs) for k in runs[0]["secs"]}
    rows = [_row(f"ml100k/{k}", v, events, None) for k, v in med.items()]
    # this process, imports included
    rows[-1]["peak_rss_mb"] = round(runs[-1]["rss_mb"]["total"], 1)
    return {
        "events": events,
        "reps": reps,
        "runs_s": [r["secs"] for r in runs],
        "median_s": med,
        "rows": rows,
        "target_s": ML100K_TARGET_S,
        "pass": med["total"] < ML100K_TARGET_S,
    }


def _synthetic_dir(workdir: Path, events: int) -> Path:
    """The cached synthetic CSV for ``events`` (written once; generation is not timed)."""
    from data_builders.synthetic import spec_for_events
    from data_builders.synthetic_io import write_synthetic

    spec = spec_for_events(events)
    d = workdir / f"synthetic-{events}"
    meta = d / "spec.json"
    if meta.is_file() and json.loads(meta.read_text()).get("spec", {}).get("num_users") == (
        spec.num_users
    ):
        return d
    print(f"generating {events:,} synthetic events into {d} (once, not timed) ...", file=sys.stderr)
    t0 = time.perf_counter()
    write_synthetic(d, spec, progress=False)
    print(f"  generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return d


def bench_synthetic(workdir: Path, events: int) -> dict:
    """Read + build + save of the synthetic log in a fresh subprocess: wall time, peak RSS."""
    src = _synthetic_dir(workdir, events)
    res = run([sys.executable, CHILDREN, "pipeline", "synthetic", src, workdir / "graph-syn"])
    child, wall, peak = res.last_json(), res.wall_s, res.peak_rss_mb
    n, secs, rss = child["events"], child["secs"], child["rss_mb"]
    rows = [_row("synthetic/imports", child["imports"], None, None)]
    rows += [_row(f"synthetic/{k}", secs[k], n, rss[k]) for k in ("read", "build", "save")]
    rows += [_row("synthetic/total", secs["total"], n, rss["total"])]
    rows += [_row("synthetic/subprocess wall", wall, n, peak)]
    return {
        "events": n,
        "csv_mb": round((src / "events.csv").stat().st_size / 2**20, 1),
        "imports_s": child["imports"],
        "stages_s": secs,
        "stage_peak_rss_mb": rss,
        "subprocess_wall_s": wall,
        "peak_rss_mb": peak,
        "rows": rows,
        "target_s": SYNTH_TARGET_S,
        "target_rss_mb": SYNTH_TARGET_RSS_MB,
        "pass": wall < SYNTH_TARGET_S and peak < SYNTH_TARGET_RSS_MB,
    }


def _print_table(rows: list[dict]) -> None:
    print(f"{'stage':<28}{'seconds':>10}{'rows/s':>14}{'peak RSS MB':>14}")
    for r in rows:
        rps = "" if r["rows_per_s"] is None else f"{r['rows_per_s']:,}"
        rss = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        print(f"{r['stage']:<28}{r['seconds']:>10.3f}{rps:>14}{rss:>14}")


def measure(
    workdir: Path, events: int = 10_000_000, ml100k: Path | None = None, reps: int = 3
) -> dict:
    """ML-100K in-process (when given) and ``events`` synthetic events (0: skipped)."""
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    if ml100k is not None:
        results["ml100k"] = bench_ml100k(ml100k, workdir, reps)
    if events > 0:
        results["synthetic"] = bench_synthetic(workdir, events)
    _print_table([r for res in results.values() for r in res["rows"]])
    for name, res in results.items():
        print(f"{name}: {'PASS' if res['pass'] else 'FAIL'}")
    return {"config": {"events": events, "ml100k": ml100k and str(ml100k), "reps": reps},
            "results": results}  # fmt: skip
