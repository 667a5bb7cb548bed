"""Property-based fuzzing of the POST endpoints' bodies (hypothesis, through TestClient):
whatever JSON-ish bytes arrive, the answer is below 500 and its body is strict JSON."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from graphseq.serve import Limits, create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ["users", "items", "k", "fallback", "unknown", "topk", ""]
# text with lone surrogates, control characters and the run's own ids
TEXT = st.one_of(st.text(st.characters(exclude_categories=()), max_size=12),
                 st.sampled_from(["u1", "u7", "i3", "i42", "skip", "raise", "\ud800"]))  # fmt: skip
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-3, max_value=1200),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
)  # fmt: skip
VALUE = st.recursive(SCALAR, lambda v: st.lists(v, max_size=6)
                     | st.dictionaries(TEXT, v, max_size=4), max_leaves=20)  # fmt: skip
BODY = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(KEYS), TEXT), VALUE, max_size=5),
    st.fixed_dictionaries({"users": st.lists(TEXT, max_size=30)},
                          optional={"k": SCALAR, "fallback": SCALAR, "unknown": SCALAR}),
    st.fixed_dictionaries({"items": st.lists(TEXT, max_size=30)},
                          optional={"k": SCALAR, "unknown": SCALAR}),
    VALUE,
)  # fmt: skip


@pytest.fixture(scope="module")
def client(serve_run_dir):
    limits = Limits(max_history=20, max_batch_users=20, max_batch_items=2000)
    with TestClient(create_app(serve_run_dir, limits=limits)) as c:
        yield c


def _check(r) -> None:
    assert r.status_code < 500, r.text
    json.loads(r.content, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))


@pytest.mark.parametrize("path", ["/recommend/batch", "/recommend/history"])
@FUZZ
@given(body=BODY)
def test_json_bodies_never_get_a_5xx(client, path, body):
    raw = json.dumps(body, allow_nan=True).encode()  # NaN, Infinity; surrogates as \\ud800
    _check(client.post(path, content=raw, headers={"Content-Type": "application/json"}))


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200))
def test_raw_bytes_never_get_a_5xx(client, raw):
    _check(client.post("/recommend/batch", content=raw,
                       headers={"Content-Type": "application/json"}))  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(params=st.dictionaries(st.sampled_from(["user", "item", "k", "fallback", "x"]),
                              st.text(max_size=10), max_size=4))  # fmt: skip
def test_query_strings_never_get_a_5xx(client, params):
    _check(client.get("/recommend", params=params))
    _check(client.get("/similar", params=params))
