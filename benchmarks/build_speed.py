"""Build speed: log → graph directory (read + build + save), MovieLens-100K and synthetic.

Targets:

* MovieLens-100K (RecBole atomic files) → graph directory in < 2 s (read + build + save;
  in-process, imports excluded, median of ``--reps`` runs);
* 10M synthetic events → graph directory in < 60 s with peak RSS < 4 GB. The CSV is
  generated once into ``--workdir`` (cached, not timed); read + build + save then run in a
  fresh subprocess whose wall time (interpreter start and imports included) and peak RSS
  (``getrusage(RUSAGE_CHILDREN).ru_maxrss``) are the figures checked against the target.

Prints a table (stage, seconds, rows/s, peak RSS MB) and writes the JSON results.

    bash /work/shared/datasets/get_ml100k.sh /tmp/gsdata
    python benchmarks/build_speed.py --ml100k /tmp/gsdata/ml-100k --workdir /tmp/gs-build-speed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "build_speed.json"
ML100K_TARGET_S = 2.0
SYNTH_TARGET_S = 60.0
SYNTH_TARGET_RSS_MB = 4096.0


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    kb = resource.getrusage(who).ru_maxrss
    return kb / 2**20 if sys.platform == "darwin" else kb / 1024


def _pipeline(fmt: str, path: Path, out: Path) -> tuple[dict[str, float], dict[str, float], int]:
    """Read, build, save once: (seconds per stage, peak RSS MB after each stage, events)."""
    from data_builders.build import BuildOptions, build_graph
    from data_builders.readers import read_log
    from data_builders.store import save_graph

    secs, rss = {}, {}
    t0 = time.perf_counter()
    log = read_log(fmt, path)
    t1 = time.perf_counter()
    secs["read"], rss["read"] = t1 - t0, _rss_mb()
    data, id_maps, report = build_graph(log, BuildOptions())
    t2 = time.perf_counter()
    secs["build"], rss["build"] = t2 - t1, _rss_mb()
    save_graph(out, data, id_maps, report, items=log.items, overwrite=True)
    t3 = time.perf_counter()
    secs["save"], rss["save"] = t3 - t2, _rss_mb()
    secs["total"], rss["total"] = t3 - t0, _rss_mb()
    return secs, rss, int(report["events"])


def _child(fmt: str, path: str, out: str) -> None:
    """Subprocess entry: time imports and the pipeline, print one JSON line on stdout."""
    t0 = time.perf_counter()
    import data_builders.build  # noqa: F401  (torch, torch_geometric, pandas)
    import data_builders.readers  # noqa: F401
    import data_builders.store  # noqa: F401

    imports = time.perf_counter() - t0
    secs, rss, events = _pipeline(fmt, Path(path), Path(out))
    print(json.dumps({"imports": imports, "secs": secs, "rss_mb": rss, "events": events}))


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
    import data_builders.build  # noqa: F401  (imports are not part of the figure)
    import data_builders.readers  # noqa: F401
    import data_builders.store  # noqa: F401

    runs = [_pipeline("recbole", path, workdir / "graph-ml100k") for _ in range(reps)]
    events = runs[0][2]
    med = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
    rows = [_row(f"ml100k/{k}", v, events, None) for k, v in med.items()]
    rows[-1]["peak_rss_mb"] = round(_rss_mb(), 1)  # this process, imports included
    return {
        "events": events,
        "reps": reps,
        "runs_s": [r[0] for r in runs],
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
    cmd = [sys.executable, __file__, "--child", "synthetic", str(src), str(workdir / "graph-syn")]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    child = json.loads(res.stdout.strip().splitlines()[-1])
    peak = _rss_mb(resource.RUSAGE_CHILDREN)  # the only child this process waits for
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


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="synthetic events (0: skip)")
    parser.add_argument("--ml100k", type=Path, default=None, help="RecBole ml-100k dir (optional)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/graphseq-build-speed"))
    parser.add_argument("--reps", type=int, default=3, help="ML-100K runs (median reported)")
    parser.add_argument("--json-out", type=Path, default=RESULTS)
    parser.add_argument(
        "--child", nargs=3, metavar=("FORMAT", "INPUT", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return None
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    if args.ml100k is not None:
        results["ml100k"] = bench_ml100k(args.ml100k, args.workdir, args.reps)
    if args.events > 0:
        results["synthetic"] = bench_synthetic(args.workdir, args.events)
    rows = [r for res in results.values() for r in res["rows"]]
    _print_table(rows)
    for name, res in results.items():
        print(f"{name}: {'PASS' if res['pass'] else 'FAIL'}")
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "env": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_1m": os.getloadavg()[0],
        },
        "results": results,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
