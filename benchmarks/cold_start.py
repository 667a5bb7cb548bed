"""Cold-start benchmark on MovieLens-100K: SASRec with and without title embeddings.

Cold targets are test (or validation) targets whose item has no event in the graph that
scores them. The natural splits hold very few (the script prints the counts), so it also
runs a *simulated item cold start*: two disjoint random sets of 10% of the items lose every
event except the users' leave-last-out test targets (set T) or validation targets (set V),
so their targets are scored without a single earlier interaction with the item (V's give a
cold validation set to choose settings on, T's the cold test set).

    python benchmarks/cold_start.py --data /tmp/gsdata/ml-100k --work /tmp/text --epochs 40

Runs ``graphseq train`` one at a time, one thread each; results go to
``benchmarks/results/cold_start.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from data_builders.atomic import write_json
from data_builders.build import build_graph
from data_builders.readers import read_log
from data_builders.store import load_graph, load_id_maps, save_graph
from graphseq.evaluate import cold_items
from graphseq.graph.events import EventTable
from graphseq.graph.splits import make_split
from graphseq.recommend import load_run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cold_start.json"
COLD_SHARE = 0.10  # share of items in each simulated cold set (T and V)
# name -> --set overrides
RUNS: dict[str, list[str]] = {
    "sasrec": [],
    "sasrec + title": ["item_text=title"],
    "sasrec + title, id_dropout 0.2": ["item_text=title", "item_id_dropout=0.2"],
    "sasrec + title, id_dropout 0.5": ["item_text=title", "item_id_dropout=0.5"],
    "sasrec + title+tags": ["item_text=title+tags"],
}
SEEDED = ("sasrec", "sasrec + title", "sasrec + title+tags")  # extra seeds: simulated only
# settings chosen on the simulated cold validation set only
SIMULATED_ONLY = ("sasrec + title, id_dropout 0.2", "sasrec + title, id_dropout 0.5",
                  "sasrec + title+tags")  # fmt: skip


def cold_counts(graph: Path) -> dict:
    """Targets per split and how many of them are cold, for both split methods."""
    ev = EventTable.from_graph(load_graph(graph))
    out = {}
    for method in ("leave_last_out", "global_time"):
        split = make_split(ev, method)
        for name in ("valid", "test"):
            tgt = split.targets[name]
            cold = cold_items(ev, split.graph_mask(name))[ev.item[tgt]]
            out[f"{method}/{name}"] = {"targets": len(tgt), "cold": int(cold.sum())}
    return out


def simulated_cold_graph(data: Path, graph: Path, out: Path, seed: int = 0) -> dict:
    """Rebuild ML-100K without the events of two random item sets, except their users'
    test targets (set T) and validation targets (set V); returns what was removed."""
    ev = EventTable.from_graph(load_graph(graph))
    split = make_split(ev, "leave_last_out")
    ids = load_id_maps(graph)
    perm = np.random.default_rng(seed).permutation(ev.num_items)
    n = int(COLD_SHARE * ev.num_items)
    sets = {"T": set(ids["item"][perm[:n]]), "V": set(ids["item"][perm[n : 2 * n]])}

    def pairs(name: str) -> set[tuple[str, str]]:
        t = split.targets[name]
        return set(zip(ids["user"][ev.user[t].numpy()], ids["item"][ev.item[t].numpy()]))

    keep_pairs = {"T": pairs("test"), "V": pairs("valid")}
    log = read_log("recbole", data)
    e = log.events
    keep = np.ones(len(e), dtype=bool)
    for s in ("T", "V"):
        in_set = e["item"].isin(sets[s]).to_numpy()
        is_kept = np.array([p in keep_pairs[s] for p in zip(e["user"], e["item"])])
        keep &= ~in_set | is_kept
    log.events = e[keep].reset_index(drop=True)
    if not out.exists():
        g, id_maps, report = build_graph(log)
        save_graph(out, g, id_maps, report, items=log.items)
    return {"cold_items_per_set": n, "events_removed": int((~keep).sum()), "seed": seed}


def train(graph: Path, out: Path, sets: list[str], split: str, epochs: int) -> dict:
    if not (out / "metrics.json").exists():
        cmd = [sys.executable, "-m", "graphseq", "train", "--graph", str(graph), "--model",
               "sasrec", "--out", str(out), "--set", f"split={split}", f"epochs={epochs}", *sets]  # fmt: skip
        if out.exists():
            cmd = [sys.executable, "-m", "graphseq", "train", "--resume", str(out)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        print(" ".join(cmd), file=sys.stderr, flush=True)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())


COLD_KEYS = ("targets", "NDCG@10", "Hit@10", "AUC", "cold_only/candidates",
             "cold_only/NDCG@10", "cold_only/Hit@10")  # fmt: skip


def evaluate_run(run_dir: Path, zero_ids: bool = True) -> dict:
    """Valid/test NDCG@10 and cold metrics of a saved run; ``zero_ids=False`` re-scores a
    text model without zeroing the ID embeddings of items that had no training event."""
    run = load_run(run_dir, device="cpu")
    if not zero_ids:
        if not hasattr(run.model, "trained_items"):
            return {}
        run.model.trained_items.fill_(True)
    out = {}
    for name in ("valid", "test"):
        res = run.evaluate(name)
        out[name] = {k: res.metrics[k] for k in ("NDCG@10", "Hit@10")}
        out[name + "_cold"] = {k: res.cold[k] for k in COLD_KEYS if k in res.cold}
    return out


def row(setting: str, name: str, seed: int, m: dict, run_dir: Path) -> dict:
    r = {"setting": setting, "run": name, "seed": seed, "epochs": m["epochs"], "best_epoch": m["best_epoch"],
         "test users": m["protocol"]["test_users"], **evaluate_run(run_dir)}  # fmt: skip
    if "title" in name:
        r["no_id_zeroing"] = evaluate_run(run_dir, zero_ids=False)
    return r


def table(result: dict) -> str:
    """The README table (markdown) from a results dict."""
    lines = ["| split | run | seed | test NDCG@10 | valid NDCG@10 | cold test targets | cold NDCG@10 "
             "| cold AUC | cold-only NDCG@10 (candidates) | cold valid AUC |", "|" + "---|" * 10]  # fmt: skip
    for r in result["rows"]:
        tc, vc = r["test_cold"], r["valid_cold"]
        only = (f"{tc['cold_only/NDCG@10']:.4f} ({tc['cold_only/candidates']})"
                if tc["targets"] else "—")  # fmt: skip
        lines.append(
            f"| {r['setting']} | {r['run']} | {r['seed']} | {r['test']['NDCG@10']:.4f} | "
            f"{r['valid']['NDCG@10']:.4f} | {tc['targets']} | {tc.get('NDCG@10', 0):.4f} | "
            f"{tc.get('AUC', float('nan')):.3f} | {only} | {vc.get('AUC', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory with ml-100k.inter (get_ml100k.sh)")
    p.add_argument("--work", default="/tmp/text")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--only", nargs="+", help="subset of run names")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (>0: SEEDED only)")
    p.add_argument("--table", action="store_true", help="print the README table and stop")
    a = p.parse_args()
    if a.table:
        print(table(json.loads(RESULTS.read_text())))
        return
    torch.set_num_threads(1)
    work = Path(a.work)
    graph = work / "graph"
    if not graph.exists():
        g, id_maps, report = build_graph(read_log("recbole", a.data))
        save_graph(graph, g, id_maps, report, items=read_log("recbole", a.data).items)
    result: dict = {"cold_counts": cold_counts(graph), "epochs_cap": a.epochs, "rows": []}
    print(json.dumps(result["cold_counts"]), file=sys.stderr)
    sim = work / "graph_cold"
    result["simulated"] = simulated_cold_graph(Path(a.data), graph, sim)
    result["simulated"]["cold_counts"] = cold_counts(sim)
    settings = [
        ("simulated", sim, "leave_last_out"),
        ("global_time", graph, "global_time"),
        ("leave_last_out", graph, "leave_last_out"),
    ]
    jobs = [(st, n, seed) for seed in a.seeds for st in settings for n in RUNS]
    for (setting, g, split), name, seed in jobs:
        if (a.only and name not in a.only) or (name in SIMULATED_ONLY and setting != "simulated"):
            continue
        if seed and (name not in SEEDED or setting != "simulated"):
            continue
        tag = name.replace(" ", "").replace(",", "-") + (f"-s{seed}" if seed else "")
        run_dir = work / "runs" / f"{setting}-{tag}"
        m = train(g, run_dir, [*RUNS[name], f"seed={seed}"], split, a.epochs)
        result["rows"].append(row(setting, name, seed, m, run_dir))
        print(json.dumps(result["rows"][-1]), file=sys.stderr, flush=True)
        write_json(RESULTS, result)


if __name__ == "__main__":
    main()
