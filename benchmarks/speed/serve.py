"""Serve load: requests/s and latency of ``graphseq serve``, and its head-of-line figure,
optionally against the previous implementation in the same run.

Starts ``python -m graphseq serve --run RUN`` on 127.0.0.1 (a free port) in a subprocess,
with ``PYTHONPATH`` at this checkout (``current``) and, with ``previous`` (a checkout
directory, or a git commit of this repository, exported with ``git archive`` into a
temporary directory), at that one too (``previous``), one server after the other, ``rounds``
times (previous first in each round), so both see the machine as it was. ``ratios`` gives
current / previous for each figure (requests/s, p50 and p99 latency, head-of-line latency),
and ``targets`` the issue's bounds: >= 300 requests/s with p99 < 50 ms at concurrency 8, a
one-user request during the 1,000-user batch answered in < 200 ms (its slowest probe). For each server it waits for ``/health``
(reported as ``startup_s``, model loading included), then measures:

* ``recommend``: ``GET /recommend?user=<random known user>&k=K``, ``requests`` timed
  requests after ``warmup`` untimed ones, at each of ``concurrency`` (threads, one
  keep-alive ``httpx.Client`` each);
* ``batch``: ``POST /recommend/batch`` with ``batch_users`` random known users,
  ``batch_requests`` requests at the largest concurrency;
* ``similar``, ``history`` (5 random items): as ``recommend``, on request;
* ``head_of_line``: one ``POST /recommend/batch`` of ``hol_batch`` entries (every known user
  once in random order, then repeats: a batch scores each user once), and while it runs,
  one-user ``GET /recommend`` requests one after another; their latency is the figure.

Then the lists both servers give for the first ``compare_users`` users (``same_lists``: the
share with the same items in the same order; ``max_score_diff``). Reports requests/s (and
users/s) with p50/p90/p99 latency per endpoint and concurrency, and each server's peak RSS.
Loopback only.

The load generator shares the machine's cores with the server, so on a small machine the
figures are a lower bound for the server alone. ``server_threads`` sets the servers'
``OMP_NUM_THREADS`` (torch intra-op threads; 0: leave the environment's).
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.envelope import ROOT
from benchmarks.runner import GRAPHSEQ, Child

HISTORY_LEN = 5  # items per anonymous history for the history endpoint
ENDPOINTS = ("recommend", "batch", "similar", "history", "head_of_line")


@dataclass(frozen=True)
class Load:
    """The load of one measurement."""

    endpoints: tuple[str, ...] = ("recommend", "batch", "head_of_line")
    requests: int = 2000  # timed requests per endpoint and concurrency
    concurrency: tuple[int, ...] = (1, 8)  # client threads (batch: the largest)
    warmup: int = 50  # untimed requests first
    k: int = 10
    batch_users: int = 100  # users per batch request
    batch_requests: int = 200  # timed batch requests
    hol_batch: int = 1000  # entries of the head-of-line batch
    compare_users: int = 100  # users whose lists are compared between the servers
    seed: int = 0  # of the drawn users and items
    server_threads: int = 0  # servers' OMP_NUM_THREADS (0: the environment's)
    startup_timeout: float = 300.0  # seconds
    previous: str | None = None  # a checkout directory or a git commit, served in the same run
    rounds: int = 1  # (previous, current) rounds


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


def _start_server(run: Path, port: int, log: Path, a: Load, checkout: Path) -> tuple[Child, float]:
    """Start the server of ``checkout``; returns it and the seconds until ``/health`` was 200."""
    cmd = [*GRAPHSEQ, "serve", "--run", str(run), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    if a.server_threads > 0:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(a.server_threads)
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        proc = Child(cmd, env, cwd=checkout, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/health"
    while time.perf_counter() - t0 < a.startup_timeout:
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
    raise RuntimeError(f"server did not answer /health within {a.startup_timeout:.0f} s")


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


def _send(client: httpx.Client, method: str, path: str, payload: dict) -> httpx.Response:
    if method == "GET":
        return client.get(path, params=payload)
    return client.post(path, json=payload)


def _worker(base: str, reqs: list[tuple]) -> tuple[list[float], int]:
    """Send ``reqs`` one after another; (latencies in seconds, non-200 or failed count)."""
    lat, errors = [], 0
    with httpx.Client(base_url=base, timeout=60.0) as client:
        for method, path, payload in reqs:
            t0 = time.perf_counter()
            try:
                ok = _send(client, method, path, payload).status_code == 200
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


def _pct(xs: list[float], q: float) -> float:
    """``q``-th percentile (nearest rank) of ``xs``, in milliseconds."""
    s = sorted(xs)
    return 1000.0 * s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


def _latency(lat: list[float]) -> dict:
    return {"p50": round(_pct(lat, 50), 2), "p90": round(_pct(lat, 90), 2),
            "p99": round(_pct(lat, 99), 2), "mean": round(1000 * statistics.fmean(lat), 2),
            "max": round(1000 * max(lat), 2)}  # fmt: skip


def _summary(lat: list[float], errors: int, wall: float, concurrency: int) -> dict:
    return {"requests": len(lat), "concurrency": concurrency, "errors": errors,
            "seconds": round(wall, 3), "requests_per_s": round(len(lat) / wall, 1),
            "latency_ms": _latency(lat)}  # fmt: skip


def _head_of_line(base: str, a: Load, users: list[str]) -> dict:
    """One-user requests while one ``hol_batch``-entry batch runs (see the module)."""
    rng = random.Random(a.seed)
    batch = rng.sample(users, len(users))
    batch = (batch + [rng.choice(users) for _ in range(a.hol_batch)])[: a.hol_batch]
    done: dict = {}

    def post() -> None:
        t0 = time.perf_counter()
        with httpx.Client(base_url=base, timeout=120.0) as c:
            done["status"] = c.post("/recommend/batch", json={"users": batch, "k": a.k}).status_code
        done["seconds"] = time.perf_counter() - t0

    lat, errors = [], 0
    t = threading.Thread(target=post)
    with httpx.Client(base_url=base, timeout=120.0) as client:
        client.get("/recommend", params={"user": users[0], "k": a.k})  # connected before
        t.start()
        time.sleep(0.05)  # the batch is in
        while t.is_alive():
            t0 = time.perf_counter()
            r = client.get("/recommend", params={"user": rng.choice(users), "k": a.k})
            lat.append(time.perf_counter() - t0)
            errors += r.status_code != 200
            time.sleep(0.02)
    t.join()
    return {"batch_entries": len(batch), "batch_users": len(set(batch)),
            "batch_status": done["status"], "batch_seconds": round(done["seconds"], 3),
            "probes": len(lat), "errors": errors,
            "probe_latency_ms": _latency(lat) if lat else None}  # fmt: skip


def _lists(base: str, users: list[str], k: int) -> dict[str, list]:
    with httpx.Client(base_url=base, timeout=60.0) as c:
        return {u: c.get("/recommend", params={"user": u, "k": k}).json()["items"] for u in users}


def _one_server(run: Path, checkout: Path, a: Load, users: list[str], items: list[str]) -> dict:
    """Every endpoint of ``a`` against the server of ``checkout``; its figures."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    res: dict = {"checkout": str(checkout), "loadavg_1m_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc, startup = _start_server(run, port, log, a, checkout)
        try:
            for endpoint in a.endpoints:
                if endpoint == "head_of_line":
                    res[endpoint] = _head_of_line(base, a, users)
                    continue
                levels = [max(a.concurrency)] if endpoint == "batch" else list(a.concurrency)
                n = a.batch_requests if endpoint == "batch" else a.requests
                reqs = _requests(a, endpoint, users, items, a.warmup + n)
                _load(base, reqs[: a.warmup], min(levels[-1], max(a.warmup, 1)))
                res[endpoint] = []
                for c in levels:
                    r = _summary(*_load(base, reqs[a.warmup :], c), c)
                    if endpoint == "batch":
                        per = min(a.batch_users, len(users))
                        r.update(
                            users_per_request=per, users_per_s=round(r["requests_per_s"] * per, 1)
                        )
                    res[endpoint].append(r)
            res["lists"] = _lists(base, users[: a.compare_users], a.k)
        finally:
            _, peak = proc.stop()
    res["startup_s"] = round(startup, 2)
    res["server_peak_rss_mb"] = round(peak, 1)
    return res


def _agreement(a: dict[str, list], b: dict[str, list]) -> dict:
    """How far two servers' lists for the same users agree."""
    same = sum([x["item"] for x in a[u]] == [x["item"] for x in b[u]] for u in a)
    diff = max((abs(x["score"] - y["score"]) for u in a for x, y in zip(a[u], b[u])
                if x["item"] == y["item"]), default=0.0)  # fmt: skip
    return {"users": len(a), "same_lists": same / max(len(a), 1), "max_score_diff": diff}


def _print(name: str, r: dict) -> None:
    for endpoint in ("recommend", "batch", "similar", "history"):
        for x in r.get(endpoint, []):
            lm = x["latency_ms"]
            users = f" ({x['users_per_s']} users/s)" if endpoint == "batch" else ""
            print(f"{name} {endpoint} c={x['concurrency']}: {x['requests']} requests, "
                  f"{x['requests_per_s']} req/s{users}, p50 {lm['p50']} ms, p99 {lm['p99']} ms, "
                  f"errors {x['errors']}")  # fmt: skip
    if "head_of_line" in r:
        h = r["head_of_line"]
        lm = h["probe_latency_ms"] or {"p50": None, "max": None}
        print(f"{name} head of line: {h['batch_users']}-user batch {h['batch_seconds']} s; "
              f"{h['probes']} one-user requests meanwhile: p50 {lm['p50']} ms, max {lm['max']} ms")  # fmt: skip
    print(f"{name}: startup {r['startup_s']} s, peak RSS {r['server_peak_rss_mb']:.0f} MB, "
          f"load average {r['loadavg_1m_before']} before")  # fmt: skip


def _checkout(previous: str, tmp: Path) -> tuple[Path, str]:
    """``previous`` as a directory to serve from, and what it was (a path, or a commit)."""
    if Path(previous).is_dir():
        return Path(previous).resolve(), str(Path(previous).resolve())
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{previous}^{{commit}}"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp, commit


def _fig(r: dict) -> dict[str, float]:
    """The figures of one server that ``ratios`` and ``targets`` compare."""
    out: dict[str, float] = {}
    for endpoint in ("recommend", "batch", "similar", "history"):
        for x in r.get(endpoint, []):
            c, lm = x["concurrency"], x["latency_ms"]
            out[f"{endpoint}_c{c}_requests_per_s"] = x["requests_per_s"]
            out[f"{endpoint}_c{c}_p50_ms"], out[f"{endpoint}_c{c}_p99_ms"] = lm["p50"], lm["p99"]
    h = r.get("head_of_line")
    if h and h["probe_latency_ms"]:
        out["head_of_line_p50_ms"] = h["probe_latency_ms"]["p50"]
        out["head_of_line_max_ms"] = h["probe_latency_ms"]["max"]
        out["head_of_line_batch_s"] = h["batch_seconds"]
    return out


def _median(rounds: list[dict], name: str) -> dict[str, float]:
    figs = [_fig(r[name]) for r in rounds]
    return {k: statistics.median(f[k] for f in figs) for k in figs[0]}


def _targets(fig: dict[str, float]) -> dict[str, bool | None]:
    """The issue's bounds on one server's (median) figures; None where not measured."""
    rps, p99 = fig.get("recommend_c8_requests_per_s"), fig.get("recommend_c8_p99_ms")
    hol = fig.get("head_of_line_max_ms")
    return {"c8_at_least_300_per_s": None if rps is None else rps >= 300,
            "c8_p99_under_50_ms": None if p99 is None else p99 < 50,
            "head_of_line_under_200_ms": None if hol is None else hol < 200}  # fmt: skip


def measure(run_dir: Path, load: Load = Load()) -> dict:
    """Serve ``run_dir`` with this checkout (and ``load.previous``) under ``load``; the payload."""
    with tempfile.TemporaryDirectory(prefix="graphseq-previous-") as tmp:
        previous = _checkout(load.previous, Path(tmp)) if load.previous else None
        out = _measure(run_dir, load, previous[0] if previous else None)
    out["previous"] = previous[1] if previous else None
    return out


def _measure(run_dir: Path, load: Load, previous: Path | None) -> dict:
    run = run_dir.resolve()
    users, items = _known_ids(run)
    servers = {"current": ROOT}
    if previous is not None:
        servers = {"previous": previous, "current": ROOT}
    rounds = []
    for i in range(load.rounds):
        got = {name: _one_server(run, path, load, users, items) for name, path in servers.items()}
        for name, r in got.items():
            _print(f"round {i + 1} {name}", r)
        rounds.append(got)
    agree = None
    if "previous" in servers:
        agree = _agreement(rounds[0]["previous"]["lists"], rounds[0]["current"]["lists"])
        print(f"lists of {agree['users']} users, previous vs current: {agree['same_lists']:.0%} "
              f"identical, scores within {agree['max_score_diff']:.2g}")  # fmt: skip
    for r in rounds:
        for x in r.values():
            x.pop("lists")
    current = _median(rounds, "current")
    ratios = None
    if "previous" in servers:
        before = _median(rounds, "previous")
        ratios = {k: round(v / before[k], 3) for k, v in current.items() if before.get(k)}
        for k, v in ratios.items():
            print(f"current / previous {k}: {v:.3g} ({current[k]:g} vs {before[k]:g})")
    targets = _targets(current)
    print("targets (current):", ", ".join(f"{k} {v}" for k, v in targets.items()))
    return {"run": str(run), "load": asdict(load), "rounds": rounds, "agreement": agree,
            "median": current, "ratios": ratios, "targets": targets}  # fmt: skip
