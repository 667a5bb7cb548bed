"""Serve load: requests/s and latency of ``graphseq serve`` under a bounded local load.

Starts ``python -m graphseq serve --run RUN`` on 127.0.0.1 (a free port) in a subprocess,
waits for ``/health`` (that wait, model loading included, is reported as ``startup_s``),
then measures each ``--endpoint`` in turn against the same server: ``--warmup`` untimed
requests, then exactly ``--requests`` requests (``--batch-requests`` for ``batch``) from
``--concurrency`` threads (one keep-alive ``httpx.Client`` each). Endpoints:
``recommend`` (``GET /recommend?user=<random known user>&k=K``), ``batch`` (``POST
/recommend/batch`` with ``--batch-users`` random known users), ``similar`` (random items),
``history`` (``POST /recommend/history`` with 5 random items); default ``recommend batch``.
Prints requests/s (and users/s) with p50/p90/p99 latency per endpoint, writes the JSON
results and stops the server. Loopback only.

The load generator shares the machine's cores with the server, so on a small machine the
figures are a lower bound for the server alone. ``--server-threads N`` sets the server's
``OMP_NUM_THREADS`` (torch intra-op threads; default: torch's own choice, as
``graphseq serve`` runs); one thread is faster on a small, busy machine.

    python benchmarks/serve_load.py --run runs/gs
    python benchmarks/serve_load.py --run runs/gs --endpoint similar --requests 1000
    python benchmarks/serve_load.py --run runs/gs --endpoint recommend batch --batch-users 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"
HISTORY_LEN = 5  # items per anonymous history for --endpoint history


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _known_ids(run: Path) -> tuple[list[str], list[str]]:
    """Raw user and item ids of the run's graph (what the server knows)."""
    from data_builders.store import load_id_maps
    from graphseq.config import load_config

    ids = load_id_maps(load_config(run / "config.yaml").graph)
    return list(ids["user"]), list(ids["item"])


def _start_server(
    run: Path, port: int, log: Path, timeout: float, threads: int = 0
) -> tuple[subprocess.Popen, float]:
    """Start the server; returns it and the seconds until ``/health`` answered 200."""
    cmd = [sys.executable, "-m", "graphseq", "serve", "--run", str(run)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/health"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"server did not answer /health within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _requests(
    a: argparse.Namespace, endpoint: str, users: list[str], items: list[str], n: int
) -> list[tuple]:
    """``n`` request specs (method, path, params or body) drawn with seed ``a.seed``."""
    rng = random.Random(a.seed)
    if endpoint == "recommend":
        return [("GET", "/recommend", {"user": rng.choice(users), "k": a.k}) for _ in range(n)]
    if endpoint == "batch":
        size = min(a.batch_users, len(users))
        return [
            ("POST", "/recommend/batch", {"users": rng.sample(users, size), "k": a.k})
            for _ in range(n)
        ]
    if endpoint == "similar":
        return [("GET", "/similar", {"item": rng.choice(items), "k": a.k}) for _ in range(n)]
    return [
        ("POST", "/recommend/history", {"items": rng.sample(items, HISTORY_LEN), "k": a.k})
        for _ in range(n)
    ]


def _worker(base: str, reqs: list[tuple]) -> tuple[list[float], int]:
    """Send ``reqs`` one after another; (latencies in seconds, non-200 or failed count)."""
    lat, errors = [], 0
    with httpx.Client(base_url=base, timeout=30.0) as client:
        for method, path, payload in reqs:
            t0 = time.perf_counter()
            try:
                if method == "GET":
                    r = client.get(path, params=payload)
                else:
                    r = client.post(path, json=payload)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t0)
            errors += not ok
    return lat, errors


def _load(base: str, reqs: list[tuple], concurrency: int) -> tuple[list[float], int, float]:
    """Spread ``reqs`` over ``concurrency`` threads; (latencies, errors, wall seconds)."""
    shards = [reqs[i::concurrency] for i in range(concurrency)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda s: _worker(base, s), shards))
    wall = time.perf_counter() - t0
    return [x for lat, _ in done for x in lat], sum(e for _, e in done), wall


def _summary(lat: list[float], errors: int, wall: float) -> dict:
    return {
        "requests": len(lat),
        "errors": errors,
        "seconds": round(wall, 3),
        "requests_per_s": round(len(lat) / wall, 1),
        "latency_ms": {
            "p50": round(_pct(lat, 50), 2),
            "p90": round(_pct(lat, 90), 2),
            "p99": round(_pct(lat, 99), 2),
            "mean": round(1000 * statistics.fmean(lat), 2),
            "max": round(1000 * max(lat), 2),
        },
    }


def _pct(xs: list[float], q: float) -> float:
    """``q``-th percentile (nearest rank) of ``xs``, in milliseconds."""
    s = sorted(xs)
    return 1000.0 * s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, type=Path, help="run directory to serve")
    p.add_argument("--requests", type=int, default=2000, help="timed requests in all")
    p.add_argument("--concurrency", type=int, default=8, help="client threads")
    p.add_argument("--warmup", type=int, default=50, help="untimed requests first")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--endpoint", nargs="+", default=["recommend", "batch"],
                   choices=["recommend", "batch", "similar", "history"])  # fmt: skip
    p.add_argument("--batch-users", type=int, default=100, help="users per batch request")
    p.add_argument("--batch-requests", type=int, default=200, help="timed batch requests")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--server-threads", type=int, default=0, help="server OMP_NUM_THREADS (0: torch default)"
    )
    p.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    p.add_argument("--json-out", type=Path, default=RESULTS)
    a = p.parse_args(argv)

    run = a.run.resolve()
    users, items = _known_ids(run)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    res: dict = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc, startup = _start_server(run, port, log, a.startup_timeout, a.server_threads)
        try:
            health = httpx.get(base + "/health").json()
            for endpoint in a.endpoint:
                n = a.batch_requests if endpoint == "batch" else a.requests
                reqs = _requests(a, endpoint, users, items, a.warmup + n)
                _load(base, reqs[: a.warmup], min(a.concurrency, max(a.warmup, 1)))
                res[endpoint] = _summary(*_load(base, reqs[a.warmup :], a.concurrency))
                if endpoint == "batch":
                    per = min(a.batch_users, len(users))
                    res[endpoint]["users_per_request"] = per
                    res[endpoint]["users_per_s"] = round(res[endpoint]["requests_per_s"] * per, 1)
        finally:
            _stop(proc)
    res["startup_s"] = round(startup, 2)
    res["server"] = health
    out = {
        "config": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}},
        "env": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": os.getloadavg()[0],
        },
        "results": res,
    }
    print(f"{health['model']}: {health['users']} users, {health['items']} items")
    for endpoint in a.endpoint:
        r, lm = res[endpoint], res[endpoint]["latency_ms"]
        users_s = f" ({r['users_per_s']} users/s)" if endpoint == "batch" else ""
        print(
            f"{endpoint}: {r['requests']} requests, concurrency {a.concurrency}, k={a.k}: "
            f"{r['requests_per_s']} req/s{users_s}, p50 {lm['p50']} ms, p90 {lm['p90']} ms, "
            f"p99 {lm['p99']} ms, errors {r['errors']}"
        )
    print(f"server startup {res['startup_s']} s; load average {load_before:.1f} before")
    a.json_out.parent.mkdir(parents=True, exist_ok=True)
    a.json_out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.json_out}")
    return 1 if any(res[e]["errors"] for e in a.endpoint) else 0


if __name__ == "__main__":
    sys.exit(main())
