"""The FastAPI app over a trained run: :func:`create_app` (the endpoints are listed in
:mod:`graphseq.serve`)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from graphseq import __version__
from graphseq.recommend import Run, load_run
from graphseq.rules import MAX_K, show_ids
from graphseq.serve.limits import Limits
from graphseq.serve.ops import METRICS_TYPE, Fingerprint, Front, Metrics
from graphseq.serve.schemas import (
    BatchRecs,
    BatchRequest,
    Health,
    HistoryRecs,
    HistoryRequest,
    Ready,
    SimilarItems,
    UserRecs,
)
from graphseq.serve.scoring import Scorer, Waiter
from graphseq.serve.validate import (
    StrictJSONRoute,
    invalid,
    reject_unknown_query,
    validation_error,
)
from graphseq.training.runfiles import run_file_paths

K = Annotated[int, Query(ge=1, le=MAX_K, description=f"number of items to return (1..{MAX_K})")]
JSON = "application/json"
ID_CHARS = 100  # characters of an unknown id named in a 404


def _unknown(kind: str, ids: list[str], hint: str = "") -> HTTPException:
    """A 404 naming the first few ``ids``, each cut to ``ID_CHARS`` (no long echo)."""
    count = f" ({len(ids):,} in all)" if len(ids) > 5 else ""
    short = [i if len(i) <= ID_CHARS else i[:ID_CHARS] + "…" for i in ids[:6]]
    return HTTPException(
        404, f"unknown {kind} id{'s' if len(ids) > 1 else ''}: {show_ids(short)}{count}{hint}"
    )


def _user(user: str, fallback: bool, items: str) -> str:
    return f'{{"user":{json.dumps(user)},"fallback":{json.dumps(fallback)},"items":{items}}}'


def _split(run: Run, kind: str, ids: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """``([(id, row) ...], unknown ids)``, both in ``ids`` order, unknown ones once each."""
    rows = run.positions(kind, ids)
    known = [(i, int(r)) for i, r in zip(ids, rows) if r >= 0]
    return known, list(dict.fromkeys(i for i, r in zip(ids, rows) if r < 0))


def create_app(
    run_dir: str | Path,
    allow_incomplete: bool = False,
    graph: str | Path | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """A FastAPI app serving the run in ``run_dir``, loaded once, here (every file checked
    first; an unfinished run is refused unless ``allow_incomplete``; ``graph`` overrides its
    graph directory), bounded by ``limits`` (default :class:`Limits`)."""
    limits = limits or Limits()
    run: Run = load_run(run_dir, allow_incomplete=allow_incomplete, graph=graph)
    files = Fingerprint.of(run_file_paths(run.path, run.cfg.graph))
    metrics = Metrics()
    scorer = Scorer(run, limits.score_threads, limits.chunk_users, metrics.model_rows.observe)
    users, items = run.id_maps["user"], run.id_maps["item"]
    state = {"serving": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await scorer.warm_up()  # the first model calls are slow: not a client's
        state["serving"] = True
        try:
            yield
        finally:
            state["serving"] = False
            scorer.close()

    app = FastAPI(
        title="graphseq",
        version=__version__,
        description=f"Recommendations from the run `{Path(run_dir).name}`: {run.model!r}.",
        dependencies=[Depends(reject_unknown_query)],
        lifespan=lifespan,
    )
    app.router.route_class = StrictJSONRoute
    app.add_exception_handler(RequestValidationError, validation_error)
    app.state.run, app.state.scorer, app.state.limits = run, scorer, limits

    def waiter(request: Request) -> Waiter:
        started = request.state.started if hasattr(request.state, "started") else time.monotonic()
        return Waiter(started + limits.timeout_s, limits.timeout_s, request)

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Liveness: the process answers (whatever the state of the run's files)."""
        return Health(status="ok", model=repr(run.model), users=len(users), items=len(items))

    @app.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
    async def ready(response: Response) -> Ready:
        """Readiness: the model is loaded and every run file is as it was loaded."""
        changed = files.changed()
        if state["serving"] and not changed:
            return Ready(status="ready")
        response.status_code = 503
        if changed:
            return Ready(status="not ready", reason="run files changed since they were loaded "
                         "(restart to serve them)", changed=changed)  # fmt: skip
        return Ready(status="not ready", reason="not serving (starting or stopping)")

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Request counts, latency histograms and errors (Prometheus text format)."""
        return Response(metrics.render(), media_type=METRICS_TYPE)

    @app.get("/recommend", response_model=UserRecs)
    async def recommend(
        request: Request,
        user: Annotated[str, Query(description="raw user id")],
        k: K = 10,
        fallback: Annotated[bool, Query(description="popular items for an unknown user")] = False,
    ) -> Response:
        row = int(run.positions("user", [user])[0])
        if row < 0 and not fallback:
            raise _unknown("user", [user], " (pass fallback=true for popular items)")
        if row < 0:
            return Response(_user(user, True, scorer.popular(k)), media_type=JSON)
        (recs,) = await scorer.users(waiter(request), [row], k)
        return Response(_user(user, False, recs), media_type=JSON)

    @app.get("/similar", response_model=SimilarItems)
    async def similar(
        request: Request, item: Annotated[str, Query(description="raw item id")], k: K = 10
    ) -> Response:
        if not run.has_item_vectors:
            raise HTTPException(400, f"{run.model!r} has no item vectors, so no similar items")
        row = int(run.positions("item", [item])[0])
        if row < 0:
            raise _unknown("item", [item])
        recs = await scorer.call(waiter(request), scorer.similar, row, k)
        return Response(f'{{"item":{json.dumps(item)},"items":{recs}}}', media_type=JSON)

    @app.post("/recommend/batch", response_model=BatchRecs)
    async def recommend_batch(request: Request, req: BatchRequest) -> Response:
        if len(req.users) > limits.max_batch_users:
            raise invalid(("body", "users"), f"at most {limits.max_batch_users:,} users in "
                          "one batch (--max-batch-users)", "too_long")  # fmt: skip
        wanted = list(dict.fromkeys(req.users))
        if len(wanted) * req.k > limits.max_batch_items:
            raise invalid(("body", "k"), f"users × k is {len(wanted) * req.k:,}, more than "
                          f"{limits.max_batch_items:,} (--max-batch-items)")  # fmt: skip
        known, unknown = _split(run, "user", wanted)
        if unknown and not req.fallback and (req.unknown == "raise" or not known):
            raise _unknown("user", unknown, " (pass fallback=true for popular items)")
        recs = dict(zip((u for u, _ in known),
                        await scorer.users(waiter(request), [r for _, r in known], req.k)))  # fmt: skip
        missing = set(unknown)
        results = [
            _user(u, u in missing, recs[u] if u in recs else scorer.popular(req.k))
            for u in wanted
            if u in recs or req.fallback
        ]
        echo = json.dumps(unknown[: limits.max_echo])
        body = f'{{"results":[{",".join(results)}],"unknown_users":{echo},"unknown_count":{len(unknown)}}}'
        return Response(body, media_type=JSON)

    @app.post("/recommend/history", response_model=HistoryRecs)
    async def recommend_history(request: Request, req: HistoryRequest) -> Response:
        if len(req.items) > limits.max_history:
            raise invalid(("body", "items"), f"at most {limits.max_history:,} items in a "
                          "history (--max-history)", "too_long")  # fmt: skip
        known, unknown = _split(run, "item", req.items)
        if not known or (unknown and req.unknown == "raise"):
            hint = " (no item of the history is known)" if not known else ""
            raise _unknown("item", unknown, hint)
        recs = await scorer.call(waiter(request), scorer.history, [r for _, r in known], req.k)
        echo = json.dumps(unknown[: limits.max_echo])
        body = f'{{"items":{recs},"unknown_items":{echo},"unknown_count":{len(unknown)}}}'
        return Response(body, media_type=JSON)

    paths = {r.path for r in app.routes if hasattr(r, "path")}
    app.add_middleware(Front, limits=limits, metrics=metrics, paths=paths)
    return app


__all__ = ["create_app"]
