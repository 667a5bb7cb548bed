"""Make a finished run's post-training choices again, with today's scoring code and the
trainer's rule: every step of ``posthoc_plan`` (the item–item graph's weight and decay, the
own-history calibration, ...) is put back on its neutral setting, chosen again on
validation in order, and the test split is scored once. The trained weights are not
touched. ``checkpoint.pt``, ``per_user.parquet`` and ``metrics.json`` are updated; the
previous figures are kept under ``before_rescore``.

Use it after a change to how scores are combined (no retraining needed), or to add the
own-history calibration to runs trained before it existed.

    python benchmarks/rescore_posthoc.py RUN [RUN ...] [--valid-users 4000]

``--valid-users N`` chooses on N validation users drawn from the run's seed (the
``valid_users`` key; 0 = the run's own setting). It is recorded in ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from data_builders.atomic import write_json
from graphseq.evaluate import evaluate_with
from graphseq.graph.splits import make_split
from graphseq.models.registry import posthoc_plan
from graphseq.recommend import load_run
from graphseq.train import run as rundir
from graphseq.train.posthoc import choose_plan


def rescore(path: Path, valid_users: int = 0) -> dict:
    metrics = json.loads((path / "metrics.json").read_text())
    run = load_run(path)
    plan = posthoc_plan(run.cfg, run.model)
    if not plan:  # nothing is chosen after training for this model
        return metrics
    c = run.cfg.replace(valid_users=valid_users) if valid_users else run.cfg
    sp = make_split(run.ev, c.split, quantiles=tuple(c.global_time_quantiles))
    cache: dict = {}  # the weights are fixed: one scoring context for every validation

    def valid():
        return evaluate_with(c, run.model, run.ev, sp, "valid", run.side, cache)

    with torch.no_grad():
        tuned = choose_plan(plan, lambda: valid().metrics["NDCG@10"], reset=True)
        valid_result, test = valid(), run.evaluate("test")  # test: every user, as trained
    ckpt = rundir.load_checkpoint(path / "checkpoint.pt")
    ckpt["state_dict"] = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    ckpt.pop("checkpoint_version")
    rundir.save_checkpoint(path / "checkpoint.pt", ckpt)
    rundir.write_per_user(path, test.per_user, run.id_maps)
    before = {k: metrics[k] for k in ("valid", "test", *tuned) if k in metrics}
    metrics.update(valid=valid_result.metrics, test=test.metrics, before_rescore=before, **tuned)
    metrics["protocol"]["valid_users"] = valid_result.num_users
    hist = getattr(run.model.scorer, "history", None)
    if hist is not None:
        metrics["own_history"] = hist.by_behavior(run.ev.behaviors)
    write_json(path / "metrics.json", metrics)
    return metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--valid-users", type=int, default=0)
    a = p.parse_args()
    for r in a.runs:
        m = rescore(Path(r), a.valid_users)
        before = m.get("before_rescore", {}).get("test", {}).get("NDCG@10")
        chosen = {k: {n: v for n, v in m[k].items() if n != "grid"} for k in
                  ("item_graph", "own_history_choice", "neighbors") if k in m}  # fmt: skip
        print(r, "test NDCG@10", round(m["test"]["NDCG@10"], 4), "before", before, chosen,
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
