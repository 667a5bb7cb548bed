"""Operations: /ready against the run files on disk, /metrics in Prometheus text, JSON-line
access logs with request ids, an internal error as one line and a JSON 500, several worker
processes over one run, and a damaged run refused at start-up."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from graphseq.cli import main  # noqa: E402
from graphseq.serve import configure_logging, create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def client(serve_run_dir):
    with TestClient(create_app(serve_run_dir)) as c:
        yield c


@pytest.fixture
def logs():
    """The JSON lines the server's loggers write during the test (info level)."""
    stream = io.StringIO()
    handler = configure_logging(stream)
    yield lambda: [json.loads(ln) for ln in stream.getvalue().splitlines()]
    logging.getLogger("graphseq.serve").removeHandler(handler)


def _counter(text: str, path: str, status: int) -> float:
    pattern = (
        rf'^graphseq_http_requests_total{{method="GET",path="{path}",status="{status}"}} (\S+)$'
    )
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def test_ready_turns_503_when_a_run_file_changes(serve_run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(serve_run_dir, run)
    with TestClient(create_app(run)) as c:
        r = c.get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        ckpt = run / "checkpoint.pt"
        ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated on disk
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["changed"] == [str(ckpt)]
        assert "restart" in r.json()["reason"]
        assert c.get("/health").status_code == 200  # liveness: the process still answers
        (run / "metrics.json").unlink()
        assert set(c.get("/ready").json()["changed"]) == {str(ckpt), str(run / "metrics.json")}


def test_metrics_count_requests_and_errors(client):
    before = client.get("/metrics").text
    assert client.get("/recommend", params={"user": "u1", "k": 3}).status_code == 200
    assert client.get("/recommend", params={"user": "nobody"}).status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _counter(text, "/recommend", 200) == _counter(before, "/recommend", 200) + 1
    assert _counter(text, "/recommend", 404) == _counter(before, "/recommend", 404) + 1
    assert 'graphseq_http_errors_total{path="/recommend",reason="not_found"}' in text
    assert 'graphseq_http_request_duration_seconds_bucket{le="0.05",path="/recommend"}' in text
    assert re.search(r"^graphseq_model_call_users_count \d", text, re.M)


def test_access_log_is_one_json_line_with_the_request_id(client, logs):
    r = client.get("/recommend", params={"user": "u1"}, headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    bad = client.get("/health", headers={"X-Request-ID": "no spaces\tor tabs"})
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])  # not echoed as is
    lines = logs()
    assert [(x["request_id"], x["path"], x["status"]) for x in lines] == [
        ("abc-123", "/recommend", 200), (generated, "/health", 200),
        (bad.headers["x-request-id"], "/health", 200)]  # fmt: skip
    assert all(x["level"] == "info" and x["logger"] == "graphseq.serve.access" for x in lines)
    assert all(isinstance(x["ms"], float) for x in lines)


def test_an_internal_error_is_a_json_500_and_one_log_line(serve_run_dir, logs):
    app = create_app(serve_run_dir)
    with TestClient(app) as c:

        def broken(rows):
            raise RuntimeError("the model broke\nsecond line")

        app.state.run.user_scores = broken
        r = c.get("/recommend", params={"user": "u1"}, headers={"X-Request-ID": "err-1"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": "internal error (request id err-1)"}
        assert c.get("/health").status_code == 200  # and the server goes on
    (line, health) = logs()
    assert line["level"] == "error" and line["request_id"] == "err-1" and line["status"] == 500
    assert line["error"] == "RuntimeError: the model broke" and "traceback" not in line
    assert health["path"] == "/health"


def test_the_traceback_goes_to_the_log_at_debug_level(serve_run_dir):
    stream = io.StringIO()
    handler = configure_logging(stream, debug=True)
    try:
        app = create_app(serve_run_dir)
        with TestClient(app) as c:
            app.state.run.user_scores = lambda rows: 1 / 0
            assert c.get("/recommend", params={"user": "u1"}).status_code == 500
    finally:
        logging.getLogger("graphseq.serve").removeHandler(handler)
        logging.getLogger("graphseq.serve").setLevel(logging.INFO)
    lines = [json.loads(ln) for ln in stream.getvalue().splitlines()]
    (tb,) = [x for x in lines if "traceback" in x]
    assert tb["level"] == "debug" and "ZeroDivisionError" in tb["traceback"]


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_two_workers_serve_one_run(graphseq_server, serve_run_dir):
    url, proc, log = graphseq_server(serve_run_dir, "--workers", "2")
    assert len(_children(proc.pid)) == 2
    with httpx.Client(base_url=url) as c:
        for i in range(20):
            r = c.get("/recommend", params={"user": f"u{i}", "k": 3})
            assert r.status_code == 200 and len(r.json()["items"]) == 3
        assert c.get("/ready").status_code == 200
        deadline = time.monotonic() + 10  # the workers' figures are summed
        while _counter(c.get("/metrics").text, "/recommend", 200) < 20:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert "Traceback" not in log.read_text()


def test_a_damaged_run_is_refused_before_serving(serve_run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(serve_run_dir, run)
    (run / "checkpoint.pt").write_bytes(b"")
    (run / "metrics.json").write_text("{")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["serve", "--run", str(run), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [ln.split(": ")[2] for ln in err] == [str(run / "metrics.json"),
                                                 str(run / "checkpoint.pt")]  # fmt: skip
    assert "Traceback" not in "\n".join(err) and "serving" not in "\n".join(err)


def test_metrics_of_one_app_do_not_leak_into_another(serve_run_dir, client):
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None
    with TestClient(create_app(serve_run_dir)) as other:
        assert _counter(other.get("/metrics").text, "/recommend", 200) == 0
