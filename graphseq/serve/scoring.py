"""Model calls off the event loop: a bounded pool of threads, users scored in shared chunks.

Every model call runs in :class:`Scorer`'s pool (``score_threads`` threads), never on the
event loop, so the server keeps reading requests, answering ``/health`` and refusing work
while the model runs. Users to recommend for wait in one queue; each call takes up to
``chunk_users`` of them, whichever requests they came from. A batch puts its users in one
chunk at a time and waits for it before the next, so a single user that arrives during a
1,000-user batch is scored within a chunk or two, not after the batch; and concurrent single
requests share model calls, which is most of the throughput at concurrency 8.

A user's scores do not depend on the request they came in, bit for bit: every model call
has the same shape, ``chunk`` rows (a short chunk is padded with the user of the longest
history, whose answer is dropped) and so the same padded history length, and the matrix
products then round each row the same way wherever it sits and whoever shares the call.
``/recommend`` and ``/recommend/batch`` give one user the same floats; the Python API
(:meth:`graphseq.recommend.Run.recommend_dict`, one call of whatever size) agrees with them
up to float32 rounding (~1e-7).

A waiting request gives up at its deadline (504) or when its client disconnects (its users
not yet scored are dropped from the queue); a model call already running finishes, and
that bounds the work left behind to one chunk.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from starlette.exceptions import HTTPException
from starlette.requests import Request
from torch import Tensor

from graphseq.recommend import Run

T = TypeVar("T")
POLL_S = 0.05  # how often a waiting request checks whether its client is still there


class Overdue(HTTPException):
    """The request's deadline passed before its answer was ready (504)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(504, f"not answered within the {timeout_s:g} s deadline (--timeout-s)")


class ClientGone(HTTPException):
    """The client disconnected while its request waited (499, as nginx logs it)."""

    def __init__(self) -> None:
        super().__init__(499, "client closed the connection")


@dataclass
class Waiter:
    """How long a request may wait for its results, and for whom (``request``: checked for
    a disconnect every ``POLL_S``; ``None``: not checked)."""

    deadline: float  # time.monotonic() by which the answer is due
    timeout_s: float
    request: Request | None = None

    async def wait(self, futures: Sequence[asyncio.Future]) -> list[Any]:
        """The futures' results; cancels them all on the deadline, a disconnect or an error."""
        try:
            while True:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise Overdue(self.timeout_s)
                _, pending = await asyncio.wait(futures, timeout=min(POLL_S, left))
                if not pending:
                    return [f.result() for f in futures]
                if self.request is not None and await self.request.is_disconnected():
                    raise ClientGone()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


@dataclass
class _Wanted:
    """One user waiting in the queue: its row, its k, and where its answer goes."""

    row: int
    k: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _deliver(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile: the request gave up
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class Scorer:
    """The model calls of one server process (see the module docstring).

    Args:
        run: the loaded run.
        threads: threads of the pool (default 1: torch parallelises inside each call).
        chunk: most users per model call.
        on_call: called with the number of users of each model call (metrics).
    """

    def __init__(
        self,
        run: Run,
        threads: int = 1,
        chunk: int = 8,
        on_call: Callable[[int], None] | None = None,
    ) -> None:
        self.run, self.threads, self.chunk = run, threads, chunk
        self.on_call = on_call or (lambda n: None)
        self._pool: ThreadPoolExecutor | None = None
        self._queue: deque[_Wanted] = deque()
        self._lock = threading.Lock()
        self._flushing = False
        # each item's id as JSON, once: answers are written without a dict per item
        self._item_json = [json.dumps(str(i)) for i in run.id_maps["item"]]
        self._popular: dict[int, str] = {}
        ptr, _ = run._user_csr()  # the lazy per-user index, built here, not by two threads
        # the user of the longest history pads short chunks: every call has one shape
        self._filler = int(torch.argmax(ptr[1:] - ptr[:-1])) if len(ptr) > 1 else 0

    # ---- the pool ------------------------------------------------------------------------
    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:  # started lazily: a server forked after loading starts its own
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="graphseq-score")
        return self._pool

    def close(self) -> None:
        """Stop the pool; queued calls are dropped (the server is shutting down)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def call(self, waiter: Waiter, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the pool, awaited by ``waiter``'s rules."""
        (result,) = await waiter.wait([asyncio.wrap_future(self.pool.submit(fn, *args))])
        return result

    async def warm_up(self, timeout_s: float = 300.0) -> None:
        """One user and one history scored, so that no client waits for the first calls."""
        waiter = Waiter(time.monotonic() + timeout_s, timeout_s)
        if self.run.ev.num_users:
            await self.users(waiter, [0], 1)
        if self.run.ev.num_items:
            await self.call(waiter, self.history, [0], 1)

    # ---- users, in shared chunks -------------------------------------------------------------
    async def users(self, waiter: Waiter, rows: Sequence[int], k: int) -> list[str]:
        """Each user's top-``k`` as a JSON array of ``{"item", "score"}``, in ``rows`` order;
        more than ``chunk`` rows go in one chunk at a time."""
        out: list[str] = []
        for s in range(0, len(rows), self.chunk):
            out += await waiter.wait(self._enqueue(rows[s : s + self.chunk], k))
        return out

    def _enqueue(self, rows: Sequence[int], k: int) -> list[asyncio.Future]:
        loop = asyncio.get_running_loop()
        wanted = [_Wanted(int(r), k, loop.create_future(), loop) for r in rows]
        with self._lock:
            self._queue.extend(wanted)
            start = not self._flushing
            self._flushing = True
        if start:
            self.pool.submit(self._flush)
        return [w.future for w in wanted]

    def _flush(self) -> None:
        """One model call over the first ``chunk`` users of the queue (in a pool thread)."""
        with self._lock:
            take: list[_Wanted] = []
            while self._queue and len(take) < self.chunk:
                w = self._queue.popleft()
                if not w.future.cancelled():
                    take.append(w)
            if self._queue:
                self.pool.submit(self._flush)
            else:
                self._flushing = False
        if not take:
            return
        try:
            self.on_call(len(take))
            rows = [w.row for w in take] + [self._filler] * (self.chunk - len(take))
            with torch.inference_mode():
                scores = self.run.user_scores(torch.tensor(rows))[: len(take)]  # (B, I)
                answers = self.lists(scores, [w.k for w in take])
            for w, a in zip(take, answers):
                w.loop.call_soon_threadsafe(_deliver, w.future, a, None)
        except BaseException as e:  # every waiting request hears of it
            for w in take:
                w.loop.call_soon_threadsafe(_deliver, w.future, None, e)

    # ---- answers as JSON -------------------------------------------------------------------
    def lists(self, scores: Tensor, ks: Sequence[int]) -> list[str]:
        """Row i's top-``ks[i]`` of ``scores`` (B, I) as a JSON array of ``{"item", "score"}``;
        excluded items (-inf) and any other non-finite score are left out."""
        vals, idx = self.run.top(scores, max(ks))
        out = []
        for v, i, k in zip(vals.tolist(), idx.tolist(), ks):
            out.append("[" + ",".join(
                f'{{"item":{self._item_json[j]},"score":{s!r}}}'
                for j, s in zip(i[:k], v[:k]) if math.isfinite(s)
            ) + "]")  # fmt: skip
        return out

    def popular(self, k: int) -> str:
        """The popular fallback's top-``k`` as JSON (computed once per k)."""
        if k not in self._popular:
            self._popular[k] = self.lists(self.run.popularity()[None], [k])[0]
        return self._popular[k]

    def history(self, rows: Sequence[int], k: int) -> str:
        """Top-``k`` for an anonymous history of item ``rows`` as JSON (in the pool)."""
        with torch.inference_mode():
            return self.lists(self.run.history_scores(list(rows)), [k])[0]

    def similar(self, row: int, k: int) -> str:
        """The ``k`` nearest items of item ``row`` as JSON (in the pool)."""
        with torch.inference_mode():
            return self.lists(self.run.similar_scores([row]), [k])[0]


__all__ = ["ClientGone", "Overdue", "Scorer", "Waiter"]
