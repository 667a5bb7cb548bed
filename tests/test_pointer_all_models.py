"""The own-history pointer for the models that train no softmax (pop, itemknn, lightgcn, ...):
untrained, off while training, its strength and decay chosen on validation afterwards from the
same grid the sequence models calibrate theirs with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphseq.config import TrainConfig
from graphseq.models.registry import SPECS
from graphseq.nn.history import UNTRAINED_WEIGHT, OwnHistory
from graphseq.training.posthoc import plan_of
from graphseq.training.trainer import Trainer

UNTRAINED_POINTER = [m for m, spec in SPECS.items() if spec.trains != "sequences"]

SCHEMA = "events: events.csv\nuser: user\nitem: item\ntimestamp: ts\nbehavior: behavior\ntargets: [buy]\n"


@pytest.fixture(scope="module")
def carted_then_bought(tmp_path_factory) -> Path:
    """80 users over 60 items: random purchases and carts, and every user's last two purchases
    (the validation and test targets) are items they carted earlier."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(80):
        items = rng.permutation(60)
        carts, buys, later = items[:5], items[5:9], rng.choice(items[:5], 2, replace=False)
        t = 0
        for b, its in (("buy", buys[:2]), ("cart", carts), ("buy", buys[2:]), ("buy", later)):
            for i in its:
                rows.append((f"u{u}", f"i{i}", b, t))
                t += 1
    d = tmp_path_factory.mktemp("pointer")
    pd.DataFrame(rows, columns=["user", "item", "behavior", "ts"]).to_csv(d / "events.csv",
                                                                          index=False)  # fmt: skip
    (d / "schema.yaml").write_text(SCHEMA)
    res = subprocess.run([sys.executable, "-m", "graphseq", "build", "--format", "csv", "--input",
                          str(d / "events.csv"), "--schema", str(d / "schema.yaml"), "--out",
                          str(d / "graph")], capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return d / "graph"


def _fit(graph: Path, out: Path, **kw) -> tuple[dict, Trainer]:
    cfg = TrainConfig(graph=str(graph), max_seq_len=20, **kw)
    t = Trainer(cfg, out, progress=False)
    return t.fit(), t


def test_untrained_pointer_is_off_and_frozen_until_calibrated():
    h = OwnHistory(3, trained=False)
    assert float(h.scale) == 0.0 and not any(p.requires_grad for p in h.parameters())
    with torch.no_grad():
        h.scale.fill_(100.0)
        h.sharpen.fill_(4.0)
    torch.testing.assert_close(h.weights()[:3], torch.full((3,), 100.0 * UNTRAINED_WEIGHT))
    torch.testing.assert_close(h.decays()[:3], torch.full((3,), 10.0 / 4.0))
    assert float(h.weights()[3]) == 0.0  # padding
    learned = OwnHistory(3)
    assert float(learned.scale) == 1.0 and learned.weight.requires_grad


@pytest.mark.parametrize("model", ["pop", "itemknn"])
def test_pointer_lifts_untrained_models_on_carted_purchases(carted_then_bought, tmp_path, model):
    plain, _ = _fit(carted_then_bought, tmp_path / "plain", model=model)
    with_it, t = _fit(carted_then_bought, tmp_path / "oh", model=model, own_history=True)
    choice = with_it["own_history_choice"]
    cfg = t.cfg
    assert len(choice["grid"]) == 1 + len(cfg.own_history_scales) * len(cfg.own_history_sharpen)
    assert next(iter(choice["grid"])) == "scale=0,sharpen=1"  # off is tried first
    assert choice["scale"] > 0  # validation turned it on
    # every target was carted by its user: with the pointer it is in the top few of 5
    assert with_it["test"]["NDCG@10"] > 0.5 > plain["test"]["NDCG@10"] + 0.2
    assert with_it["own_history"]["cart"]["weight"] == choice["scale"] * UNTRAINED_WEIGHT
    assert "+history" in with_it["model"]


def test_pair_model_trains_the_same_with_the_pointer(carted_then_bought, tmp_path):
    """lightgcn with ``own_history=true`` learns exactly the tables it learns without: the
    pointer is off while training (so re-scoring a finished run with it is equivalent)."""
    kw = dict(model="lightgcn", epochs=3, eval_every=1, batch_size=256, seed=1)
    plain, a = _fit(carted_then_bought, tmp_path / "plain", **kw)
    with_it, b = _fit(carted_then_bought, tmp_path / "oh", own_history=True, **kw)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k, v in sa.items():
        if k.startswith("items."):
            assert torch.equal(v, sb[k]), k
    assert plain["best_epoch"] == with_it["best_epoch"]
    assert with_it["test"]["NDCG@10"] > plain["test"]["NDCG@10"]


@pytest.mark.parametrize("model", [m for m in UNTRAINED_POINTER if m not in ("pop", "itemknn")])
def test_every_untrained_pointer_model_calibrates_it_first(carted_then_bought, tmp_path, model):
    cfg = TrainConfig(graph=str(carted_then_bought), model=model, own_history=True)
    t = Trainer(cfg, tmp_path / model, progress=False)
    plan = plan_of(t.model)
    hist, grid, key = plan[0]
    assert key == "own_history_choice" and hist is t.model.scorer.history and not hist.trained
    assert grid[0] == {"scale": 0.0, "sharpen": 1.0} and len(grid) == 13
