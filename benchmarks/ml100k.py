"""MovieLens-100K quality benchmark: every model, 3 seeds, ablations, paired bootstrap.

Protocol: time-ordered leave-last-out, full ranking, history excluded,
NDCG@10 on the 943 test users; hyper-parameters are the package defaults (chosen on
validation). Runs ``graphseq train`` in subprocesses, ``--jobs`` at a time (one thread each).

    python benchmarks/ml100k.py --data /tmp/gsdata/ml-100k --work /tmp/bench --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

# name -> (model, --set overrides); seeds apply to SEEDED, one seed to the rest
RUNS: dict[str, tuple[str, list[str]]] = {
    "graphseq": ("graphseq", []),
    "sasrec": ("sasrec", []),
    "graphseq minibatch": ("graphseq", ["minibatch=true"]),  # issue 6: vs full-graph
    "sasrec +item_graph": ("sasrec", ["item_graph=true"]),  # the same validated fusion
    "pop": ("pop", []),
    "pop +item_graph": ("pop", ["item_graph=true"]),
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
    "graphseq view_encoder=sage": ("graphseq", ["view_encoder=sage"]),
    "graphseq view_encoder=gat": ("graphseq", ["view_encoder=gat"]),
    "graphseq -masked_softmax": ("graphseq", ["train_exclude_seen=false"]),
    "sasrec -masked_softmax": ("sasrec", ["train_exclude_seen=false"]),
    "graphseq -coarse": ("graphseq", ["coarse=false"]),
    "graphseq -coarse -tag": ("graphseq", ["coarse=false", "views=cooc,kg"]),
    "graphseq -coarse -kg": ("graphseq", ["coarse=false", "views=cooc,tag"]),
    "graphseq -coarse -sequence": ("graphseq", ["coarse=false", "sequence=none"]),
}
SEEDED = ("graphseq", "sasrec", "sasrec +item_graph", "graphseq minibatch")


def _train(graph: Path, out: Path, model: str, sets: list[str], seed: int) -> dict:
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    if out.exists():
        cmd = [sys.executable, "-m", "graphseq", "train", "--resume", str(out)]
    else:
        cmd = [sys.executable, "-m", "graphseq", "train", "--graph", str(graph), "--model", model,
               "--out", str(out), "--set", f"seed={seed}", *sets]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())


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


def paired_bootstrap(a: pd.Series, b: pd.Series, n: int = 10_000, seed: int = 0) -> dict:
    """Per-user NDCG@10 of A minus B, resampled over users: mean diff, 95% CI, P(diff <= 0)."""
    d = (a - b).dropna().to_numpy()
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (n, len(d)))].mean(1)
    return {"diff": float(d.mean()), "ci95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
            "p_le_0": float((means <= 0).mean()), "users": len(d)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory with ml-100k.inter (get_ml100k.sh)")
    p.add_argument("--work", default="benchmarks/work/ml100k")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", help="subset of run names")
    a = p.parse_args()
    work = Path(a.work)
    graph = work / "graph"
    if not graph.exists():
        subprocess.run([sys.executable, "-m", "graphseq", "build", "--format", "recbole", "--input", a.data,
                        "--out", str(graph)], check=True)  # fmt: skip
    jobs = []
    for name, (model, sets) in RUNS.items():
        if a.only and name not in a.only:
            continue
        for seed in a.seeds if name in SEEDED else a.seeds[:1]:
            jobs.append(
                (name, seed, work / "runs" / name.replace(" ", "_") / f"seed{seed}", model, sets)
            )
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(
            pool.map(lambda j: (j[0], j[1], j[2], _train(graph, j[2], j[3], j[4], j[1])), jobs)
        )
    rows, per_user = [], {}
    for name in dict.fromkeys(r[0] for r in results):
        ms = [r[3] for r in results if r[0] == name]
        nd = [m["test"]["NDCG@10"] for m in ms]
        rows.append({"model": name, "seeds": len(ms), "test NDCG@10": np.mean(nd), "sd": np.std(nd, ddof=1) if len(nd) > 1 else 0.0,
                     "Hit@10": np.mean([m["test"]["Hit@10"] for m in ms]), "MRR@10": np.mean([m["test"]["MRR@10"] for m in ms]),
                     "valid NDCG@10": np.mean([m["valid"]["NDCG@10"] for m in ms]),
                     "epochs": np.mean([m["epochs"] for m in ms]), "s/epoch": np.mean([m["seconds_per_epoch"] for m in ms]),
                     "train s": np.mean([m["train_seconds"] for m in ms])})  # fmt: skip
        frames = [
            pd.read_parquet(r[2] / "per_user.parquet").set_index("user")["NDCG@10"]
            for r in results
            if r[0] == name
        ]
        per_user[name] = pd.concat(frames, axis=1).mean(axis=1)
    gs_runs = [r for r in results if r[0] == "graphseq" and "item_graph" in r[3]]
    if gs_runs:  # the same trained graphseq networks, item–item graph fusion off
        offs = [fusion_off(r[2]) for r in gs_runs]
        nd = [m["test"]["NDCG@10"] for m, _ in offs]
        rows.append({"model": "graphseq -item_graph (same weights)", "seeds": len(offs),
                     "test NDCG@10": np.mean(nd), "sd": np.std(nd, ddof=1) if len(nd) > 1 else 0.0,
                     "Hit@10": np.mean([m["test"]["Hit@10"] for m, _ in offs]),
                     "MRR@10": np.mean([m["test"]["MRR@10"] for m, _ in offs]),
                     "valid NDCG@10": np.mean([m["valid"]["NDCG@10"] for m, _ in offs])})  # fmt: skip
        per_user["graphseq -item_graph (same weights)"] = pd.concat(
            [p for _, p in offs], axis=1
        ).mean(axis=1)
        gs_row = next(r for r in rows if r["model"] == "graphseq")
        gs_row["item_graph weight, decay"] = [
            (r[3]["item_graph"]["weight"], r[3]["item_graph"]["decay"]) for r in gs_runs
        ]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    tests = {}
    if "graphseq" in per_user:
        for other in per_user:
            if other != "graphseq":
                tests[f"graphseq vs {other}"] = paired_bootstrap(
                    per_user["graphseq"], per_user[other]
                )
    for k, v in tests.items():
        print(
            f"{k}: diff {v['diff']:+.4f}  95% CI [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]  P(diff<=0) {v['p_le_0']:.4f}"
        )
    out = Path("benchmarks/results/ml100k.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"table": rows, "bootstrap": tests}, indent=2, default=float))


if __name__ == "__main__":
    main()
