"""Exports and anonymous histories for every model: vectors that reproduce ``recommend``, view
weights of chunked encodings, fold-in of ad-hoc histories."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from graphseq.config import TrainConfig
from graphseq.recommend import load_run
from graphseq.training.trainer import Trainer

SEQ = dict(max_seq_len=30, batch_size=32, eval_every=1, dropout=0.1, epochs=2)
RUNS = {
    "pop": dict(model="pop"),
    "mf": dict(model="mf", epochs=2),
    "lightgcn": dict(model="lightgcn", epochs=2),
    "sasrec": dict(model="sasrec", **SEQ),
    # the own-history term is a sparse per-user addition (own_history.json), not a dot product
    "graphseq": dict(model="graphseq", item_graph=False, own_history=False, **SEQ),
    "minibatch": dict(
        model="graphseq", minibatch=True, eval_chunk=16, item_graph=False, own_history=False, **SEQ
    ),
    "graphseq_history": dict(model="graphseq", item_graph=False, **SEQ),
}


@pytest.fixture(scope="module")
def runs(small_graph_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("export_runs")
    out = {}
    for name, kw in RUNS.items():
        Trainer(TrainConfig(graph=str(small_graph_dir), **kw), root / name, progress=False).fit()
        out[name] = load_run(root / name)
    return out


@pytest.mark.parametrize("name", ["mf", "lightgcn", "sasrec", "graphseq", "minibatch"])
def test_exported_vectors_reproduce_recommend(runs, name, tmp_path):
    """Dot products of the exported user and item vectors rank exactly as ``recommend``
    (dot head, no item-graph fusion): a vector database would serve the same lists."""
    run = runs[name]
    files = run.export(tmp_path / "emb")
    assert {f.name for f in files} >= {"items.parquet", "users.parquet"}
    items = pd.read_parquet(tmp_path / "emb" / "items.parquet")
    users = pd.read_parquet(tmp_path / "emb" / "users.parquet")
    iv = torch.from_numpy(np.stack(items["embedding"].to_numpy()))
    some = users["user"].tolist()[:8]
    uv = torch.from_numpy(np.stack(users.set_index("user").loc[some, "embedding"].to_numpy()))
    want = run.recommend_dict(some, k=5)
    seen = {u: set() for u in some}
    ptr, idx = run._user_csr()
    for u in some:
        row = run.id_maps["user"].get_loc(u)
        evs = idx[ptr[row] : ptr[row + 1]]
        seen[u] = {
            str(run.id_maps["item"][i]) for i in run.ev.item[evs[run.ev.is_target[evs]]].tolist()
        }
    for u, vec in zip(some, uv):
        scores = iv @ vec
        order = [str(items["item"][i]) for i in torch.argsort(scores, descending=True).tolist()]
        top = [i for i in order if i not in seen[u]][:5]
        assert top == [r["item"] for r in want[u]], (name, u)


def test_view_weights_of_a_chunked_encoding_cover_every_item(runs, tmp_path):
    """More items than ``eval_chunk``: every item's weights come back, equal to one-chunk
    encoding (the old fusion kept only the last chunk's rows)."""
    run = runs["minibatch"]
    assert run.ev.num_items > run.model.items.backend.eval_chunk
    run.export(tmp_path / "emb")
    w = pd.read_parquet(tmp_path / "emb" / "view_weights.parquet")
    assert len(w) == run.ev.num_items and list(w["item"]) == list(run.id_maps["item"])
    run.model.items.backend.eval_chunk = 10_000
    with torch.no_grad():
        whole = run.model.encode(run.ctx).view_weights
    torch.testing.assert_close(
        torch.tensor(w[run.model.views].to_numpy()), whole, atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("name", list(RUNS))
def test_two_histories_give_two_lists(runs, name):
    run = runs[name]
    pop = torch.bincount(run.ev.item[run.ev.is_target], minlength=run.ev.num_items)
    top = [str(run.id_maps["item"][i]) for i in torch.argsort(pop, descending=True)[:8].tolist()]
    a = [r["item"] for r in run.recommend_history_list(top[:3], k=10)]
    b = [r["item"] for r in run.recommend_history_list(top[3:8], k=10)]
    assert a != b and not set(a) & set(top[:3]) and not set(b) & set(top[3:8])


def test_own_history_export_with_the_vectors_reproduces_recommend(runs, tmp_path):
    """``own_history.json`` holds each behavior's weight and decay; the exported dot product
    plus that term over the user's last ``max_seq_len`` events ranks as ``recommend``."""
    run = runs["graphseq_history"]
    run.export(tmp_path / "emb")
    spec = json.loads((tmp_path / "emb" / "own_history.json").read_text())
    assert set(spec["behaviors"]) == set(run.ev.behaviors)
    w = {b: v["weight"] for b, v in spec["behaviors"].items()}
    assert any(abs(v) > 1e-3 for v in w.values())  # training moved it off its zero start
    items = pd.read_parquet(tmp_path / "emb" / "items.parquet")
    users = pd.read_parquet(tmp_path / "emb" / "users.parquet").set_index("user")
    iv = torch.from_numpy(np.stack(items["embedding"].to_numpy())).double()
    some = users.index.tolist()[:8]
    want = run.recommend_dict(some, k=5)
    ptr, idx = run._user_csr()
    for u in some:
        row = run.id_maps["user"].get_loc(u)
        evs = idx[ptr[row] : ptr[row + 1]]
        scores = iv @ torch.tensor(users.loc[u, "embedding"], dtype=torch.float64)
        last = evs[-run.cfg.max_seq_len :]
        for age, e in enumerate(reversed(last.tolist())):
            if not run.ev.is_target[e]:
                b = spec["behaviors"][run.ev.behaviors[int(run.ev.behavior[e])]]
                scores[run.ev.item[e]] += b["weight"] * math.exp(-age / b["decay"])
        seen = set(run.ev.item[evs[run.ev.is_target[evs]]].tolist())
        order = [i for i in torch.argsort(scores, descending=True).tolist() if i not in seen]
        assert [str(items["item"][i]) for i in order[:5]] == [r["item"] for r in want[u]], u


def test_a_checkpoint_older_than_own_history_loads_and_a_foreign_one_is_refused(runs, tmp_path):
    """Runs written before the own-history term (no ``scorer.history.*``) load with the term
    at 0, as they were trained; an unknown parameter is a clear error, not a traceback."""
    import shutil

    from data_builders.errors import DataError

    src = runs["graphseq_history"].path
    run_dir = tmp_path / "old"
    shutil.copytree(src, run_dir)
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    for k in [k for k in ckpt["state_dict"] if k.startswith("scorer.history.")]:
        del ckpt["state_dict"][k]
    torch.save(ckpt, run_dir / "checkpoint.pt")
    old = load_run(run_dir)
    assert float(old.model.scorer.history.weights().detach().abs().sum()) == 0.0
    ckpt["state_dict"]["scorer.extra"] = torch.zeros(1)
    torch.save(ckpt, run_dir / "checkpoint.pt")
    with pytest.raises(DataError, match="does not match"):
        load_run(run_dir)
