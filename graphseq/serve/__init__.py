"""HTTP API over a trained run (FastAPI): ``graphseq serve --run RUN --port 8000``.

Endpoints (OpenAPI docs at ``/docs``, schema at ``/openapi.json``):

* ``GET /health`` — liveness: model, user and item counts.
* ``GET /ready`` — readiness: 200 when the model is loaded and every file it was loaded from
  is unchanged on disk (size, time, inode), else 503 with the changed files.
* ``GET /metrics`` — Prometheus text: requests, latency histograms, errors by reason,
  requests in flight, users per model call.
* ``GET /recommend?user=ID&k=10[&fallback=true]`` — top-``k`` for a known user, history
  excluded; an unknown user is a 404 unless ``fallback=true`` (popular items).
* ``GET /similar?item=ID&k=10`` — nearest items by cosine similarity; unknown item: 404;
  a model without item vectors (``pop``): 400.
* ``POST /recommend/history`` with ``{"items": [...], "k": 10, "unknown": "skip"}`` — an
  anonymous user whose history is ``items`` (oldest first); unknown items are skipped and
  listed (``"unknown": "skip"``) or refused with a 404 (``"raise"``); a 404 when none is known.
* ``POST /recommend/batch`` with ``{"users": [...], "k": 10, "fallback": false,
  "unknown": "skip"}`` — top-``k`` for many users, in request order, repeats once. With
  ``fallback`` unknown users get popular items (``"fallback": true`` in their result);
  without it they are left out and listed (``"skip"``) or refused with a 404 (``"raise"``).
  A 404 when no user is known and ``fallback`` is false.

Unknown ids are listed up to ``max_echo`` (20) with their ``unknown_count``. Bodies are
strict (:mod:`graphseq.serve.schemas`, :mod:`graphseq.serve.validate`): every malformed
request is a 4xx. The bounds (:class:`Limits`) and their defaults are in
:mod:`graphseq.serve.limits`; the model calls, in shared chunks off the event loop, in
:mod:`graphseq.serve.scoring`; logs, metrics and readiness in :mod:`graphseq.serve.ops`;
several worker processes in :mod:`graphseq.serve.workers`.
"""

from __future__ import annotations

import importlib
from typing import Any

from graphseq.serve.limits import Limits

MAX_HISTORY = Limits.max_history  # the default bounds, under their old names
MAX_BATCH = Limits.max_batch_users

# imported when first used, so that the CLI reads Limits without importing the server
_LAZY = {
    "create_app": "graphseq.serve.app",
    "configure_logging": "graphseq.serve.ops",
    "BatchRequest": "graphseq.serve.schemas",
    "HistoryRequest": "graphseq.serve.schemas",
    "reject_unknown_query": "graphseq.serve.validate",
    "serve": "graphseq.serve.workers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graphseq.serve' has no attribute {name!r}")


__all__ = [
    "MAX_BATCH",
    "MAX_HISTORY",
    "BatchRequest",
    "HistoryRequest",
    "Limits",
    "configure_logging",
    "create_app",
    "reject_unknown_query",
    "serve",
]
