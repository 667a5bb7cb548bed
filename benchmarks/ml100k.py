"""MovieLens-100K quality benchmark: every model, 3 seeds, ablations, paired bootstrap.

Protocol: time-ordered leave-last-out, full ranking, history excluded,
NDCG@10 on the 943 test users; hyper-parameters are the package defaults (chosen on
validation). Runs ``graphseq train`` in subprocesses, ``--jobs`` at a time (one thread each).
Intervals: two-level bootstrap over seeds and users (``graphseq.stats``). ``--set
split=global_time --results benchmarks/results/ml100k_global_time.json --work DIR2`` gives the
strict protocol.

    python benchmarks/ml100k.py --data /tmp/gsdata/ml-100k --work /tmp/bench --jobs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import Job, metrics_row, report, run_all, summarise  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (model, --set overrides); every trained run gets every seed (SEEDED)
RUNS: dict[str, tuple[str, list[str]]] = {
    "graphseq": ("graphseq", []),
    "sasrec": ("sasrec", []),
    "graphseq minibatch": ("graphseq", ["minibatch=true"]),  # issue 6: vs full-graph
    "sasrec +item_graph": ("sasrec", ["item_graph=true"]),  # the same validated fusion
    "gru4rec": ("gru4rec", []),  # GRU over the sequence, no graph
    "gru4rec +item_graph": ("gru4rec", ["item_graph=true"]),
    "pop": ("pop", []),
    "pop +item_graph": ("pop", ["item_graph=true"]),
    "ease": ("ease", []),  # λ and decay chosen on validation
    "itemknn": ("itemknn", []),  # k, shrinkage and decay chosen on validation
    "mf": ("mf", ["batch_size=2048", "lr=0.005", "epochs=100", "eval_every=5"]),
    "mf +item_graph": (
        "mf",
        ["batch_size=2048", "lr=0.005", "epochs=100", "eval_every=5", "item_graph=true"],
    ),  # fmt: skip
    "lightgcn": ("lightgcn", ["batch_size=2048", "lr=0.005", "epochs=100", "eval_every=5"]),
    "lightgcn +item_graph": (
        "lightgcn",
        ["batch_size=2048", "lr=0.005", "epochs=100", "eval_every=5", "item_graph=true"],
    ),  # fmt: skip
    "graphseq sequence=gru": ("graphseq", ["sequence=gru"]),  # gru4rec's module, graph-fed
    "graphseq view_encoder=sage": ("graphseq", ["view_encoder=sage"]),
    "graphseq view_encoder=gat": ("graphseq", ["view_encoder=gat"]),
    "graphseq -masked_softmax": ("graphseq", ["train_exclude_seen=false"]),
    "sasrec -masked_softmax": ("sasrec", ["train_exclude_seen=false"]),
    "graphseq -coarse": ("graphseq", ["coarse=false"]),
    "graphseq -coarse -tag": ("graphseq", ["coarse=false", "views=cooc,kg"]),
    "graphseq -coarse -kg": ("graphseq", ["coarse=false", "views=cooc,tag"]),
    "graphseq -coarse -sequence": ("graphseq", ["coarse=false", "sequence=none"]),
    # the views as a regulariser too: InfoNCE between each item's ID embedding and its views
    "graphseq +view_align=0.1": ("graphseq", ["view_align=0.1"]),
    "graphseq +view_align=0.5": ("graphseq", ["view_align=0.5"]),
    # where the views enter: the history's item table only, or the scored items' only
    "graphseq view_side=input": ("graphseq", ["view_side=input"]),
    "graphseq view_side=output": ("graphseq", ["view_side=output"]),
    # what the views propagate: a table of their own, or the ID table without their gradient
    "graphseq view_input=own": ("graphseq", ["view_input=own"]),
    "graphseq view_input=detached": ("graphseq", ["view_input=detached"]),
    "graphseq view_input=own -coarse": ("graphseq", ["view_input=own", "coarse=false"]),
    "graphseq sequence=gru view_input=own": ("graphseq", ["sequence=gru", "view_input=own"]),
    # DuoRec-style contrast of two encodings (dropout and view edge dropout as augmentation)
    "graphseq +seq_contrast=0.1": ("graphseq", ["seq_contrast=0.1"]),
    "graphseq +seq_contrast=0.5": ("graphseq", ["seq_contrast=0.5"]),
    "sasrec +item_graph +seq_contrast=0.5": ("sasrec", ["item_graph=true", "seq_contrast=0.5"]),
    # each item's views dropped at training (the ID path must rank alone as in sasrec)
    "graphseq view_dropout=0.5": ("graphseq", ["view_dropout=0.5"]),
    "graphseq view_dropout=0.8": ("graphseq", ["view_dropout=0.8"]),
    # the item–item graph trained as a scale of the model (cross-fitted), not fused after
    "graphseq item_graph_mode=trained": ("graphseq", ["item_graph_mode=trained"]),
    "sasrec item_graph_mode=trained": ("sasrec", ["item_graph=true", "item_graph_mode=trained"]),
    "graphseq item_graph_mode=trained dropout=0.5": (
        "graphseq",
        ["item_graph_mode=trained", "dropout=0.5"],
    ),
    "sasrec item_graph_mode=trained dropout=0.5": (
        "sasrec",
        ["item_graph=true", "item_graph_mode=trained", "dropout=0.5"],
    ),
    "graphseq view_gate": ("graphseq", ["view_gate=true"]),  # views scaled by item degree
    "graphseq view_gate -coarse": ("graphseq", ["view_gate=true", "coarse=false"]),
    "graphseq -coarse -cooc": ("graphseq", ["coarse=false", "views=tag,kg"]),
    "graphseq -coarse -tag -kg": ("graphseq", ["coarse=false", "views=cooc"]),
    "graphseq -tag -kg": ("graphseq", ["views=cooc"]),
    "graphseq -coarse -views": ("graphseq", ["coarse=false", "views=[]"]),  # sasrec's shape
}
UNTRAINED = ("pop", "pop +item_graph", "ease", "itemknn")  # deterministic: one seed
SEEDED = tuple(n for n in RUNS if n not in UNTRAINED)  # every trained run: 3 seeds


def fusion_off(run_dir: Path) -> tuple[dict, pd.Series]:
    """A finished graphseq run re-scored with the item–item graph's fusion weight at 0: the
    same trained network without the item graph (an exact, paired ablation)."""
    from graphseq.recommend import load_run

    run = load_run(run_dir)
    run.model.item_graph.weight.fill_(0.0)
    valid, test = run.evaluate("valid"), run.evaluate("test")
    users = run.id_maps["user"][test.per_user["user"].numpy()].astype(str)
    per_user = pd.Series(test.per_user["NDCG@10"].numpy(), index=users)
    return {"valid": valid.metrics, "test": test.metrics}, per_user


def off_name(name: str) -> str:
    """The row of run ``name``'s networks re-scored with the item–item graph fusion off."""
    return f"{name} -item_graph (same weights)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory with ml-100k.inter (get_ml100k.sh)")
    p.add_argument("--work", default="benchmarks/work/ml100k")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", help="subset of run names")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        dest="sets",
        help="overrides for every run (e.g. split=global_time)",
    )
    p.add_argument("--results", default=str(RESULTS / "ml100k.json"))
    a = p.parse_args()
    work = Path(a.work)
    graph = work / "graph"
    if not graph.exists():
        subprocess.run([sys.executable, "-m", "graphseq", "build", "--format", "recbole", "--input", a.data,
                        "--out", str(graph)], check=True)  # fmt: skip
    jobs: list[Job] = []
    for name, (model, sets) in RUNS.items():
        if a.only and name not in a.only:
            continue
        for seed in a.seeds if name in SEEDED else a.seeds[:1]:
            out = work / "runs" / name.replace(" ", "_") / f"seed{seed}"
            jobs.append((name, seed, out, model, [*sets, *a.sets], graph))
    results = run_all(jobs, a.jobs)
    extra, off_rows = {}, []
    for name in dict.fromkeys(j[0] for j, _ in results):  # every graphseq network, fusion off
        runs = [j for j, m in results if j[0] == name and j[3] == "graphseq" and "item_graph" in m]
        if runs:
            offs = [fusion_off(j[2]) for j in runs]
            extra[off_name(name)] = [p for _, p in offs]
            off_rows.append(metrics_row(off_name(name), [m for m, _ in offs]))
    refs = ("graphseq", off_name("graphseq"), *(n for n in extra if n != off_name("graphseq")))
    rows, tests = summarise(results, reference=refs, extra=extra)
    report(rows + off_rows, tests, Path(a.results), overrides=a.sets, seeds=a.seeds)


if __name__ == "__main__":
    main()
