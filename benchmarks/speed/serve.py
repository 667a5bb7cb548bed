"""Serve load: requests/s and latency of ``graphseq serve`` under a bounded local load.

Starts ``python -m graphseq serve --run RUN`` on 127.0.0.1 (a free port) in a subprocess,
waits for ``/health`` (that wait, model loading included, is reported as ``startup_s``),
then measures each endpoint in turn against the same server: ``warmup`` untimed requests,
then exactly ``requests`` requests (``batch_requests`` for ``batch``) from ``concurrency``
threads (one keep-alive ``httpx.Client`` each). Endpoints: ``recommend`` (``GET
/recommend?user=<random known user>&k=K``), ``batch`` (``POST /recommend/batch`` with
``batch_users`` random known users), ``similar`` (random items), ``history`` (``POST
/recommend/history`` with 5 random items); default ``recommend batch``. Reports requests/s
(and users/s) with p50/p90/p99 latency per endpoint, and the server's peak RSS. Loopback only.

The load generator shares the machine's cores with the server, so on a small machine the
figures are a lower bound for the server alone. ``server_threads`` sets the server's
``OMP_NUM_THREADS`` (torch intra-op threads; 0: torch's own choice, as ``graphseq serve``
runs); one thread is faster on a small, busy machine.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.runner import GRAPHSEQ, Child

HISTORY_LEN = 5  # items per anonymous history for the history endpoint
ENDPOINTS = ("recommend", "batch", "similar", "history")


@dataclass(frozen=True)
class Load:
    """The load of one measurement."""

    endpoints: tuple[str, ...] = ("recommend", "batch")
    requests: int = 2000  # timed requests in all (per endpoint)
    concurrency: int = 8  # client threads
    warmup: int = 50  # untimed requests first
    k: int = 10
    batch_users: int = 100  # users per batch request
    batch_requests: int = 200  # timed batch requests
    seed: int = 0  # of the drawn users and items
    server_threads: int = 0  # server OMP_NUM_THREADS (0: torch's default)
    startup_timeout: float = 300.0  # seconds


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
) -> tuple[Child, float]:
    """Start the server; returns it and the seconds until ``/health`` answered 200."""
    cmd = [*GRAPHSEQ, "serve", "--run", str(run), "--host", "127.0.0.1", "--port", str(port)]
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        proc = Child(cmd, env, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/health"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            code, _ = proc.wait()
            raise RuntimeError(f"server exited ({code}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.stop()
    raise RuntimeError(f"server did not answer /health within {timeout:.0f} s")


def _requests(a: Load, endpoint: str, users: list[str], items: list[str], n: int) -> list[tuple]:
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


def measure(run_dir: Path, load: Load = Load()) -> dict:
    """Serve ``run_dir`` and put each endpoint of ``load`` under load; the payload."""
    run = run_dir.resolve()
    users, items = _known_ids(run)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    res: dict = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc, startup = _start_server(run, port, log, load.startup_timeout, load.server_threads)
        try:
            health = httpx.get(base + "/health").json()
            for endpoint in load.endpoints:
                n = load.batch_requests if endpoint == "batch" else load.requests
                reqs = _requests(load, endpoint, users, items, load.warmup + n)
                _load(base, reqs[: load.warmup], min(load.concurrency, max(load.warmup, 1)))
                res[endpoint] = _summary(*_load(base, reqs[load.warmup :], load.concurrency))
                if endpoint == "batch":
                    per = min(load.batch_users, len(users))
                    res[endpoint]["users_per_request"] = per
                    res[endpoint]["users_per_s"] = round(res[endpoint]["requests_per_s"] * per, 1)
        finally:
            _, peak = proc.stop()
    res["startup_s"] = round(startup, 2)
    res["server_peak_rss_mb"] = round(peak, 1)
    res["server"] = health
    print(f"{health['model']}: {health['users']} users, {health['items']} items")
    for endpoint in load.endpoints:
        r, lm = res[endpoint], res[endpoint]["latency_ms"]
        users_s = f" ({r['users_per_s']} users/s)" if endpoint == "batch" else ""
        print(
            f"{endpoint}: {r['requests']} requests, concurrency {load.concurrency}, k={load.k}: "
            f"{r['requests_per_s']} req/s{users_s}, p50 {lm['p50']} ms, p90 {lm['p90']} ms, "
            f"p99 {lm['p99']} ms, errors {r['errors']}"
        )
    print(f"server startup {res['startup_s']} s, peak RSS {peak:.0f} MB; "
          f"load average {load_before:.1f} before")  # fmt: skip
    return {"run": str(run), "load": asdict(load), "loadavg_1m_before": load_before,
            "results": res}  # fmt: skip
