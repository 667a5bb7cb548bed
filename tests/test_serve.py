"""The HTTP API (graphseq.serve) against the Run API it wraps, on a small trained run."""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402

with warnings.catch_warnings():  # starlette's notice that its httpx-based client is deprecated
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from data_builders.errors import DataError  # noqa: E402
from graphseq.config import TrainConfig  # noqa: E402
from graphseq.recommend import load_run  # noqa: E402
from graphseq.rules import MAX_K  # noqa: E402
from graphseq.serve import (  # noqa: E402
    MAX_BATCH,
    MAX_HISTORY,
    BatchRequest,
    HistoryRequest,
    create_app,
)
from graphseq.training.trainer import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(serve_run_dir):
    return serve_run_dir


@pytest.fixture(scope="module")
def run(run_dir):
    return load_run(run_dir)


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(run_dir)) as c:
        yield c


def _bought(run, user: str) -> set[str]:
    """Raw ids of the user's target-behavior items (what recommendations must exclude)."""
    u = run.id_maps["user"].get_loc(user)
    ev = run.ev
    idx = ev.item[(ev.user == u) & ev.is_target].numpy()
    return set(run.id_maps["item"][idx])


def test_health(client, run):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "model": repr(run.model),
        "users": 120,
        "items": len(run.id_maps["item"]),
    }
    assert r.json()["model"].startswith("GraphSeq(120u")


@pytest.mark.parametrize("user", ["u0", "u7", "u119"])
def test_recommend_equals_run(client, run, user):
    r = client.get("/recommend", params={"user": user, "k": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == user and body["fallback"] is False
    want = run.recommend_dict([user], k=10)[user]  # one model call of another shape: rounding
    assert [x["item"] for x in body["items"]] == [x["item"] for x in want]
    assert [x["score"] for x in body["items"]] == pytest.approx(
        [x["score"] for x in want], abs=1e-6
    )
    scores = [x["score"] for x in body["items"]]
    assert len(scores) == 10 and scores == sorted(scores, reverse=True)


def test_an_id_that_is_not_text_is_unknown(run):
    assert list(run.positions("item", ["\ud800", "\u00e9\ud800", "i1"]))[:2] == [-1, -1]


def test_recommend_excludes_history(client, run):
    user = "u3"
    bought = _bought(run, user)
    assert bought
    r = client.get("/recommend", params={"user": user, "k": 1000})
    got = [x["item"] for x in r.json()["items"]]
    assert not bought & set(got)
    assert len(got) == len(set(got)) == len(run.id_maps["item"]) - len(bought)


def test_unknown_user(client, run):
    r = client.get("/recommend", params={"user": "nobody"})
    assert r.status_code == 404
    assert "unknown user id: 'nobody'" in r.json()["detail"]
    assert "fallback=true" in r.json()["detail"]

    r = client.get("/recommend", params={"user": "nobody", "k": 5, "fallback": "true"})
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is True
    assert body["items"] == run.recommend_dict(["nobody"], k=5, fallback_popular=True)["nobody"]
    counts = torch.bincount(run.ev.item[run.ev.is_target], minlength=run.ev.num_items)
    top = run.id_maps["item"][int(torch.argmax(counts))]
    share = float(counts.max()) / float(counts.sum())  # the fallback scores a share, not a count
    assert body["items"][0]["item"] == top
    assert body["items"][0]["score"] == pytest.approx(share)


@pytest.mark.parametrize(
    "params",
    [{"user": "u0", "k": 0}, {"user": "u0", "k": 1001}, {"user": "u0", "k": "ten"}, {"k": 5}],
)
def test_recommend_validation(client, params):
    assert client.get("/recommend", params=params).status_code == 422


def test_k_upper_bound_is_allowed(client, run):
    r = client.get("/similar", params={"item": "i0", "k": 1000})
    assert r.status_code == 200
    assert len(r.json()["items"]) == len(run.id_maps["item"]) - 1  # all but the query item


def test_similar(client, run):
    r = client.get("/similar", params={"item": "i5", "k": 8})
    assert r.status_code == 200
    body = r.json()
    assert body["item"] == "i5"
    assert body["items"] == run.similar_items_dict(["i5"], k=8)["i5"]
    assert "i5" not in {x["item"] for x in body["items"]}
    scores = [x["score"] for x in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for s in scores)

    r = client.get("/similar", params={"item": "nope"})
    assert r.status_code == 404 and "unknown item id: 'nope'" in r.json()["detail"]
    assert client.get("/similar", params={"item": "i5", "k": 0}).status_code == 422


def test_recommend_history(client, run):
    hist = ["i3", "i10", "i3", "i42"]
    r = client.post("/recommend/history", json={"items": hist, "k": 7})
    assert r.status_code == 200
    got = r.json()["items"]
    assert got == run.recommend_history_list(hist, k=7)
    assert len(got) == 7 and not {x["item"] for x in got} & set(hist)

    r = client.post("/recommend/history", json={"items": hist, "k": 1000})
    assert len(r.json()["items"]) == len(run.id_maps["item"]) - len(set(hist))

    default_k = client.post("/recommend/history", json={"items": hist}).json()["items"]
    assert len(default_k) == 10


def test_recommend_history_skips_unknown_items(client, run):
    r = client.post("/recommend/history", json={"items": ["i1", "zz", "i2", "yy", "zz"], "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["unknown_items"] == ["zz", "yy"]
    assert body["items"] == run.recommend_history_list(["i1", "i2"], k=5)
    known = client.post("/recommend/history", json={"items": ["i1", "i2"]}).json()
    assert known["unknown_items"] == []


def test_recommend_history_errors(client):
    r = client.post("/recommend/history", json={"items": ["zz", "yy"]})
    assert r.status_code == 404
    assert r.json()["detail"] == "unknown item ids: 'zz', 'yy' (no item of the history is known)"
    assert client.post("/recommend/history", json={"items": []}).status_code == 422
    assert client.post("/recommend/history", json={"items": ["i1"], "k": 0}).status_code == 422
    assert client.post("/recommend/history", json={"k": 3}).status_code == 422


def test_recommend_batch_equals_one_user_requests(client, run):
    users = [str(u) for u in run.id_maps["user"][:5]]
    res = client.post("/recommend/batch", json={"users": users + users[:1], "k": MAX_K})
    assert res.status_code == 200
    body = res.json()
    assert [r["user"] for r in body["results"]] == users and body["unknown_users"] == []
    for r in body["results"]:  # the same floats: every model call has one shape
        one = client.get("/recommend", params={"user": r["user"], "k": MAX_K}).json()
        assert r["items"] == one["items"]
        assert r["fallback"] is one["fallback"] is False
    # and whoever shares the call: the same users among others, in another order
    others = [str(u) for u in run.id_maps["user"][40:70]]
    again = client.post("/recommend/batch", json={"users": others + users[::-1], "k": 30}).json()
    assert {r["user"]: r["items"] for r in again["results"][30:]} == {
        r["user"]: r["items"][:30] for r in body["results"]
    }


def test_recommend_batch_unknown_users(client, run):
    u = str(run.id_maps["user"][0])
    body = client.post("/recommend/batch", json={"users": ["nobody", u], "k": 3}).json()
    assert [r["user"] for r in body["results"]] == [u] and body["unknown_users"] == ["nobody"]
    body = client.post(
        "/recommend/batch", json={"users": ["nobody", u], "k": 3, "fallback": True}
    ).json()
    assert [(r["user"], r["fallback"]) for r in body["results"]] == [("nobody", True), (u, False)]
    pop = client.get("/recommend", params={"user": "nobody", "k": 3, "fallback": "true"}).json()
    assert body["results"][0]["items"] == pop["items"]
    res = client.post("/recommend/batch", json={"users": ["nobody", "nope"]})
    assert res.status_code == 404 and "'nobody', 'nope'" in res.json()["detail"]
    for bad in ({"users": []}, {"users": [u], "k": 0}, {"users": [u], "k": MAX_K + 1},
                {"users": [u] * (MAX_BATCH + 1)}):  # fmt: skip
        assert client.post("/recommend/batch", json=bad).status_code == 422


def test_openapi(client):
    spec = client.get("/openapi.json").json()
    assert {"/health", "/recommend", "/similar", "/recommend/history"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/recommend/history"]
    k = next(p for p in spec["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "k")
    assert k["schema"]["minimum"] == 1 and k["schema"]["maximum"] == MAX_K == 1000
    assert client.get("/docs").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve(monkeypatch, capsys, run_dir):
    """``graphseq serve`` listens on --host/--port, says its URL, hands uvicorn the app."""
    import uvicorn

    from graphseq.cli import main

    seen = {}

    def fake_run(server, sockets=None):
        seen.update(app=server.config.app, address=sockets[0].getsockname())

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    port = _free_port()
    assert main(["serve", "--run", str(run_dir), "--host", "127.0.0.1", "--port", str(port)]) == 0
    assert isinstance(seen["app"], FastAPI)
    assert seen["address"] == ("127.0.0.1", port)
    err = capsys.readouterr().err
    assert f"at http://127.0.0.1:{port} (API docs: http://127.0.0.1:{port}/docs)" in err
    assert main(["serve", "--run", str(run_dir / "missing")]) == 2  # one-line error, exit 2


def test_cli_serve_port_in_use(monkeypatch, capsys, run_dir):
    """A taken port is one line before the run is loaded (no seconds lost on the model)."""
    import uvicorn

    import graphseq.serve.app
    from graphseq.cli import main

    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **kw: pytest.fail("must not serve"))
    monkeypatch.setattr(graphseq.serve.app, "create_app", lambda *a, **kw: pytest.fail("loaded"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--run", str(run_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"graphseq: error: cannot listen on 127.0.0.1:{port}"
    )


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_cli_serve_without_the_extra(monkeypatch, capsys, run_dir, missing):
    """Without the [serve] extra: one line that names the extra, not a ModuleNotFoundError."""
    from graphseq.cli import main

    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now fails
    monkeypatch.delitem(sys.modules, "graphseq.serve", raising=False)
    assert main(["serve", "--run", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"module '{missing}' is missing" in err[0]
    assert 'pip install -e ".[serve]"' in err[0]


@pytest.mark.parametrize(
    "path, params",
    [
        ("/recommend", {"user": "u0", "fallback_popular": "true"}),
        ("/recommend", {"user": "u0", "K": "5"}),
        ("/similar", {"item": "i1", "n": "3"}),
        ("/health", {"verbose": "1"}),
    ],
)
def test_unknown_query_parameter_is_422(client, path, params):
    r = client.get(path, params=params)
    assert r.status_code == 422
    (extra,) = [p for p in params if p not in ("user", "item")]
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", extra] and err["type"] == "extra_forbidden"
    assert "unknown query parameter" in err["msg"]


def test_pop_run_has_no_similar_items(small_graph_dir, tmp_path):
    out = tmp_path / "pop"
    Trainer(TrainConfig(graph=str(small_graph_dir), model="pop"), out, progress=False).fit()
    with TestClient(create_app(out)) as c:
        r = c.get("/similar", params={"item": "i1"})
        assert r.status_code == 400 and "has no item vectors" in r.json()["detail"]
        assert c.get("/recommend", params={"user": "u0", "k": 3}).status_code == 200


def test_unfinished_run(run_dir, tmp_path):
    out = tmp_path / "unfinished"
    shutil.copytree(run_dir, out)
    (out / "metrics.json").unlink()
    with pytest.raises(DataError, match="--allow-incomplete"):
        create_app(out)
    with TestClient(create_app(out, allow_incomplete=True)) as c:
        assert c.get("/health").json()["status"] == "ok"


def test_readme_server_table_matches_the_api(client):
    readme = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "use.md").read_text()
    rows = re.findall(r"^\| `(GET|POST) (/[\w/]*)(?:\?([^`]*))?`", readme, flags=re.M)
    spec = client.get("/openapi.json").json()
    assert {(m.lower(), p) for m, p, _ in rows} == {
        (m, p) for p, ops in spec["paths"].items() for m in ops
    }
    for method, path, query in rows:
        op = spec["paths"][path][method.lower()]
        declared = {p["name"] for p in op.get("parameters", [])}
        assert {kv.split("=")[0] for kv in query.split("&") if kv} == declared, path
    body = re.search(r"`POST /recommend/history` with `(\{.*?\})`", readme).group(1)
    assert set(json.loads(body)) == set(HistoryRequest.model_fields)
    body = re.search(r"`POST /recommend/batch` with `(\{.*?\})`", readme).group(1)
    assert set(json.loads(body)) == set(BatchRequest.model_fields)
    assert f"`k` is 1..{MAX_K} (default 10) everywhere" in readme
    assert f"a history holds 1..{MAX_HISTORY:,} items" in readme
