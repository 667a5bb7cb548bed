"""Request validation that no input gets past as a 500.

* :class:`StrictJSONRoute` parses JSON bodies strictly: ``NaN``, ``Infinity``, numbers out of
  float range, integers of more than 4,300 digits, bytes that are not UTF-8 and nesting too
  deep for the parser are all a 422 ``json_invalid``, like any malformed JSON.
* :func:`validation_error` answers every 422 with ``{"detail": [{"type", "loc", "msg"}]}``
  and an ``input`` only when it is a short JSON scalar: an echo never holds a value that
  cannot be written as JSON (NaN, a lone surrogate) nor a large one.
* :func:`reject_unknown_query` makes a query parameter the endpoint does not take a 422, as
  ``extra="forbid"`` does for body keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

MAX_ECHO_CHARS = 100  # characters of a string input echoed in a 422


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a float")
    return value


def strict_loads(body: bytes) -> Any:
    """``json.loads`` that refuses what RFC 8259 does not allow, as a ``JSONDecodeError``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise json.JSONDecodeError("body is not UTF-8", "", e.start) from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError as e:  # the refusals above, and ints of too many digits
        raise json.JSONDecodeError(str(e).split(";")[0], text, 0) from None


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON bodies are read with :func:`strict_loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


def safe_text(value: object) -> str:
    """``value`` as text that can be written as UTF-8 (a lone surrogate becomes ``\\ud800``)."""
    s = str(value)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def _echo(value: Any) -> tuple[bool, Any]:
    """``(True, value)`` for an input that is safe and short to echo back, else ``(False, _)``."""
    if value is None or isinstance(value, bool):
        return True, value
    if isinstance(value, int):
        return abs(value) < 10**18, value
    if isinstance(value, float):
        return math.isfinite(value), value
    if isinstance(value, str):
        s = safe_text(value)
        return True, s if len(s) <= MAX_ECHO_CHARS else s[:MAX_ECHO_CHARS] + "…"
    return False, None


def clean_errors(errors: list[dict]) -> list[dict]:
    """pydantic's errors with nothing in them that JSON cannot hold, nor anything long."""
    out = []
    for e in errors:
        item = {
            "type": safe_text(e.get("type", "value_error")),
            "loc": [x if isinstance(x, int) else safe_text(x) for x in e.get("loc", ())],
            "msg": safe_text(e.get("msg", "")),
        }
        ok, value = _echo(e.get("input"))
        if ok and e.get("type") != "json_invalid":  # the input of a JSON error is the body
            item["input"] = value
        if e.get("type") == "json_invalid" and "error" in e.get("ctx", {}):
            item["msg"] = f"JSON decode error: {safe_text(e['ctx']['error'])}"
        out.append(item)
    return out


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The 422 answer of a request that failed validation (see :func:`clean_errors`)."""
    return JSONResponse({"detail": clean_errors(list(exc.errors()))}, status_code=422)


def invalid(loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> Exception:
    """A 422 of the same shape as pydantic's, for a bound checked by the endpoint."""
    return RequestValidationError([{"type": kind, "loc": loc, "msg": msg}])


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the endpoint does not declare (no silent typos); async, so
    it runs on the event loop rather than in a thread of its own."""
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


__all__ = [
    "StrictJSONRoute",
    "clean_errors",
    "invalid",
    "reject_unknown_query",
    "safe_text",
    "strict_loads",
    "validation_error",
]
