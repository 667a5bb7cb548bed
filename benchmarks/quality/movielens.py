"""MovieLens quality benchmarks (ML-100K, ML-1M): every model, 3 seeds, ablations, paired
bootstrap.

Protocol: time-ordered leave-last-out (``--split global_time``: the strict one), full
ranking, history excluded, NDCG@10 on every test user; hyper-parameters are the package
defaults (chosen on validation). Every graphseq network is also re-scored with its
item–item graph fusion off (``<name> -item_graph (same weights)``: an exact, paired ablation).
ML-1M (``get_ml1m.sh``: viewing orders, no item file, no KG) runs the variants that need
neither tags nor a KG.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.quality.jobs import (
    Variant,
    jobs_for,
    metrics_row,
    report,
    result_base,
    run_all,
    summarise,
)
from benchmarks.runner import build

PAIRS = ("batch_size=2048", "lr=0.005", "epochs=100", "eval_every=5")  # the pair-trained models
NO_SNAPSHOTS = ("snapshot_scale=false",)
IG = ("item_graph=true",)

ML100K: dict[str, Variant] = {
    "graphseq": Variant("graphseq"),
    "sasrec": Variant("sasrec"),
    "graphseq minibatch": Variant("graphseq", ("minibatch=true",)),  # vs full-graph
    "sasrec +item_graph": Variant("sasrec", IG),  # the same validated fusion
    "gru4rec": Variant("gru4rec"),  # GRU over the sequence, no graph
    "gru4rec +item_graph": Variant("gru4rec", IG),
    "pop": Variant("pop", seeded=False),
    "pop +item_graph": Variant("pop", IG, seeded=False),
    "ease": Variant("ease", seeded=False),  # λ and decay chosen on validation
    "itemknn": Variant("itemknn", seeded=False),  # k, shrinkage and decay on validation
    "mf": Variant("mf", PAIRS),
    "mf +item_graph": Variant("mf", PAIRS + IG),
    "lightgcn": Variant("lightgcn", PAIRS),
    "lightgcn +item_graph": Variant("lightgcn", PAIRS + IG),
    "graphseq sequence=gru": Variant("graphseq", ("sequence=gru",)),  # gru4rec's module
    "graphseq -masked_softmax": Variant("graphseq", ("train_exclude_seen=false",)),
    "sasrec -masked_softmax": Variant("sasrec", ("train_exclude_seen=false",)),
    "graphseq -snapshots": Variant("graphseq", NO_SNAPSHOTS),
    "graphseq -snapshots -tag": Variant("graphseq", (*NO_SNAPSHOTS, "views=cooc,kg")),
    "graphseq -snapshots -kg": Variant("graphseq", (*NO_SNAPSHOTS, "views=cooc,tag")),
    "graphseq -snapshots -sequence": Variant("graphseq", (*NO_SNAPSHOTS, "sequence=none")),
    "graphseq -snapshots -cooc": Variant("graphseq", (*NO_SNAPSHOTS, "views=tag,kg")),
    "graphseq -snapshots -tag -kg": Variant("graphseq", (*NO_SNAPSHOTS, "views=cooc")),
    "graphseq -tag -kg": Variant("graphseq", ("views=cooc",)),
    "graphseq -snapshots -views": Variant("graphseq", (*NO_SNAPSHOTS, "views=[]")),  # = sasrec
}
# ML-1M has neither tags nor a KG: the variants that do not remove them
ML1M: dict[str, Variant] = {
    n: v for n, v in ML100K.items() if "-tag" not in n and "-kg" not in n and "-cooc" not in n
}


def fusion_off(run_dir: Path) -> tuple[dict, pd.Series]:
    """A finished graphseq run re-scored with the item–item graph's fusion weight at 0: the
    same trained network without the item graph (an exact, paired ablation)."""
    from graphseq.recommend import load_run

    run = load_run(run_dir)
    run.model.item_graph.weight.fill_(0.0)
    valid, test = run.evaluate("valid"), run.evaluate("test")
    users = run.id_maps["user"][test.per_user["user"].numpy()].astype(str)
    scores = pd.Series(test.per_user["NDCG@10"].numpy(), index=users)
    return {"valid": valid.metrics, "test": test.metrics}, scores


def off_name(name: str) -> str:
    """The row of run ``name``'s networks re-scored with the item–item graph fusion off."""
    return f"{name} -item_graph (same weights)"


def run(a, variants: dict[str, Variant], names: list[str], dataset: str) -> dict[str, dict]:
    """Every chosen variant on each ``a.split``; ``{result name: payload}``."""
    graph = build(a.work / "graph", "recbole", a.data)
    out = {}
    for split in a.split:
        jobs = jobs_for(variants, names, a.seeds, a.work, split, {"all": graph}, a.set)
        results = run_all(jobs, a.jobs)
        extra, off_rows = {}, []
        for name in dict.fromkeys(j.name for j, _ in results):  # every graphseq network
            runs = [j for j, m in results if j.name == name and j.model == "graphseq"
                    and "item_graph" in m]  # fmt: skip
            if runs:
                offs = [fusion_off(j.out) for j in runs]
                extra[off_name(name)] = [s for _, s in offs]
                off_rows.append(metrics_row(off_name(name), [m for m, _ in offs]))
        refs = ("graphseq", off_name("graphseq"), *(n for n in extra if n != off_name("graphseq")))
        rows, tests = summarise(results, reference=refs, extra=extra)
        meta = dict(dataset=dataset, split=split, variants=names, overrides=a.set, seeds=a.seeds)
        out[result_base(dataset, "main", split)] = report(rows + off_rows, tests, **meta)
    return out
