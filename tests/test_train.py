"""Trainer, run directory contract, determinism, resume and safe loading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from data_builders.errors import DataError
from graphseq.config import TrainConfig
from graphseq.training.run import load_checkpoint
from graphseq.training.trainer import Trainer, TrainingError

SEQ = dict(max_seq_len=30, batch_size=32, eval_every=1, lr=3e-3, dropout=0.1)


def _fit(graph, out, **kw):
    cfg = TrainConfig(graph=str(graph), **kw)
    return Trainer(cfg, out, progress=False).fit()


def test_graphseq_beats_pop_on_planted_data(small_graph_dir, tmp_path):
    pop = _fit(small_graph_dir, tmp_path / "pop", model="pop")
    gs = _fit(small_graph_dir, tmp_path / "gs", model="graphseq", epochs=8, **SEQ)
    assert gs["test"]["NDCG@10"] > 2 * pop["test"]["NDCG@10"]
    assert gs["test"]["NDCG@10"] > 0.15


def test_run_directory_contract(small_graph_dir, tmp_path):
    run = tmp_path / "run"
    m = _fit(small_graph_dir, run, model="sasrec", epochs=3, **SEQ)
    for f in [
        "config.yaml",
        "provenance.json",
        "train_log.jsonl",
        "last.pt",
        "checkpoint.pt",
        "per_user.parquet",
        "metrics.json",
    ]:
        assert (run / f).exists(), f
    assert set(m) >= {"valid", "test", "epochs", "train_seconds", "seconds_per_epoch", "protocol"}
    assert m["protocol"] == m["protocol"] | {
        "split": "leave_last_out",
        "ranking": "full",
        "exclude_seen": True,
    }
    assert len((run / "train_log.jsonl").read_text().splitlines()) == 3
    for f in ["last.pt", "checkpoint.pt"]:
        ck = torch.load(run / f, weights_only=True)
        assert "state_dict" in ck and ck["fingerprint"]
    last = torch.load(run / "last.pt", weights_only=True)
    assert {"optimizer", "rng", "epoch", "best"} <= set(last) and last["epoch"] == 3
    pu = pd.read_parquet(run / "per_user.parquet")
    assert len(pu) == m["protocol"]["test_users"] and pu["rank"].min() >= 1
    assert m["protocol"]["valid_users"] > 0
    assert pu["user"].str.startswith("u").all() and pu["target"].str.startswith("i").all()
    assert abs(pu["NDCG@10"].mean() - m["test"]["NDCG@10"]) < 1e-6
    with pytest.raises(DataError, match="already holds a run"):
        _fit(small_graph_dir, run, model="sasrec", epochs=1, **SEQ)


@pytest.mark.parametrize("model", ["mf", "sasrec"])
def test_same_seed_same_metrics(small_graph_dir, tmp_path, model):
    a = _fit(small_graph_dir, tmp_path / "a", model=model, epochs=2, seed=5, **SEQ)
    b = _fit(small_graph_dir, tmp_path / "b", model=model, epochs=2, seed=5, **SEQ)
    assert a["test"] == b["test"] and a["valid"] == b["valid"]


def test_eval_batch_size_does_not_change_metrics(small_graph_dir, tmp_path):
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", epochs=1, **SEQ)
    tr = Trainer(cfg, tmp_path / "r", progress=False)
    results = []
    for bs in (7, 64, 1000):
        tr.cfg = tr.cfg.replace(eval_batch_size=bs)
        results.append(tr._evaluate("test").metrics)
    for r in results[1:]:
        assert r == pytest.approx(results[0], abs=1e-6)


def test_valid_users_scores_a_fixed_sample_of_validation_users_only(small_graph_dir, tmp_path):
    cfg = TrainConfig(graph=str(small_graph_dir), model="sasrec", epochs=1, valid_users=20, **SEQ)
    tr = Trainer(cfg, tmp_path / "r", progress=False)
    a, b = tr._evaluate("valid"), tr._evaluate("valid")
    assert a.num_users == 20 and a.per_user["user"].tolist() == b.per_user["user"].tolist()
    full = tr._evaluate("test")
    everyone = tr.cfg.replace(valid_users=0)
    tr.cfg = everyone
    all_valid = tr._evaluate("valid")
    assert (
        all_valid.num_users > 20 and full.num_users == tr._evaluate("test").num_users
    )  # test: everyone
    sampled = set(a.per_user["user"].tolist())
    assert sampled < set(all_valid.per_user["user"].tolist())
    by_user = dict(zip(all_valid.per_user["user"].tolist(), all_valid.per_user["NDCG@10"].tolist()))
    assert [by_user[u] for u in a.per_user["user"].tolist()] == pytest.approx(
        a.per_user["NDCG@10"].tolist(), abs=1e-6
    )  # the same users score the same: a sample, not another model


def test_nan_loss_stops_with_epoch_and_batch(small_graph_dir, tmp_path, monkeypatch):
    cfg = TrainConfig(graph=str(small_graph_dir), model="mf", epochs=3, eval_every=1)
    tr = Trainer(cfg, tmp_path / "r", progress=False)
    real = tr.model.loss
    calls = {"n": 0}

    def loss(ctx, batch):
        calls["n"] += 1
        out = real(ctx, batch)
        return out * float("nan") if tr.state["epoch"] >= 1 and calls["n"] > 1 else out

    monkeypatch.setattr(tr.model, "loss", loss)
    with pytest.raises(TrainingError, match=r"epoch 2, batch 1"):
        tr.fit()
    assert (tmp_path / "r" / "checkpoint.pt").exists() and not (
        tmp_path / "r" / "metrics.json"
    ).exists()


def test_pickled_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    f = tmp_path / "evil.pt"
    torch.save({"checkpoint_version": 1, "payload": Evil()}, f)
    with pytest.raises(DataError, match="refusing to load"):
        load_checkpoint(f)


def test_checkpoint_from_other_graph_is_refused(small_graph_dir, tmp_path):
    _fit(small_graph_dir, tmp_path / "r", model="mf", epochs=1)
    with pytest.raises(DataError, match="other id maps"):
        load_checkpoint(tmp_path / "r" / "checkpoint.pt", fingerprint="0000")


def _train_cmd(graph, out, *extra):
    sets = ["model=sasrec", "epochs=6", "max_seq_len=30", "batch_size=16", "eval_every=1", "seed=3"]
    return [
        sys.executable,
        "-m",
        "graphseq",
        "train",
        "--graph",
        str(graph),
        "--out",
        str(out),
        "--set",
        *sets,
        *extra,
    ]


def test_sigkill_then_resume_matches_uninterrupted(small_graph_dir, tmp_path):
    ref = subprocess.run(
        _train_cmd(small_graph_dir, tmp_path / "ref"), capture_output=True, text=True
    )
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(small_graph_dir, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = run / "train_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "metrics.json").exists()
    res = subprocess.run(
        [sys.executable, "-m", "graphseq", "train", "--resume", str(run)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    a = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert a["valid"] == b["valid"] and a["test"] == b["test"] and a["epochs"] == b["epochs"]
    epochs = [json.loads(ln)["epoch"] for ln in (run / "train_log.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, a["epochs"] + 1))


def test_train_seeds_summarises_each_seed(small_graph_dir, tmp_path):
    from graphseq.training.seeds import train_seeds

    cfg = TrainConfig(graph=str(small_graph_dir), model="mf", epochs=2, batch_size=256)
    summary = train_seeds(cfg, tmp_path / "runs", [0, 1], progress=False)
    runs = [
        json.loads((tmp_path / "runs" / f"seed{s}" / "metrics.json").read_text()) for s in (0, 1)
    ]
    nd = [r["test"]["NDCG@10"] for r in runs]
    assert nd[0] != nd[1]  # the seeds really differ
    assert summary["test_mean"]["NDCG@10"] == pytest.approx(sum(nd) / 2)
    assert summary["test_sd"]["NDCG@10"] == pytest.approx(abs(nd[0] - nd[1]) / 2**0.5)
    assert json.loads((tmp_path / "runs" / "summary.json").read_text())["seeds"] == [0, 1]


def test_auto_eval_interval_follows_optimizer_steps(small_graph_dir, tmp_path):
    from graphseq.training.schedule import EVAL_STEPS

    def trainer(**kw):
        cfg = TrainConfig(graph=str(small_graph_dir), model="sasrec", max_seq_len=30, **kw)
        return Trainer(cfg, tmp_path / "r", progress=False)

    big = trainer(batch_size=10_000)  # one step an epoch
    assert len(big._global_batches(1)) == 1 and big.eval_interval() == EVAL_STEPS
    users = len(trainer(batch_size=1)._global_batches(1))
    small = trainer(batch_size=max(users // 4, 1))  # ~4 steps an epoch
    steps = len(small._global_batches(1))
    assert small.eval_interval() == max(1, round(EVAL_STEPS / steps))
    assert trainer(batch_size=1).eval_interval() == 1  # many steps: every epoch
    assert trainer(eval_every=3).eval_interval() == 3  # explicit wins
    with pytest.raises(DataError, match="eval_every"):
        trainer(eval_every=-1).eval_interval()
    m = _fit(small_graph_dir, tmp_path / "run", model="sasrec", max_seq_len=30, epochs=5,
             batch_size=max(users // 4, 1), lr=3e-3)  # fmt: skip
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    every = max(1, round(EVAL_STEPS / steps))
    evaluated = [r["epoch"] for r in log if "valid_NDCG@10" in r]
    assert evaluated == [e for e in range(1, 6) if e % every == 0 or e == 5]
    assert m["epochs"] == 5


@pytest.mark.parametrize("extra", [{}, {"minibatch": True}], ids=["graphseq", "minibatch"])
def test_interrupted_graphseq_run_resumes_to_the_same_result(small_graph_dir, tmp_path, extra):
    """Stop after epoch 2 (an exception before epoch 3), resume from last.pt: the same
    validation curve, test metrics and item-graph choice as an uninterrupted run."""
    cfg = TrainConfig(
        graph=str(small_graph_dir), model="graphseq", epochs=4, seed=2, **SEQ, **extra
    )
    ref = Trainer(cfg, tmp_path / "ref", progress=False).fit()
    tr = Trainer(cfg, tmp_path / "cut", progress=False)
    real = tr._train_epoch

    def stop_at_3(epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return real(epoch)

    tr._train_epoch = stop_at_3
    with pytest.raises(KeyboardInterrupt):
        tr.fit()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    got = Trainer.resume(tmp_path / "cut", progress=False).fit()
    assert got["test"] == ref["test"] and got["valid"] == ref["valid"]
    assert got.get("item_graph") == ref.get("item_graph")

    def curve(run):
        return [
            json.loads(x).get("valid_NDCG@10")
            for x in (run / "train_log.jsonl").read_text().splitlines()
        ]

    assert curve(tmp_path / "cut") == curve(tmp_path / "ref")
