"""The bounds of one server process (``graphseq serve --max-body-bytes ...``); import-light,
so the CLI takes its defaults without importing the server.

Every bound answers with a 4xx before the work it would cost is done: a body over
``max_body_bytes`` is a 413 (by its Content-Length, or as soon as the streamed bytes pass
it), a history or a batch over its bound a 422, a request not answered within ``timeout_s``
a 504, and a request beyond ``max_concurrency`` in flight a 429 with ``Retry-After``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how much work one process takes on at once."""

    max_body_bytes: int = 1_048_576  # 1 MiB: a 1,000-user batch of 40-character ids is ~45 KB
    max_history: int = 10_000  # items in one anonymous history (the model reads the last ones)
    max_batch_users: int = 1_000  # users in one /recommend/batch
    max_batch_items: int = 100_000  # users × k in one /recommend/batch (1,000 users at k = 100)
    timeout_s: float = 10.0  # per-request deadline: a request not answered by then gets a 504
    max_concurrency: int = 64  # requests in flight in one process; one more gets a 429
    retry_after_s: int = 1  # the Retry-After (seconds) of a 429
    max_echo: int = 20  # unknown ids listed in an answer (unknown_count counts them all)
    score_threads: int = 1  # threads that run the model (torch parallelises inside each call)
    chunk_users: int = 8  # rows of every model call: batches go in chunks, singles join them

    def __post_init__(self) -> None:
        from data_builders.errors import DataError  # here: data_builders imports pandas

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise DataError(f"serve limit {f.name} must be a positive number, got {value!r}")


__all__ = ["Limits"]
