"""What an operator sees: readiness against the files on disk, Prometheus metrics, JSON-line
logs with request ids, and the ASGI middleware in front of every request.

:class:`Front` does, for each request: take its ``X-Request-ID`` (or make one) and echo it
in the answer; refuse it with a 429 and ``Retry-After`` when ``max_concurrency`` requests
are in flight (``/health``, ``/ready`` and ``/metrics`` are never refused); refuse a body
over ``max_body_bytes`` with a 413; time it, count it and write one access-log line; and
turn an error that escaped the app into one JSON 500 and one log line (the traceback goes
to the log at debug level only), so the keep-alive connection stays usable.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CONTENT_TYPE_LATEST as METRICS_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphseq.serve.limits import Limits

log = logging.getLogger("graphseq.serve")
access = logging.getLogger("graphseq.serve.access")
OPS_PATHS = ("/health", "/ready", "/metrics")  # answered whatever the load
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")  # an incoming X-Request-ID kept as is
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


# ---- readiness -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Fingerprint:
    """Size, modification time and inode of each file a loaded run read: a file rewritten,
    replaced or deleted since shows in :meth:`changed`."""

    stats: dict[str, tuple[int, int, int]]

    @staticmethod
    def _stat(path: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    @classmethod
    def of(cls, paths: Iterable[Path]) -> Fingerprint:
        stats = {str(p): cls._stat(str(p)) for p in paths}
        return cls({p: s for p, s in stats.items() if s is not None})

    def changed(self) -> list[str]:
        """The files whose size, time or inode differ from the fingerprint's, or are gone."""
        return [p for p, s in self.stats.items() if self._stat(p) != s]


# ---- metrics -------------------------------------------------------------------------------
def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """The server's Prometheus metrics. One process: its own registry (several apps in one
    process do not mix). Several workers (``PROMETHEUS_MULTIPROC_DIR`` set before
    ``prometheus_client`` was imported): every worker's figures, summed."""

    def __init__(self) -> None:
        multi = _multiprocess()
        reg = None if multi else CollectorRegistry()
        self.registry = reg
        self.requests = Counter("graphseq_http_requests", "HTTP requests answered",
                                ["method", "path", "status"], registry=reg)  # fmt: skip
        self.errors = Counter("graphseq_http_errors", "HTTP requests answered with an error, by reason",
                              ["path", "reason"], registry=reg)  # fmt: skip
        self.latency = Histogram("graphseq_http_request_duration_seconds", "time to answer",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=reg)  # fmt: skip
        self.in_flight = Gauge("graphseq_http_in_flight", "requests being answered",
                               registry=reg, multiprocess_mode="livesum")  # fmt: skip
        self.model_rows = Histogram("graphseq_model_call_users", "users per model call",
                                    buckets=ROW_BUCKETS, registry=reg)  # fmt: skip

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if self.registry is not None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return generate_latest(reg)


REASONS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
           422: "invalid", 429: "overloaded", 499: "client_gone", 503: "unavailable",
           504: "deadline"}  # fmt: skip


def _reason(status: int) -> str:
    return REASONS.get(status, "server_error" if status >= 500 else "client_error")


# ---- logs ----------------------------------------------------------------------------------
class JsonLines(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, the record's
    ``fields`` (``extra={"fields": {...}}``) and ``traceback`` when it has one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }  # fmt: skip
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(stream: TextIO | None = None, debug: bool = False) -> logging.Handler:
    """JSON lines from the ``graphseq.serve`` loggers to ``stream`` (default stderr), at
    debug level with ``debug`` (tracebacks of errors), else info. Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    return handler


# ---- the middleware ------------------------------------------------------------------------
def content_length(scope: Scope) -> int | None:
    """The request's Content-Length header as a number (``None``: absent or not a number)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body is larger than {limit:,} bytes (--max-body-bytes)")


def limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises a 413 as soon as the body's bytes pass ``limit`` (a chunked
    body has no Content-Length to refuse it by)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return wrapped


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def request_id(scope: Scope) -> str:
    """The request's ``X-Request-ID`` when it is a plain token, else a new one."""
    given = _header(scope, b"x-request-id")
    return given if given and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + headers})
    await send({"type": "http.response.body", "body": body})


class Front:
    """The ASGI middleware in front of every request (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits, metrics: Metrics, paths: set[str]) -> None:
        self.app, self.limits, self.metrics, self.paths = app, limits, metrics, paths
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = request_id(scope)
        path = scope["path"] if scope["path"] in self.paths else "other"
        scope.setdefault("state", {}).update(request_id=rid, started=time.monotonic())
        status = 0

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", rid.encode())]
                if status == 413:  # the rest of the body is not read: this connection ends
                    extra.append((b"connection", b"close"))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        limit = self.limits.max_body_bytes
        error: BaseException | None = None
        try:
            if path not in OPS_PATHS and self.in_flight >= self.limits.max_concurrency:
                retry = str(self.limits.retry_after_s).encode()
                detail = f"busy: {self.in_flight} requests in flight (--max-concurrency)"
                await _answer(tagged, 429, detail, [(b"retry-after", retry)])
            elif (content_length(scope) or 0) > limit:
                await _answer(tagged, 413, too_large(limit).detail, [])
            else:
                self.in_flight += 1
                self.metrics.in_flight.inc()
                try:
                    await self.app(scope, limited_receive(receive, limit), tagged)
                finally:
                    self.in_flight -= 1
                    self.metrics.in_flight.dec()
        except Exception as e:  # a bug, not an input: one line, and an answer if none started
            error = e
            if not status:
                await _answer(tagged, 500, f"internal error (request id {rid})", [])
        self._record(scope, path, rid, status or 500, time.perf_counter() - t0, error)

    def _record(self, scope: Scope, path: str, rid: str, status: int, seconds: float,
                error: BaseException | None) -> None:  # fmt: skip
        m = self.metrics
        m.requests.labels(scope["method"], path, str(status)).inc()
        m.latency.labels(path).observe(seconds)
        if status >= 400:
            m.errors.labels(path, _reason(status)).inc()
        client = scope.get("client") or ("", 0)
        fields = {"request_id": rid, "method": scope["method"], "path": scope["path"],
                  "status": status, "ms": round(1000 * seconds, 2), "client": client[0]}  # fmt: skip
        if error is None:
            access.info("request", extra={"fields": fields})
            return
        fields["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        log.error("request failed", extra={"fields": fields})
        log.debug("traceback", exc_info=error, extra={"fields": {"request_id": rid}})


__all__ = [
    "METRICS_TYPE",
    "OPS_PATHS",
    "Fingerprint",
    "Front",
    "JsonLines",
    "Metrics",
    "configure_logging",
    "request_id",
]
