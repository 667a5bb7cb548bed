"""Cold-start study on MovieLens-100K: SASRec with and without title embeddings.

Cold targets are test (or validation) targets whose item has no event in the graph that
scores them. The natural splits hold very few (the result counts them), so it also runs a
*simulated item cold start*: two disjoint random sets of 10% of the items lose every event
except the users' leave-last-out test targets (set T) or validation targets (set V), so
their targets are scored without a single earlier interaction with the item (V's give a
cold validation set to choose settings on, T's the cold test set). Budget: ``epochs=40``
(``--set epochs=N`` changes it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.quality.jobs import Job, Variant, result_base, run_all
from benchmarks.runner import build

COLD_SHARE = 0.10  # share of items in each simulated cold set (T and V)
EPOCHS = "epochs=40"  # the study's budget, before --set
VARIANTS: dict[str, Variant] = {
    "sasrec": Variant("sasrec"),
    "sasrec + title": Variant("sasrec", ("item_text=title",)),
    "sasrec + title+tags": Variant("sasrec", ("item_text=title+tags",)),
}
SIMULATED_ONLY = ("sasrec + title+tags",)  # chosen on the simulated cold validation set only
# (setting, graph, split): seeds other than 0 run for the simulated setting only
SETTINGS = (("simulated", "cold", "leave_last_out"), ("global_time", "all", "global_time"),
            ("leave_last_out", "all", "leave_last_out"))  # fmt: skip
COLD_KEYS = ("targets", "NDCG@10", "Hit@10", "AUC", "cold_only/candidates",
             "cold_only/NDCG@10", "cold_only/Hit@10")  # fmt: skip


def cold_counts(graph: Path) -> dict:
    """Targets per split and how many of them are cold, for both split methods."""
    from graphseq.evaluate import cold_items
    from graphseq.graph.data import open_graph

    out = {}
    for method in ("leave_last_out", "global_time"):
        data = open_graph(graph, method, require_targets=False)
        ev, split = data.events, data.split
        for name in ("valid", "test"):
            tgt = split.targets[name]
            cold = cold_items(ev, split.graph_mask(name))[ev.item[tgt]]
            out[f"{method}/{name}"] = {"targets": len(tgt), "cold": int(cold.sum())}
    return out


def simulated_cold_graph(data: Path, graph: Path, out: Path, seed: int = 0) -> dict:
    """Rebuild ML-100K without the events of two random item sets, except their users'
    test targets (set T) and validation targets (set V); returns what was removed."""
    from data_builders.build import build_graph
    from data_builders.readers import read_log
    from data_builders.store import save_graph
    from graphseq.graph.data import open_graph

    opened = open_graph(graph, "leave_last_out", require_targets=False)
    ev, split, ids = opened.events, opened.split, opened.ids
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


def evaluate_run(run_dir: Path, zero_ids: bool = True) -> dict:
    """Valid/test NDCG@10 and cold metrics of a saved run; ``zero_ids=False`` re-scores a
    text model without zeroing the ID embeddings of items that had no training event."""
    from graphseq.recommend import load_run

    run = load_run(run_dir, device="cpu")
    if not zero_ids:
        items = run.model.items  # only an item encoder with text features zeroes cold IDs
        if getattr(items, "feat", None) is None:
            return {}
        items.trained_items.fill_(True)
    out = {}
    for name in ("valid", "test"):
        res = run.evaluate(name)
        out[name] = {k: res.metrics[k] for k in ("NDCG@10", "Hit@10")}
        out[name + "_cold"] = {k: res.cold[k] for k in COLD_KEYS if k in res.cold}
    return out


def row(setting: str, job: Job, m: dict) -> dict:
    r = {"setting": setting, "run": job.name, "seed": job.seed, "epochs": m["epochs"],
         "best_epoch": m["best_epoch"], "test users": m["protocol"]["test_users"],
         **evaluate_run(job.out)}  # fmt: skip
    if "title" in job.name:
        r["no_id_zeroing"] = evaluate_run(job.out, zero_ids=False)
    return r


def table(result: dict) -> str:
    """The docs' table (markdown) from a result's payload."""
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


def jobs(names: list[str], seeds: list[int], work: Path, graphs: dict[str, Path],
         sets: list[str]) -> list[tuple[str, Job]]:  # fmt: skip
    """``(setting, job)`` of every run: seeds other than 0 only for the simulated cold start,
    and the SIMULATED_ONLY variants only there."""
    out = []
    for seed in seeds:
        for setting, graph, split in SETTINGS:
            for name in names:
                if setting != "simulated" and (name in SIMULATED_ONLY or seed != 0):
                    continue
                tag = name.replace(" ", "").replace(",", "-") + (f"-s{seed}" if seed else "")
                v = VARIANTS[name]
                job = Job(name, seed, work / "runs" / f"{setting}-{tag}", v.model,
                          [f"split={split}", EPOCHS, *v.sets, *sets], graphs[graph])  # fmt: skip
                out.append((setting, job))
    return out


def run(a, names: list[str]) -> dict[str, dict]:
    import torch

    torch.set_num_threads(1)
    graph = build(a.work / "graph", "recbole", a.data)
    sets = [EPOCHS, *a.set]
    cap = int([s for s in sets if s.startswith("epochs=")][-1].split("=", 1)[1])
    result: dict = {"cold_counts": cold_counts(graph), "epochs_cap": cap, "overrides": sets,
                    "rows": []}  # fmt: skip
    sim = a.work / "graph_cold"
    result["simulated"] = simulated_cold_graph(a.data, graph, sim)
    result["simulated"]["cold_counts"] = cold_counts(sim)
    todo = jobs(names, a.seeds, a.work, {"all": graph, "cold": sim}, a.set)
    for (setting, job), (_, m) in zip(todo, run_all([j for _, j in todo], a.jobs)):
        result["rows"].append(row(setting, job, m))
    print(table(result))
    return {result_base("ml100k", "cold"): result}
