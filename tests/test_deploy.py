"""Deployable exports: the item–item graph fusion recomputed from its exported parts, and the
torch.export user encoder against the model's own user states."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.graph.sequences import SeqBatch, pad_from_csr
from graphseq.recommend import load_run
from graphseq.training.trainer import Trainer

SEQ = dict(max_seq_len=20, batch_size=32, eval_every=1, dropout=0.1, epochs=2, dim=16)
RUNS = {
    "sasrec_ig": dict(model="sasrec", item_graph=True, **SEQ),
    "sasrec_knn": dict(
        model="sasrec", item_graph=True, item_graph_kind="itemknn", item_graph_knn=6, **SEQ
    ),
    "graphseq": dict(model="graphseq", item_graph=False, **SEQ),  # coarse (snapshot) scale on
    "graphseq_fine": dict(
        model="graphseq", item_graph=False, snapshot_scale=False, head="mlp", **SEQ
    ),
    "gru4rec": dict(model="gru4rec", **SEQ),
    "mf": dict(model="mf", epochs=1),
}


@pytest.fixture(scope="module")
def runs(small_graph_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy_runs")
    for name, kw in RUNS.items():
        Trainer(TrainConfig(graph=str(small_graph_dir), **kw), root / name, progress=False).fit()
    return root


def _std(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / np.maximum(x.std(1, ddof=1, keepdims=True), 1e-8)


@pytest.mark.parametrize("name", ["sasrec_ig", "sasrec_knn"])
def test_fused_scores_recomputed_from_the_exported_parts(runs, tmp_path, name):
    run = load_run(runs / name)
    ig = run.model.item_graph
    ig.weight.fill_(0.75)  # whatever validation chose: fusion on, a decay of its own
    ig.decay.fill_(4.0)
    out = tmp_path / "emb"
    run.export(out, item_graph_k=0)
    spec = json.loads((out / "item_graph.json").read_text())
    assert (spec["weight"], spec["decay"], spec["kind"]) == (0.75, 4.0, ig.kind)
    graph = (spec["k"], spec["shrink"]) if ig.kind == "itemknn" else spec["reg"]
    assert graph == ((6, 10.0) if name == "sasrec_knn" else float(ig.reg))
    items = pd.read_parquet(out / "items.parquet")
    users = pd.read_parquet(out / "users.parquet").set_index("user")
    pos = {i: n for i, n in zip(items["item"], items["index"])}
    iv = np.stack(items["embedding"].to_numpy())  # (I, d)
    nb = pd.read_parquet(out / "item_graph.parquet")
    B = np.zeros((len(items), len(items)), dtype=np.float32)
    B[nb["item"].map(pos), nb["neighbour"].map(pos)] = nb["weight"]
    hist = pd.read_parquet(out / "history.parquet")
    some = list(users.index[:6])
    H = np.zeros((len(some), len(items)), dtype=np.float32)
    rows = hist[hist["user"].isin(some)]
    H[rows["user"].map({u: n for n, u in enumerate(some)}), rows["item"].map(pos)] = rows["weight"]
    U = np.stack(users.loc[some, "embedding"].to_numpy())
    mine = _std(U @ iv.T) + spec["weight"] * _std(H @ B)
    # the model's own scores for the same users
    idx = torch.tensor([run.id_maps["user"].get_loc(u) for u in some])
    ptr, perm = run._user_csr()
    h = pad_from_csr(run.ev, ptr, perm, idx, run.cfg.max_seq_len)
    with torch.no_grad():
        want = run.model.rank_scores(run.ctx, run.enc, idx, h).numpy()
    np.testing.assert_allclose(mine, want, atol=2e-4)
    assert np.abs(H).sum() > 0 and np.count_nonzero(B) > len(items)
    if ig.kind == "itemknn":  # every item's 6 most similar at most, as built
        assert nb.groupby("item").size().max() == 6
    # truncation: the k largest |weight| per item
    run.export(tmp_path / "top", item_graph_k=3)
    top = pd.read_parquet(tmp_path / "top" / "item_graph.parquet")
    assert top.groupby("item").size().max() == 3
    full = nb.assign(a=nb["weight"].abs()).sort_values(["item", "a"], ascending=[True, False])
    want_top = full.groupby("item").head(3)
    assert set(zip(top["item"], top["neighbour"])) == set(
        zip(want_top["item"], want_top["neighbour"])
    )


def test_no_fusion_no_item_graph_files(runs, tmp_path):
    run = load_run(runs / "sasrec_ig")
    run.model.item_graph.weight.fill_(0.0)
    names = {f.name for f in run.export(tmp_path / "emb")}
    assert not {"item_graph.parquet", "history.parquet", "item_graph.json"} & names


def _padded(h: SeqBatch, L: int, n: int, nb: int) -> tuple[torch.Tensor, ...]:
    pad = L - h.item.size(1)
    return (
        F.pad(h.item, (0, pad), value=n),
        F.pad(h.behavior, (0, pad), value=nb),
        F.pad(h.time, (0, pad)),
        F.pad(h.mask, (0, pad)),
    )


@pytest.mark.parametrize("name", ["sasrec_ig", "graphseq", "graphseq_fine", "gru4rec"])
def test_exported_user_encoder_matches_user_repr(runs, tmp_path, name):
    run = load_run(runs / name)
    files = {f.name for f in run.export(tmp_path / "emb")}
    assert {"user_encoder.pt2", "user_encoder.json"} <= files
    spec = json.loads((tmp_path / "emb" / "user_encoder.json").read_text())
    assert spec["snapshots"] is (name == "graphseq") and spec["max_seq_len"] == 20
    encoder = torch.export.load(str(tmp_path / "emb" / "user_encoder.pt2")).module()
    n, nb, L = run.ev.num_items, len(run.ev.behaviors), run.cfg.max_seq_len
    # 100 histories: every user's whole history, then prefixes of random length
    ptr, perm = run._user_csr()
    users = torch.nonzero(ptr[1:] > ptr[:-1]).flatten()[:50]
    g = torch.Generator().manual_seed(0)
    whole = pad_from_csr(run.ev, ptr, perm, users, L)
    cut = torch.randint(1, L + 1, (len(users),), generator=g).clamp(max=whole.length)
    keep = torch.arange(whole.item.size(1))[None] < cut[:, None]
    prefix = SeqBatch(
        torch.where(keep, whole.item, n), torch.where(keep, whole.behavior, nb),
        whole.time * keep, whole.is_target & keep, whole.mask & keep,
    )  # fmt: skip
    model = run.model
    with torch.no_grad():
        for hist in (whole, prefix):
            want = model.scorer.transform(model.user_repr(run.ctx, run.enc, users, hist))
            got = encoder(users, *_padded(hist, L, n, nb))
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # one user alone, and anonymous histories (user -1: no snapshot states)
        first = SeqBatch(*(t[:1] for t in (whole.item, whole.behavior, whole.time,
                                           whole.is_target, whole.mask)))  # fmt: skip
        one = encoder(users[:1], *_padded(first, L, n, nb))
        want_one = model.scorer.transform(model.user_repr(run.ctx, run.enc, users[:1], first))
        torch.testing.assert_close(one, want_one, atol=1e-5, rtol=1e-5)
        anon = model.scorer.transform(model.user_repr(run.ctx, run.enc, None, whole))
        got_anon = encoder(torch.full_like(users, -1), *_padded(whole, L, n, nb))
        torch.testing.assert_close(got_anon, anon, atol=1e-5, rtol=1e-5)


def test_cli_export_says_when_there_is_no_user_encoder(runs, tmp_path, capsys):
    assert main(["export", "--run", str(runs / "mf"), "--out", str(tmp_path / "emb")]) == 0
    err = capsys.readouterr().err
    assert "user_encoder.pt2 not written" in err and "no sequence user encoder" in err
    assert not (tmp_path / "emb" / "user_encoder.pt2").exists()
    assert (tmp_path / "emb" / "users.parquet").exists()
