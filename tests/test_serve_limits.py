"""Bounded work: the deadline (504), the concurrency cap (429 with Retry-After), a client that
disconnects cancels its queued chunks, and a large batch does not hold up a single user (on
a live uvicorn on the loopback, with the model slowed down so that timings are plain)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import warnings

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from graphseq.cli import make_parser  # noqa: E402
from graphseq.serve import Limits, create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402


def _slow_app(run_dir, seconds: float, **limits):
    """An app whose every model call over users takes at least ``seconds``."""
    app = create_app(run_dir, limits=Limits(**limits))
    run = app.state.run
    real = run.user_scores

    def slow(rows):
        time.sleep(seconds)
        return real(rows)

    run.user_scores = slow
    return app


def _model_calls(base: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    return float(re.search(r"^graphseq_model_call_users_count (\S+)$", text, re.M).group(1))


def _users(n: int) -> list[str]:
    return [f"u{i}" for i in range(n)]


def test_cli_flags_make_the_limits():
    a = make_parser().parse_args(["serve", "--run", "R", "--max-body-bytes", "10",
                                  "--timeout-s", "0.5", "--max-concurrency", "3"])  # fmt: skip
    assert (a.max_body_bytes, a.timeout_s, a.max_concurrency) == (10, 0.5, 3)
    d = make_parser().parse_args(["serve", "--run", "R"])
    assert (d.max_history, d.max_batch_users, d.chunk_users) == (
        Limits.max_history, Limits.max_batch_users, Limits.chunk_users)  # fmt: skip
    with pytest.raises(SystemExit):
        make_parser().parse_args(["serve", "--run", "R", "--max-history", "0"])


def test_deadline_is_a_504(serve_run_dir):
    with TestClient(_slow_app(serve_run_dir, 1.0, timeout_s=0.3)) as c:
        t0 = time.monotonic()
        r = c.get("/recommend", params={"user": "u1"})
        assert r.status_code == 504 and "0.3 s deadline" in r.json()["detail"]
        assert time.monotonic() - t0 < 0.9
        assert c.get("/health").status_code == 200


def test_concurrency_cap_is_a_429_with_retry_after(serve_run_dir, live_server):
    base = live_server(_slow_app(serve_run_dir, 0.6, max_concurrency=1))
    first: dict = {}
    t = threading.Thread(target=lambda: first.update(r=httpx.get(f"{base}/recommend?user=u1")))
    t.start()
    time.sleep(0.25)
    r = httpx.get(f"{base}/recommend", params={"user": "u2"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert "--max-concurrency" in r.json()["detail"]
    assert httpx.get(f"{base}/health").status_code == 200  # operations are never refused
    t.join()
    assert first["r"].status_code == 200
    assert httpx.get(f"{base}/recommend", params={"user": "u2"}).status_code == 200


def test_a_client_that_disconnects_cancels_its_chunks(serve_run_dir, live_server):
    """A 100-user batch in chunks of 4 is 25 model calls; its client leaves after ~2."""
    base = live_server(_slow_app(serve_run_dir, 0.1, chunk_users=4))
    before = _model_calls(base)
    body = json.dumps({"users": _users(100)}).encode()
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /recommend/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        time.sleep(0.25)
    time.sleep(0.5)  # the server notices within POLL_S; the call then running finishes
    stopped = _model_calls(base) - before
    time.sleep(0.5)
    assert _model_calls(base) - before == stopped < 12, stopped


def test_a_single_user_is_not_held_up_by_a_large_batch(serve_run_dir, live_server):
    """A 120-user batch is 30 calls of 4 (>= 1.5 s); one user waits a call or two."""
    base = live_server(_slow_app(serve_run_dir, 0.05, chunk_users=4))
    done: dict = {}

    def batch() -> None:
        r = httpx.post(f"{base}/recommend/batch", json={"users": _users(120)}, timeout=30)
        done.update(status=r.status_code, batch=time.monotonic())

    t = threading.Thread(target=batch)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    r = httpx.get(f"{base}/recommend", params={"user": "u7"})
    done["single"], took = time.monotonic(), time.monotonic() - t0
    t.join()
    assert r.status_code == 200 and done["status"] == 200
    assert done["single"] < done["batch"] and took < 0.5, (took, done)
