"""graphseq inspect: the repeat segment is what a brute-force scan of each test user's
earlier events says and the per-segment comparison is the run's own figures; the views' share
of a trained run is what the item encoder's own forward adds; re-scoring a run keeps its
previous figures and leaves it as it would score now; the CLI prints JSON on stdout only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_builders.store import load_id_maps, read_graph
from graphseq.cli import main
from graphseq.config import TrainConfig
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split
from graphseq.inspect import own_item_stats, rescore, segments, user_segments, view_usage
from graphseq.recommend import load_run
from graphseq.training.trainer import Trainer


def _shop_rows() -> list[tuple]:
    """6 users, 4 purchases each; users 0–2 carted their last purchase earlier, 3–5 did not
    (user 3 carted an item it never bought)."""
    rows, t = [], 0
    for u in range(6):
        bought = [f"i{u}{k}" for k in range(4)]
        if u < 3:
            rows.append((f"u{u}", bought[-1], t, "cart"))
        if u == 3:
            rows.append((f"u{u}", "i99", t, "cart"))
        for it in bought:
            t += 1
            rows.append((f"u{u}", it, t, "buy"))
        t += 1
    return rows


def test_repeat_users_match_the_carts_and_a_scan_of_earlier_events(tmp_path, event_graph):
    graph = event_graph(_shop_rows(), tmp_path / "g")
    repeat = user_segments(graph, "leave_last_out", (0.8, 0.9)) == "repeat"
    assert repeat.to_dict() == {f"u{u}": u < 3 for u in range(6)}
    ev = EventTable.from_graph(read_graph(graph))
    split = make_split(ev, "leave_last_out")
    raw = load_id_maps(graph)["user"]
    scan = {}
    for t in split.targets["test"].tolist():
        u, i = int(ev.user[t]), int(ev.item[t])
        earlier = (ev.user[:t] == u) & split.graph_mask("test")[:t]
        scan[raw[u]] = bool((ev.item[:t][earlier] == i).any())
    assert repeat.to_dict() == scan


def test_own_item_stats_rank_the_own_items_by_recency(tmp_path, event_graph):
    """Users 0–2 carted their last purchase and nothing else: one own item, the target, the
    most recent; a cart of an item bought earlier is excluded like the item itself."""
    rows = []
    for u in range(3):
        rows += [(f"u{u}", "old", 0, "buy"), (f"u{u}", "old", 1, "cart"),
                 (f"u{u}", "x", 2, "cart"), (f"u{u}", "y", 3, "cart")]  # fmt: skip
        rows += [(f"u{u}", f"b{u}", 4, "buy"), (f"u{u}", "x" if u else "y", 5, "buy")]
    graph = event_graph(rows, tmp_path / "g")
    st = own_item_stats(graph, "leave_last_out", (0.8, 0.9))
    # own items x (rank 1) and y (rank 0, most recent); "old" was bought: not an own item
    assert st["users"] == 3 and st["own_items_mean"] == 2.0
    assert st["target_most_recent"] == 1 / 3  # u0 bought y; u1, u2 bought x
    want = (1.0 + 2 / np.log2(3.0)) / 3
    assert abs(st["recency_rank_NDCG@10"] - want) < 1e-9


def _train(graph, out, **kw):
    kw = {"epochs": 2, "seed": 0, "max_seq_len": 30, "batch_size": 32, "eval_every": 1,
          "lr": 3e-3, **kw}  # fmt: skip
    cfg = TrainConfig(graph=str(graph), **kw)
    Trainer(cfg, out, progress=False).fit()
    return out


@pytest.fixture(scope="module")
def graphseq_run(small_graph_dir, tmp_path_factory):
    return _train(small_graph_dir, tmp_path_factory.mktemp("runs") / "gs", model="graphseq")


def test_view_usage_matches_the_encoder_forward(graphseq_run):
    got = view_usage(graphseq_run)
    run = load_run(graphseq_run)
    assert list(got["views"]) == run.model.views
    assert abs(sum(got["views"].values()) - 1.0) < 1e-3
    with torch.no_grad():
        x = run.model.items.input()
        out = run.model.items(run.ctx).items
    want = ((out - x).norm(dim=1).mean() / x.norm(dim=1).mean()).item()
    assert got["view_share"] > 0 and abs(got["view_share"] - want) < 1e-4
    gain = run.model.items.view_gain.detach()
    assert got["gain_abs_mean"] == round(float(gain.abs().mean()), 4)


def test_segments_of_runs_split_the_test_users_as_their_own_edges_do(graphseq_run, small_graph_dir):
    """Two names for one run: the all-users row is the run's own test figure, the segments
    are the repeat users (the synthetic log carts every purchase first) and an empty rest."""
    res = segments([f"a={graphseq_run}", f"b={graphseq_run}"])
    m = json.loads((graphseq_run / "metrics.json").read_text())
    a, b = res["compare"]
    seg = a["segments"]
    repeat = user_segments(small_graph_dir, "leave_last_out", (0.8, 0.9)) == "repeat"
    assert seg["repeat"]["users"] == repeat.sum() == m["protocol"]["test_users"]
    assert seg["explore"] == {
        "users": 0,
        "share": 0.0,
        "note": m["segments"]["test"]["explore"]["note"],
    }
    assert a["mean"] == pytest.approx(m["test"]["NDCG@10"], abs=1e-6)
    assert seg["repeat"]["mean"] == pytest.approx(m["segments"]["test"]["repeat"]["NDCG@10"])
    assert b["vs_first"]["diff"] == 0.0 and res["reference"] == "a"


def test_rescore_keeps_the_old_figures_and_scores_as_the_run_now_does(small_graph_dir, tmp_path):
    path = _train(small_graph_dir, tmp_path / "sas", model="sasrec", item_graph=True)
    before = json.loads((path / "metrics.json").read_text())
    m = rescore(path)
    assert m["before_rescore"]["test"] == before["test"]
    assert set(m["item_graph"]) >= {"weight", "decay"}
    run = load_run(path)  # the rewritten checkpoint scores what metrics.json says
    assert run.evaluate("test").metrics["NDCG@10"] == pytest.approx(m["test"]["NDCG@10"])
    per_user = pd.read_parquet(path / "per_user.parquet")
    assert per_user["NDCG@10"].mean() == pytest.approx(m["test"]["NDCG@10"], abs=1e-6)
    assert rescore(path)["test"] == m["test"]  # choices made again from neutral: the same


def test_cli_prints_json_on_stdout_and_one_line_errors(graphseq_run, small_graph_dir, tmp_path,
                                                       capsys):  # fmt: skip
    assert main(["inspect", "views", str(graphseq_run), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["view_share"] == view_usage(graphseq_run)["view_share"]
    assert "views' share" in err
    sas = _train(small_graph_dir, tmp_path / "sas", model="sasrec", epochs=1)
    assert main(["inspect", "views", str(sas)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("graphseq: error: ") and len(err.splitlines()) == 1
