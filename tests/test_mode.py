"""minibatch=auto: the rule's decision on small and large shapes, and that the trainer logs
and records the choice."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

import graphseq.models.mode as mode
from graphseq.config import TrainConfig, config_from_dict
from graphseq.models.mode import AUTO_MINIBATCH_EDGES, choose_mode, full_graph_edges
from graphseq.training.trainer import Trainer

ML = ("rate_high", "rate_low")
TMALL = ("buy", "cart", "fav")


def _choice(events: tuple[int, ...], behaviors=ML, **kw):
    return choose_mode(TrainConfig(**kw), behaviors, events)


def test_edges_count_user_derived_views_and_the_snapshot_scale():
    ev = (600, 300, 100)
    assert full_graph_edges(("cooc", "tag", "kg"), True, TMALL, ev) == 2000  # cooc + snapshots
    assert full_graph_edges(("cooc", "tag", "kg"), False, TMALL, ev) == 1000
    assert full_graph_edges(("tag", "kg"), False, TMALL, ev) == 0  # side graphs do not grow
    assert full_graph_edges(("cooc:buy", "behavior:fav"), False, TMALL, ev) == 700
    assert full_graph_edges(("cooc:*", "behavior"), True, TMALL, ev) == 3000


@pytest.mark.parametrize(
    "name, events, behaviors, views, minibatch",
    [
        ("ML-100K", (55_375, 44_625), ML, ("cooc", "tag", "kg"), False),
        ("Tmall", (177_862, 140_068, 49_482), TMALL, ("cooc", "tag", "kg"), False),
        (
            "Tmall, every per-behavior view",
            (177_862, 140_068, 49_482),
            TMALL,
            ("cooc:*", "behavior:*"),
            False,
        ),  # fmt: skip
        ("ML-1M-shaped 1M events", (1_000_209, 0), ML, ("cooc", "tag", "kg"), False),
        ("4M events", (4_039_104, 0), ML, ("cooc", "tag", "kg"), True),
        ("16M events", (16_100_000, 0), ML, ("cooc", "tag", "kg"), True),
        ("100M events", (100_000_000, 0), ML, ("cooc", "tag", "kg"), True),
    ],
)
def test_auto_keeps_small_logs_full_graph_and_sends_large_ones_to_minibatch(
    name, events, behaviors, views, minibatch
):
    c = _choice(events, behaviors, views=views)
    assert c.minibatch is minibatch, (name, c.edges)
    assert c.setting == "auto" and c.mode == ("mini-batch" if minibatch else "full-graph")
    assert f"{c.edges:,}" in c.reason and ("above" if minibatch else "within") in c.reason


def test_the_threshold_is_strict_and_true_false_force_the_mode():
    half = AUTO_MINIBATCH_EDGES // 2  # × 2 (cooc + snapshots) = exactly the threshold
    assert not _choice((half, 0)).minibatch
    assert _choice((half + 1, 0)).minibatch
    assert _choice((half + 1, 0), minibatch=False).minibatch is False
    assert _choice((10, 0), minibatch=True).minibatch is True
    assert "minibatch=false" in _choice((half + 1, 0), minibatch=False).reason
    sas = _choice((10**8, 0), model="sasrec")  # other models have no views
    assert sas.minibatch is False and "no graph views" in sas.reason


def test_config_takes_auto_true_false_and_refuses_the_rest():
    assert TrainConfig().minibatch == "auto"
    assert config_from_dict({"minibatch": True}).minibatch is True
    assert config_from_dict({"minibatch": "auto"}).minibatch == "auto"
    with pytest.raises(Exception, match=r"bool \| auto"):
        config_from_dict({"minibatch": "sometimes"})


@pytest.mark.parametrize(
    "threshold, want, pointer",
    [(10**12, "full-graph", False), (0, "mini-batch", False), (0, "mini-batch", None)],
)
def test_trainer_logs_and_records_the_choice(
    small_graph_dir, tmp_path, monkeypatch, caplog, threshold, want, pointer
):
    monkeypatch.setattr(mode, "AUTO_MINIBATCH_EDGES", threshold)
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", epochs=1, max_seq_len=20,
                      batch_size=64, item_graph=False, snapshot_scale=False,
                      own_history=pointer)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="graphseq"):
        m = Trainer(cfg, tmp_path / "run", progress=False).fit()
    said = [r.getMessage() for r in caplog.records if "training mode" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"training mode: {want} (minibatch=auto")
    rec = json.loads((tmp_path / "run" / "metrics.json").read_text())["training_mode"]
    assert rec == m["training_mode"]
    assert rec["mode"] == want and rec["setting"] == "auto" and rec["threshold"] == threshold
    assert rec["full_graph_edges"] > 0  # the training graph's events (cooc view)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["minibatch"] is (want == "mini-batch")  # resolved, so load_run agrees
    assert ("minibatch=[10, 5]" in m["model"]) is (want == "mini-batch")
    big = want == "mini-batch"
    notes = [r.getMessage() for r in caplog.records if "mini-batch objective" in r.getMessage()]
    assert ("objective" in rec) is big and len(notes) == int(big)
    # auto's mini-batch runs train an objective whose step does not encode the catalogue
    assert (saved["loss"], saved["share_negatives"]) == (
        ("sampled", True) if big else ("ce", False)
    )
    assert not big or "loss=sampled share_negatives=true" in notes[0]
    if pointer is None:  # the default pointer stays, trained through the sampled loss
        assert "+history" in m["model"]
        assert not big or "the own-history pointer (earlier cart, click) trains" in notes[0]


def test_scalable_objective_only_changes_what_does_not_scale():
    from graphseq.models.mode import scalable_objective

    base = TrainConfig(graph="g", model="graphseq", own_history=False)
    cfg, note = scalable_objective(base.replace(own_history=None), ("buy", "cart"), ("buy",))
    assert cfg.loss == "sampled" and "own-history pointer (earlier cart) trains" in note
    cfg, note = scalable_objective(base.replace(own_history=None), ("buy",), ("buy",))
    assert cfg.loss == "sampled" and "pointer" not in note  # every behavior is a target
    cfg, note = scalable_objective(base)
    assert (cfg.loss, cfg.share_negatives) == ("sampled", True) and "whole catalogue" in note
    cfg, note = scalable_objective(base.replace(loss="sampled"))
    assert (cfg.loss, cfg.share_negatives) == ("sampled", True) and "32,768 items" in note
    same = base.replace(loss="sampled", share_negatives=True)
    assert scalable_objective(same) == (same, "")
