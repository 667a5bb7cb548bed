"""The bad-request corpus against a live ``graphseq serve`` on the loopback: every answer is a
4xx with a JSON body, the keep-alive connection still answers (or the server said
``Connection: close``), and the server's log holds no traceback and no 5xx."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

B, H = "/recommend/batch", "/recommend/history"
BOUNDS = ["--max-body-bytes", "8192", "--max-history", "50", "--max-batch-users", "20",
          "--max-batch-items", "200"]  # fmt: skip


def _raw(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates included as the bytes a broken client would send."""
    return text.encode("utf-8", "surrogatepass")


def _chunks(size: int) -> Iterator[bytes]:
    body = json.dumps({"users": ["u1"] * (size // 5)}).encode()
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


# (kind, method, target, body, headers, status: the exact 4xx expected, or 0 for any 4xx)
CASES: list[tuple[str, str, str, object, dict, int]] = [
    ("nan", "POST", B, '{"users":["u1"],"k":NaN}', {}, 422),
    ("nan", "POST", H, '{"items":["i1"],"k":NaN}', {}, 422),
    ("nan", "POST", H, '{"items":[NaN]}', {}, 422),
    ("nan", "POST", B, '{"users":["u1"],"fallback":NaN}', {}, 422),
    ("infinity", "POST", B, '{"users":["u1"],"k":Infinity}', {}, 422),
    ("infinity", "POST", H, '{"items":["i1"],"k":-Infinity}', {}, 422),
    ("infinity", "POST", B, '{"users":[Infinity]}', {}, 422),
    ("surrogate", "POST", H, '{"items":["\\ud800"]}', {}, 422),
    ("surrogate", "POST", B, '{"users":["u1","\\udfff"]}', {}, 422),
    ("surrogate", "POST", H, '{"items":["\\u00e9\\ud800"]}', {}, 422),  # echo not ASCII
    ("surrogate", "POST", B, _raw('{"users":["\ud800"]}'), {}, 422),  # raw bytes: not UTF-8
    ("not utf-8", "POST", B, b'{"users":["\xff\xfe"]}', {}, 422),
    ("strict int", "POST", B, '{"users":["u1"],"k":true}', {}, 422),
    ("strict int", "POST", H, '{"items":["i1"],"k":"10"}', {}, 422),
    ("strict int", "POST", B, '{"users":["u1"],"k":2.0}', {}, 422),
    ("strict bool", "POST", B, '{"users":["u1"],"fallback":"yes"}', {}, 422),
    ("strict bool", "POST", B, '{"users":["u1"],"fallback":1}', {}, 422),
    ("strict str", "POST", B, '{"users":[1, 2]}', {}, 422),
    ("unknown key", "POST", B, '{"users":["u1"],"topk":3}', {}, 422),
    ("unknown key", "POST", H, '{"items":["i1"],"fallback":true}', {}, 422),
    ("unknown rule", "POST", B, '{"users":["u1"],"unknown":"ignore"}', {}, 422),
    ("out of range", "POST", B, '{"users":["u1"],"k":0}', {}, 422),
    ("out of range", "POST", H, '{"items":["i1"],"k":1001}', {}, 422),
    ("huge number", "POST", B, '{"users":["u1"],"k":1e400}', {}, 422),
    ("huge number", "POST", B, '{"users":["u1"],"k":' + "9" * 4400 + "}", {}, 422),
    ("huge number", "POST", H, '{"items":["i1"],"k":123456789012345678901234567890}', {}, 422),
    ("not json", "POST", B, "users=u1", {}, 422),
    ("not json", "POST", B, "", {}, 422),
    ("not json", "POST", H, '{"items":["i1"', {}, 422),
    ("not json", "POST", B, '\ufeff{"users":["u1"]}', {}, 422),
    ("not an object", "POST", B, '["u1","u2"]', {}, 422),
    ("not an object", "POST", H, "null", {}, 422),
    ("not an object", "POST", B, '"u1"', {}, 422),
    ("not an object", "POST", H, "42", {}, 422),
    ("nested junk", "POST", B, '{"users":[{"a":[1,{"b":null}]}]}', {}, 422),
    ("nested junk", "POST", H, '{"items":[["i1"]]}', {}, 422),
    ("nested junk", "POST", B, '{"users":' + "[" * 3000 + "]" * 3000 + "}", {}, 422),
    ("wrong type", "POST", B, '{"users":"u1"}', {}, 422),
    ("wrong type", "POST", H, '{"items":{"i1":1}}', {}, 422),
    ("empty", "POST", B, '{"users":[]}', {}, 422),
    ("empty", "POST", H, "{}", {}, 422),
    ("content type", "POST", B, '{"users":["u1"]}', {"Content-Type": "text/plain"}, 422),
    ("bound: history", "POST", H, json.dumps({"items": ["i1"] * 51}), {}, 422),
    ("bound: batch users", "POST", B, json.dumps({"users": [f"u{i}" for i in range(21)]}), {}, 422),
    ("bound: users x k", "POST", B, json.dumps({"users": ["u1", "u2"], "k": 101}), {}, 422),
    ("bound: body", "POST", B, json.dumps({"users": ["u1"] * 2000}), {}, 413),
    ("bound: chunked body", "POST", B, _chunks(16000), {}, 413),
    ("unknown ids", "POST", B, '{"users":["nobody","nope"]}', {}, 404),
    ("unknown ids", "POST", B, '{"users":["u1","nobody"],"unknown":"raise"}', {}, 404),
    ("unknown ids", "POST", H, json.dumps({"items": ["x" * 3000]}), {}, 404),
    ("query nan", "GET", "/recommend?user=u1&k=NaN", None, {}, 422),
    ("query nan", "GET", "/similar?item=i1&k=inf", None, {}, 422),
    ("query strict", "GET", "/recommend?user=u1&k=true", None, {}, 422),
    ("query strict", "GET", "/recommend?user=u1&fallback=maybe", None, {}, 422),
    ("query huge", "GET", "/recommend?user=u1&k=" + "9" * 400, None, {}, 422),
    ("query unknown key", "GET", "/recommend?user=u1&topk=3", None, {}, 422),
    ("query missing", "GET", "/recommend?k=3", None, {}, 422),
    ("query bytes", "GET", "/recommend?user=%ED%A0%80", None, {}, 404),
    ("query bytes", "GET", "/similar?item=%FF%FE&k=2", None, {}, 404),
    ("method", "DELETE", "/recommend?user=u1", None, {}, 405),
    ("method", "GET", B, None, {}, 405),
    ("path", "GET", "/recommend/nope", None, {}, 404),
]


@pytest.fixture(scope="module")
def server(graphseq_server, serve_run_dir):
    return graphseq_server(serve_run_dir, *BOUNDS)


def _send(conn: http.client.HTTPConnection, method: str, target: str, body, headers: dict):
    headers = {"Content-Type": "application/json", **headers} if body is not None else headers
    if isinstance(body, str):
        body = body.encode("utf-8")
    chunked = body is not None and not isinstance(body, bytes)
    try:
        conn.request(method, target, body=body, headers=headers, encode_chunked=chunked)
    except (BrokenPipeError, ConnectionResetError):
        if not chunked:  # a streamed body may be cut off by its 413, which is still read
            raise
    r = conn.getresponse()
    return r, r.read()


@pytest.mark.parametrize("kind, method, target, body, headers, status", CASES,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])  # fmt: skip
def test_bad_request_is_a_4xx_and_the_connection_goes_on(
    server, kind, method, target, body, headers, status
):
    url, _, _ = server
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        r, raw = _send(conn, method, target, body, headers)
        assert 400 <= r.status < 500 and (status == 0 or r.status == status), (r.status, raw)
        assert r.getheader("content-type") == "application/json"
        answer = json.loads(raw, parse_constant=lambda c: pytest.fail(f"{c} in {raw!r}"))
        assert "detail" in answer and len(raw) < 2000, raw  # no long echo of the input
        assert r.getheader("x-request-id")
        if (r.getheader("connection") or "").lower() != "close":  # keep-alive still works
            again, raw = _send(conn, "GET", "/recommend?user=u1&k=2", None, {})
            assert again.status == 200 and len(json.loads(raw)["items"]) == 2
    finally:
        conn.close()


def test_the_corpus_covers_twenty_kinds():
    assert len({c[0] for c in CASES}) >= 20 and len(CASES) >= 30


def test_the_server_log_has_no_traceback_nor_5xx(server):
    """Runs after the corpus (pytest keeps the file's order)."""
    url, proc, log = server
    assert proc.poll() is None, "the server died"
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    statuses = [json.loads(ln).get("status") for ln in lines]
    assert "Traceback" not in log.read_text()
    assert len([s for s in statuses if s is not None and 400 <= s < 500]) >= len(CASES)
    assert not [s for s in statuses if s is not None and s >= 500]
