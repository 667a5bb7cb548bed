"""Multi-behavior benchmark on the Tmall buy/cart/fav log: graphseq against fair baselines.

Protocol: ``leave_last_out`` (and ``global_time`` with ``--split``), full ranking over the
31k items, earlier purchases excluded, NDCG@10 on every user's held-out purchase. Every
baseline sees the same events (all behaviors; sequence models embed the behavior); every
model with per-user scores is also run with the item–item graph fusion, and with the
own-history term graphseq uses (learned by the sequence models, untrained and chosen on
validation for the others: ``<name> +own_history``), each chosen on validation; the models
fused with the item graph are also re-scored with ItemKNN's graph in place of EASE's
(``<name> +itemknn_graph``). ``graphseq buy-only`` is the same model on a graph built from
the purchases alone (the same test targets, so the comparison is paired).

Budget: ``--set`` adds overrides to the sequence models only (e.g. ``epochs=3`` on a small
machine); the pair-trained models (lightgcn, mbcgcn) keep their own schedule.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from benchmarks.quality.jobs import (
    Job,
    Variant,
    jobs_for,
    metrics_row,
    report,
    result_base,
    run_all,
    summarise,
)
from benchmarks.runner import build

IG = ("item_graph=true",)
OH = ("own_history=true",)
PAIRS = ("batch_size=2048", "lr=0.005", "epochs=60", "eval_every=5")
VARIANTS: dict[str, Variant] = {  # in the order they are started
    "graphseq": Variant("graphseq"),
    "sasrec +own_history": Variant("sasrec", OH),
    "graphseq buy-only": Variant("graphseq", graph="buy"),
    "sasrec +own_history +item_graph": Variant("sasrec", OH + IG),
    "lightgcn (buy edges)": Variant("lightgcn", (*PAIRS, "lightgcn_behaviors=target")),
    "mbcgcn": Variant("mbcgcn", PAIRS),
    "sasrec": Variant("sasrec"),
    "gru4rec +own_history": Variant("gru4rec", OH),
    "gru4rec +own_history +item_graph": Variant("gru4rec", OH + IG),
    "lightgcn (all edges)": Variant("lightgcn", PAIRS),
    "graphseq -own_history": Variant("graphseq", ("own_history=false",)),
    "pop": Variant("pop", seeded=False),
    "pop +item_graph": Variant("pop", IG, seeded=False),
    "ease": Variant("ease", seeded=False),
    "itemknn": Variant("itemknn", seeded=False),
}
SEQUENCE = ("graphseq", "sasrec", "gru4rec")  # the models --set's budget applies to
# the models that train no softmax also get the own-history pointer, untrained, chosen on
# validation after training: the same checkpoints re-scored with ``own_history=true`` (the
# pointer is off while training and has no trained part, so this is what training with it
# gives, without training again)
POINTER_ADDED = ("pop", "pop +item_graph", "itemknn", "ease", "lightgcn (all edges)",
                 "lightgcn (buy edges)", "mbcgcn")  # fmt: skip
# the fused item graph swapped for ItemKNN's (sparse, every item; EASE covers the 10,000
# most popular of Tmall's 31k items): k and shrinkage as the itemknn baseline chose them on
# validation (leave_last_out), decays with "none" added as itemknn's choice was
KNN_GRAPH = {"item_graph_kind": "itemknn", "item_graph_knn": 50, "item_graph_shrink": 50.0,
             "item_graph_decays": [5.0, 20.0, float("inf")]}  # fmt: skip
KNN_GRAPH_ADDED = (
    "graphseq",
    "sasrec +own_history +item_graph",
    "gru4rec +own_history +item_graph",
)
HEURISTIC_GRID = ((100.0, 1000.0), (1e4, 20.0), (1e6, 5.0), (1e8, 2.0))  # (weight, decay)


def recent_own_edges(pop_run: Path) -> tuple[dict, pd.Series]:
    """A heuristic with no training: the user's own carted/faved items first, then the rest by
    popularity (or popularity fused with the item–item graph, on the ``pop +item_graph`` run,
    as its validation chose): the run re-scored with a fixed own-history term, its (weight,
    decay) chosen on validation from HEURISTIC_GRID (weight 100, decay 1,000: repeats add up,
    all own items above every other; large weights with short decays: most recent first)."""
    import torch

    from graphseq.nn.history import STEP, OwnHistory
    from graphseq.recommend import load_run

    run = load_run(pop_run)
    best = None
    for w, tau in HEURISTIC_GRID:
        hist = OwnHistory(len(run.ev.behaviors), skip_targets=True)
        with torch.no_grad():
            hist.weight.fill_(w / STEP)
            hist.log_decay.fill_(math.log(tau))
        run.model.scorer.history = hist
        score = run.evaluate("valid").metrics["NDCG@10"]
        if best is None or score > best[0]:
            best = (score, hist, w, tau)
    run.model.scorer.history = best[1]
    valid, test = run.evaluate("valid"), run.evaluate("test")
    users = run.id_maps["user"][test.per_user["user"].numpy()].astype(str)
    scores = pd.Series(test.per_user["NDCG@10"].numpy(), index=users)
    return {"valid": valid.metrics, "test": test.metrics, "chosen": best[2:]}, scores


def rescored(
    results: list[tuple[Job, dict]], names: tuple[str, ...], suffix: str, changes: dict
) -> list[tuple[Job, dict]]:
    """``<name> <suffix>`` for every run of ``names``: a copy of the run with ``changes`` in
    its config, its post-training choices made again (``graphseq inspect rescore``). Only
    for changes to what is chosen after training: the trained weights are the run's."""
    import yaml

    from graphseq.inspect import rescore

    out = []
    sets = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in changes.items()]  # fmt: skip
    for job, _ in results:
        if job.name not in names:
            continue
        dest = job.out.parent.parent / f"{job.out.parent.name}_{suffix.replace(' ', '_')}"
        dest = dest / job.out.name
        done = dest / "metrics.json"
        if not done.exists() or "before_rescore" not in json.loads(done.read_text()):
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(job.out, dest)
            cfg = yaml.safe_load((dest / "config.yaml").read_text())
            (dest / "config.yaml").write_text(yaml.safe_dump({**cfg, **changes}, sort_keys=False))
            rescore(dest)
        copy = job._replace(name=f"{job.name} {suffix}", out=dest, sets=[*job.sets, *sets])
        out.append((copy, json.loads(done.read_text())))
    return out


def build_graphs(data: Path, work: Path) -> dict[str, Path]:
    """The graph of all behaviors, and of the purchases alone (``buy``)."""
    graphs = {"all": build(work / "graph_all", "csv", data / "events.csv", data / "schema.yaml")}
    buy = work / "events_buy.csv"
    if not (work / "graph_buy").exists():
        df = pd.read_csv(data / "events.csv")
        df[df["behavior"] == "buy"].to_csv(buy, index=False)
    graphs["buy"] = build(work / "graph_buy", "csv", buy, data / "schema.yaml")
    return graphs


def run(a, names: list[str]) -> dict[str, dict]:
    """Every chosen variant on each ``a.split``, plus the re-scored rows and the heuristics."""
    a.work.mkdir(parents=True, exist_ok=True)
    graphs = build_graphs(a.data, a.work)
    out = {}
    for split in a.split:
        jobs = []
        for name in names:  # --set's budget: the sequence models only
            budget = a.set if VARIANTS[name].model in SEQUENCE else []
            jobs += jobs_for(VARIANTS, [name], a.seeds, a.work, split, graphs, budget)
        results = run_all(jobs, a.jobs)
        results += rescored(results, POINTER_ADDED, "+own_history", {"own_history": True}) + (
            rescored(results, KNN_GRAPH_ADDED, "+itemknn_graph", KNN_GRAPH)
        )
        extra, more = {}, []
        for base, then in (("pop", "pop"), ("pop +item_graph", "pop + item graph")):
            runs = [j for j, _ in results if j.name == base]
            if runs:  # the no-training heuristic of the own edges, on that untrained run
                name = f"recent own cart/fav, then {then} (heuristic)"
                m, scores = recent_own_edges(runs[0].out)
                extra[name] = [scores]
                more.append(metrics_row(name, [m]))
        rows, tests = summarise(
            results, reference=("graphseq", "graphseq +itemknn_graph"), extra=extra
        )
        meta = dict(dataset="tmall", split=split, variants=names, overrides=a.set, seeds=a.seeds)
        out[result_base("tmall", "main", split)] = report(rows + more, tests, **meta)
    return out
