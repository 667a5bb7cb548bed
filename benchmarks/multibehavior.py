"""Multi-behavior benchmark on the Tmall buy/cart/fav log: graphseq against fair baselines.

Protocol: ``leave_last_out`` (and ``global_time`` with ``--protocols``), full ranking over
the 31k items, earlier purchases excluded, NDCG@10 on every user's held-out purchase.
Every baseline sees the same events (all behaviors; sequence models embed the behavior);
every model with per-user scores is also run with the item–item graph fusion, and with the
own-history term graphseq uses (learned by the sequence models, untrained and chosen on
validation for the others: ``<name> +own_history``), each chosen on validation; the models
fused with the item graph are also re-scored with ItemKNN's graph in place of EASE's
(``<name> +itemknn_graph``).
``graphseq buy-only`` is the same model on a graph built from the purchases alone (the same
test targets, so the comparison is paired): it measures what the cart and fav edges carry.

    bash get_tmall.sh /tmp/tm            # writes /tmp/tm/tmall/events.csv and schema.yaml
    python benchmarks/multibehavior.py --data /tmp/tm/tmall --work /tmp/mb --jobs 2

Budget: ``--set`` adds overrides to every sequence model (e.g. ``epochs=3`` on a small
machine; the figures in the docs say which budget they used); the pair-trained models
(lightgcn, mbcgcn) keep their own schedule (60 epochs, validation every 5). Results go to
``benchmarks/results/multibehavior_<protocol>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import Job, metrics_row, report, run_all, summarise  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
IG = ["item_graph=true"]
OH = ["own_history=true"]
PAIRS = ["batch_size=2048", "lr=0.005", "epochs=60", "eval_every=5"]
# name -> (model, --set overrides, graph: all | buy)
RUNS: dict[str, tuple[str, list[str], str]] = {  # in the order they are started
    "graphseq": ("graphseq", [], "all"),
    "sasrec +own_history": ("sasrec", OH, "all"),
    "graphseq buy-only": ("graphseq", [], "buy"),
    "sasrec +own_history +item_graph": ("sasrec", OH + IG, "all"),
    "lightgcn (buy edges)": ("lightgcn", [*PAIRS, "lightgcn_behaviors=target"], "all"),
    "mbcgcn": ("mbcgcn", PAIRS, "all"),
    "sasrec": ("sasrec", [], "all"),
    "gru4rec +own_history": ("gru4rec", OH, "all"),
    "gru4rec +own_history +item_graph": ("gru4rec", OH + IG, "all"),
    "lightgcn (all edges)": ("lightgcn", PAIRS, "all"),
    "graphseq -own_history": ("graphseq", ["own_history=false"], "all"),
    # each item's views dropped with p = 0.8 while training (ML-100K's validated choice)
    "graphseq view_dropout=0.8": ("graphseq", ["view_dropout=0.8"], "all"),
    "graphseq -own_history view_dropout=0.8": (
        "graphseq",
        ["own_history=false", "view_dropout=0.8"],
        "all",
    ),
    "pop": ("pop", [], "all"),
    "pop +item_graph": ("pop", IG, "all"),
    "ease": ("ease", [], "all"),
    "itemknn": ("itemknn", [], "all"),
}
UNTRAINED = ("pop", "pop +item_graph", "ease", "itemknn")  # deterministic: one seed
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
SEEDED = tuple(n for n in RUNS if n not in UNTRAINED)  # every trained run: 3 seeds
SEQUENCE = ("graphseq", "sasrec", "gru4rec")  # the models --set's budget applies to


HEURISTIC_GRID = ((100.0, 1000.0), (1e4, 20.0), (1e6, 5.0), (1e8, 2.0))  # (weight, decay)


def recent_own_edges(pop_run: Path) -> tuple[dict, pd.Series]:
    """A heuristic with no training: the user's own carted/faved items first, then the rest by
    popularity (or popularity fused with the item–item graph, on the ``pop +item_graph`` run,
    as its validation chose): the run re-scored with a fixed own-history term, its (weight,
    decay) chosen on validation from HEURISTIC_GRID (weight 100, decay 1,000: repeats add up, all
    own items above every other; large weights with short decays: most recent first)."""
    import math

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
    its config, its post-training choices made again (``rescore_posthoc.rescore``). Only
    for changes to what is chosen after training: the trained weights are the run's."""
    import shutil

    import yaml
    from rescore_posthoc import rescore

    out = []
    sets = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changes.items()
    ]
    for (name, seed, run, model, job_sets, graph), _ in results:
        if name not in names:
            continue
        dest = run.parent.parent / f"{run.parent.name}_{suffix.replace(' ', '_')}" / run.name
        if not (dest / "metrics.json").exists() or "before_rescore" not in json.loads(
            (dest / "metrics.json").read_text()
        ):
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(run, dest)
            cfg = yaml.safe_load((dest / "config.yaml").read_text())
            (dest / "config.yaml").write_text(yaml.safe_dump({**cfg, **changes}, sort_keys=False))
            rescore(dest)
        job = (f"{name} {suffix}", seed, dest, model, [*job_sets, *sets], graph)
        out.append((job, json.loads((dest / "metrics.json").read_text())))
    return out


def with_pointer(results: list[tuple[Job, dict]]) -> list[tuple[Job, dict]]:
    """``<name> +own_history`` for every run of POINTER_ADDED (the pointer's calibration
    first, then the model's own choices)."""
    return rescored(results, POINTER_ADDED, "+own_history", {"own_history": True})


def with_knn_graph(results: list[tuple[Job, dict]]) -> list[tuple[Job, dict]]:
    """``<name> +itemknn_graph`` for every run of KNN_GRAPH_ADDED: the fused item graph
    swapped for ItemKNN's at KNN_GRAPH (the setting the itemknn baseline chose on
    validation), its weight and decay chosen again."""
    return rescored(results, KNN_GRAPH_ADDED, "+itemknn_graph", KNN_GRAPH)


def build(data: Path, work: Path, which: str) -> Path:
    """The graph of all behaviors, or of the purchases alone (``buy``)."""
    graph = work / f"graph_{which}"
    if graph.exists():
        return graph
    events = data / "events.csv"
    if which == "buy":
        df = pd.read_csv(events)
        events = work / "events_buy.csv"
        df[df["behavior"] == "buy"].to_csv(events, index=False)
    subprocess.run([sys.executable, "-m", "graphseq", "build", "--format", "csv", "--input",
                    str(events), "--schema", str(data / "schema.yaml"), "--out", str(graph)],
                   check=True)  # fmt: skip
    return graph


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the tmall/ directory get_tmall.sh writes")
    p.add_argument("--work", default="benchmarks/work/multibehavior")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--protocols", nargs="+", default=["leave_last_out"],
                   choices=["leave_last_out", "global_time"])  # fmt: skip
    p.add_argument("--only", nargs="+", help="a subset of the run names")
    p.add_argument("--set", nargs="*", default=[], dest="sets", help="overrides for every run")
    p.add_argument("--tag", default="", help="results go to multibehavior_<protocol><tag>.json")
    a = p.parse_args()
    data, work = Path(a.data), Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    graphs = {w: build(data, work, w) for w in ("all", "buy")}
    for proto in a.protocols:
        jobs: list[Job] = []
        for name, (model, sets, which) in RUNS.items():
            if a.only and name not in a.only:
                continue
            extra = a.sets if model in SEQUENCE else []
            for seed in a.seeds if name in SEEDED else a.seeds[:1]:
                out = work / proto / name.replace(" ", "_") / f"seed{seed}"
                jobs.append((name, seed, out, model, [f"split={proto}", *sets, *extra],
                             graphs[which]))  # fmt: skip
        results = run_all(jobs, a.jobs)
        results += with_pointer(results) + with_knn_graph(results)
        extra, more = {}, []
        for base, then in (("pop", "pop"), ("pop +item_graph", "pop + item graph")):
            runs = [j for j, _ in results if j[0] == base]
            if runs:  # the no-training heuristic of the own edges, on that untrained run
                name = f"recent own cart/fav, then {then} (heuristic)"
                m, scores = recent_own_edges(runs[0][2])
                extra[name] = [scores]
                more.append(metrics_row(name, [m]))
        rows, tests = summarise(
            results, reference=("graphseq", "graphseq +itemknn_graph"), extra=extra
        )
        report(rows + more, tests, RESULTS / f"multibehavior_{proto}{a.tag}.json", protocol=proto,
               overrides=a.sets, seeds=a.seeds)  # fmt: skip


if __name__ == "__main__":
    main()
