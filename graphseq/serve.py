"""HTTP API over a trained run (FastAPI): ``graphseq serve --run RUN --port 8000``.

Endpoints (OpenAPI docs at ``/docs``, schema at ``/openapi.json``):

* ``GET /health`` — model, user and item counts.
* ``GET /recommend?user=ID&k=10[&fallback=true]`` — top-``k`` for a known user, history
  excluded; an unknown user is a 404 unless ``fallback=true`` (popular items).
* ``GET /similar?item=ID&k=10`` — nearest items by cosine similarity; unknown item: 404;
  a model without item vectors (``pop``): 400.
* ``POST /recommend/history`` with ``{"items": [...], "k": 10}`` — an anonymous user whose
  history is ``items`` (oldest first); unknown items are skipped and listed in
  ``unknown_items``; a 404 when none is known.
* ``POST /recommend/batch`` with ``{"users": [...], "k": 10, "fallback": false}`` — top-``k``
  for up to 1,000 users in one request, scored in one batch (the same lists as
  ``/recommend``), in request order, repeats once. Unknown users, as in ``/recommend``: with
  ``fallback`` they get popular items (``"fallback": true``), without it they are left out;
  either way they are listed in ``unknown_users``. A 404 when no user is known and
  ``fallback`` is false.

The run is loaded once, when the app is created. Model calls are serialised by one lock
(torch parallelises inside each call). ``k`` is bounded to 1..1000, and a query parameter
that the endpoint does not take (a typo such as ``fallback_popular``) is a 422.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from graphseq import __version__
from graphseq.recommend import Run, load_run
from graphseq.rules import MAX_K, show_ids

MAX_HISTORY = 10_000  # longest anonymous history accepted (the model keeps max_seq_len)
MAX_BATCH = 1_000  # most users in one /recommend/batch request

K = Annotated[int, Query(ge=1, le=MAX_K, description=f"number of items to return (1..{MAX_K})")]


class ItemScore(BaseModel):
    item: str = Field(description="raw item id")
    score: float = Field(description="model score (cosine similarity for /similar)")


class Health(BaseModel):
    status: str
    model: str
    users: int
    items: int


class UserRecs(BaseModel):
    user: str
    fallback: bool = Field(description="true when the user is unknown and got popular items")
    items: list[ItemScore]


class SimilarItems(BaseModel):
    item: str
    items: list[ItemScore]


class HistoryRequest(BaseModel):
    items: list[str] = Field(
        min_length=1, max_length=MAX_HISTORY, description="raw item ids, oldest first"
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"number of items to return (1..{MAX_K})")


class BatchRequest(BaseModel):
    users: list[str] = Field(min_length=1, max_length=MAX_BATCH, description="raw user ids")
    k: int = Field(10, ge=1, le=MAX_K, description=f"number of items to return (1..{MAX_K})")
    fallback: bool = Field(False, description="popular items for unknown users")


class BatchRecs(BaseModel):
    results: list[UserRecs]
    unknown_users: list[str] = Field(
        default_factory=list, description="users not in the run (popular items or left out)"
    )


class HistoryRecs(BaseModel):
    items: list[ItemScore]
    unknown_items: list[str] = Field(
        default_factory=list, description="history items not in the catalogue (skipped)"
    )


def _unknown(kind: str, ids: list[str], hint: str = "") -> HTTPException:
    return HTTPException(
        404, f"unknown {kind} id{'s' if len(ids) > 1 else ''}: {show_ids(ids)}{hint}"
    )


def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the endpoint does not declare (no silent typos)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = {p.alias for p in route.dependant.query_params}
    for sub in route.dependant.dependencies:
        known |= {p.alias for p in sub.query_params}
    extra = [name for name in request.query_params if name not in known]
    if extra:
        valid = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter (this endpoint takes: {valid})",
                    "input": request.query_params[name],
                }
                for name in extra
            ]
        )


def create_app(
    run_dir: str | Path, allow_incomplete: bool = False, graph: str | Path | None = None
) -> FastAPI:
    """A FastAPI app serving the run in ``run_dir`` (loaded once, here; an unfinished run is
    refused unless ``allow_incomplete``; ``graph`` overrides its graph directory)."""
    run: Run = load_run(run_dir, allow_incomplete=allow_incomplete, graph=graph)
    users, items = run.id_maps["user"], run.id_maps["item"]
    lock = threading.Lock()
    app = FastAPI(
        title="graphseq",
        version=__version__,
        description=f"Recommendations from the run `{Path(run_dir).name}`: {run.model!r}.",
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.run = run

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", model=repr(run.model), users=len(users), items=len(items))

    @app.get("/recommend", response_model=UserRecs)
    def recommend(
        user: Annotated[str, Query(description="raw user id")],
        k: K = 10,
        fallback: Annotated[bool, Query(description="popular items for an unknown user")] = False,
    ) -> UserRecs:
        known = user in users
        if not known and not fallback:
            raise _unknown("user", [user], " (pass fallback=true for popular items)")
        with lock:
            recs = run.recommend_dict([user], k=k, fallback_popular=True)[user]
        return UserRecs(user=user, fallback=not known, items=recs)

    @app.get("/similar", response_model=SimilarItems)
    def similar(item: Annotated[str, Query(description="raw item id")], k: K = 10) -> SimilarItems:
        if not run.has_item_vectors:
            raise HTTPException(400, f"{run.model!r} has no item vectors, so no similar items")
        if item not in items:
            raise _unknown("item", [item])
        with lock:
            recs = run.similar_items_dict([item], k=k)[item]
        return SimilarItems(item=item, items=recs)

    @app.post("/recommend/batch", response_model=BatchRecs)
    def recommend_batch(req: BatchRequest) -> BatchRecs:
        wanted = list(dict.fromkeys(req.users))
        known, unknown = run.split_known("user", wanted)
        if not known and not req.fallback:
            raise _unknown("user", unknown, " (pass fallback=true for popular items)")
        asked = wanted if req.fallback else known
        with lock:
            recs = run.recommend_dict(asked, k=req.k, fallback_popular=True)
        missing = set(unknown)
        results = [UserRecs(user=u, fallback=u in missing, items=recs[u]) for u in asked]
        return BatchRecs(results=results, unknown_users=unknown)

    @app.post("/recommend/history", response_model=HistoryRecs)
    def recommend_history(req: HistoryRequest) -> HistoryRecs:
        known, unknown = run.split_known("item", req.items)
        if not known:
            raise _unknown("item", unknown, " (no item of the history is known)")
        with lock:
            recs = run.recommend_history_list(known, k=req.k)
        return HistoryRecs(items=recs, unknown_items=unknown)

    return app


__all__ = ["MAX_BATCH", "MAX_HISTORY", "create_app", "reject_unknown_query"]
