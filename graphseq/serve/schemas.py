"""The JSON the server reads and writes (pydantic models; the OpenAPI schema at ``/openapi.json``).

Request bodies are strict: an unknown key is a 422 (``extra="forbid"``, as an unknown query
parameter is), and no type is coerced (``"k": true`` or ``"k": "10"`` is a 422, not k = 1 or
10). An id must be text that UTF-8 can hold (a lone surrogate such as ``"\\ud800"`` is a 422).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from graphseq.rules import MAX_K

Unknown = Literal["skip", "raise"]  # the rule for unknown ids, as in the Python API


def _text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid text (a lone surrogate): ids are UTF-8 text") from None
    return value


Id = Annotated[str, AfterValidator(_text)]


def _k() -> int:
    return Field(10, ge=1, le=MAX_K, description=f"number of items to return (1..{MAX_K})")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HistoryRequest(_Body):
    items: list[Id] = Field(
        min_length=1, description="raw item ids, oldest first (at most --max-history)"
    )
    k: int = _k()
    unknown: Unknown = Field(
        "skip", description="unknown items: skip (left out and listed) or raise (a 404)"
    )


class BatchRequest(_Body):
    users: list[Id] = Field(min_length=1, description="raw user ids (at most --max-batch-users)")
    k: int = _k()
    fallback: bool = Field(False, description="popular items for unknown users")
    unknown: Unknown = Field(
        "skip",
        description="unknown users without fallback: skip (left out and listed) or raise (a 404)",
    )


class ItemScore(BaseModel):
    item: str = Field(description="raw item id")
    score: float = Field(description="model score (cosine similarity for /similar)")


class Health(BaseModel):
    status: str
    model: str
    users: int
    items: int


class Ready(BaseModel):
    status: str = Field(description="ready, or not ready (with a 503)")
    reason: str = Field("", description="why not")
    changed: list[str] = Field(default_factory=list, description="run files changed since load")


class UserRecs(BaseModel):
    user: str
    fallback: bool = Field(description="true when the user is unknown and got popular items")
    items: list[ItemScore]


class SimilarItems(BaseModel):
    item: str
    items: list[ItemScore]


class BatchRecs(BaseModel):
    results: list[UserRecs]
    unknown_users: list[str] = Field(
        default_factory=list, description="users not in the run (the first --max-echo of them)"
    )
    unknown_count: int = Field(0, description="how many users were not in the run")


class HistoryRecs(BaseModel):
    items: list[ItemScore]
    unknown_items: list[str] = Field(
        default_factory=list, description="history items not in the catalogue, skipped (the "
        "first --max-echo of them)",
    )  # fmt: skip
    unknown_count: int = Field(0, description="how many history items were not in the catalogue")


__all__ = [
    "BatchRecs",
    "BatchRequest",
    "Health",
    "HistoryRecs",
    "HistoryRequest",
    "Id",
    "ItemScore",
    "Ready",
    "SimilarItems",
    "Unknown",
    "UserRecs",
]
