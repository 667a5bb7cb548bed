"""Per-segment test scores: targets the user's own earlier edges reach, and those they do not.

On a multi-behavior log a good share of target events (Tmall: a purchase) follow an earlier
non-target event of the same user on the same item (a cart or a fav). Any model given the
own-history pointer (``own_history``) scores those well; whether graph views add anything
shows on the rest. This script splits the test users of finished runs into

- ``own-edge``: the target item is among the user's earlier events in the scoring graph
  (a non-target behavior: earlier target events are seen items, never targets);
- ``other``: every other test user,

and reports, per model, mean test NDCG@10 ± seed sd on each segment, and the paired
two-level bootstrap (seeds × users, ``graphseq.stats.two_level_bootstrap``) of the reference
model minus each other model within each segment. No training: it reads ``per_user.parquet``
of the runs and the graph directory they were trained on.

    python benchmarks/segments.py --graph /tmp/mb/graph_all \\
        --run graphseq=/tmp/mb/leave_last_out/graphseq \\
        --run "sasrec + own history=/tmp/mb/leave_last_out/sasrec_+own_history" \\
        --out benchmarks/results/segments_tmall.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_builders.store import load_id_maps, read_graph
from graphseq.config import load_config
from graphseq.graph.events import EventTable
from graphseq.graph.splits import ScoringInput, make_split, scoring_input
from graphseq.stats import load_group, two_level_bootstrap

METRIC = "NDCG@10"


def own_edge_users(graph: str | Path, split: str, quantiles: tuple[float, float]) -> pd.Series:
    """Raw test user id → whether the test target's item is in the user's own history."""
    ev = EventTable.from_graph(read_graph(graph))
    inp = scoring_input(ev, make_split(ev, split, quantiles), "test")
    counts = inp.hist_ptr[1:] - inp.hist_ptr[:-1]
    row = torch.repeat_interleave(torch.arange(len(counts)), counts)
    target_item = ev.item[inp.target_idx]
    hit = torch.zeros(len(counts), dtype=torch.bool)
    hit[row[ev.item[inp.hist_idx] == target_item[row]]] = True
    users = load_id_maps(graph)["user"][ev.user[inp.target_idx].numpy()]
    return pd.Series(hit.numpy(), index=pd.Index(users, name="user"))


def own_events(ev: EventTable, inp: ScoringInput) -> pd.DataFrame:
    """Each scored row's own non-target events on items it has not bought before (bought
    items are excluded from the ranking): ``row``, ``item``, ``pos`` (index into
    ``inp.hist_idx``, so larger is later) and ``age`` (events before the row's last, 0 for it)."""
    counts = (inp.hist_ptr[1:] - inp.hist_ptr[:-1]).numpy()
    row = np.repeat(np.arange(len(counts)), counts)
    pos = np.arange(len(row))
    h = pd.DataFrame({"row": row, "item": ev.item[inp.hist_idx].numpy(), "pos": pos,
                      "age": np.repeat(inp.hist_ptr[1:].numpy(), counts) - 1 - pos,
                      "target": ev.is_target[inp.hist_idx].numpy()})  # fmt: skip
    seen = h[h["target"]].set_index(["row", "item"]).index
    keep = ~h["target"] & ~h.set_index(["row", "item"]).index.isin(seen)
    return h[keep].drop(columns="target")


def own_item_stats(graph: str | Path, split: str, quantiles: tuple[float, float]) -> dict:
    """Of the own-edge test users: how many distinct own non-target items they have (not
    bought before: those are excluded from the ranking), how
    often the target is the most recent of them, and the NDCG@10 of ranking them by recency
    alone (most recent first), the simplest pointer."""
    ev = EventTable.from_graph(read_graph(graph))
    inp = scoring_input(ev, make_split(ev, split, quantiles), "test")
    h = own_events(ev, inp).groupby(["row", "item"], as_index=False)["pos"].max()
    h["rank"] = h.sort_values("pos", ascending=False).groupby("row").cumcount()
    tgt = pd.DataFrame({"row": np.arange(len(inp.target_idx)),
                        "item": ev.item[inp.target_idx].numpy()})  # fmt: skip
    hit = h.merge(tgt, on=["row", "item"])
    n_own = h.groupby("row").size().loc[hit["row"]]
    r = hit["rank"].to_numpy()
    ndcg = np.where(r < 10, 1.0 / np.log2(r + 2.0), 0.0)
    return {"users": len(hit), "own_items_mean": float(n_own.mean()),
            "own_items_median": float(n_own.median()), "target_most_recent": float((r == 0).mean()),
            "recency_rank_NDCG@10": float(ndcg.mean())}  # fmt: skip


def segment_table(
    groups: dict[str, pd.DataFrame], own: pd.Series, reference: str
) -> dict[str, dict]:
    """``{segment: {"users", "share", "models": {name: mean/sd}, "vs": {name: bootstrap}}}``."""
    out = {}
    users = groups[reference].index
    for seg, mask in (("own-edge", True), ("other", False), ("all", None)):
        sel = users if mask is None else users[own.reindex(users).fillna(False).to_numpy() == mask]
        per_seed = {n: g.loc[sel].to_numpy().T for n, g in groups.items()}  # (S, U)
        models = {}
        for n, a in per_seed.items():
            means = a.mean(1)
            sd = float(means.std(ddof=1)) if len(means) > 1 else 0.0
            models[n] = {"mean": float(means.mean()), "seed_sd": sd, "seeds": len(means)}
        vs = {
            n: two_level_bootstrap(per_seed[reference], a)
            for n, a in per_seed.items()
            if n != reference
        }
        out[seg] = {"users": len(sel), "share": len(sel) / len(users), "models": models, "vs": vs}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graph", required=True, help="the graph directory the runs were trained on")
    p.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                   help="a run or a directory of seed runs (repeatable); the first is the reference")  # fmt: skip
    p.add_argument("--out", type=Path, help="write the table as JSON here")
    a = p.parse_args(argv)
    named = [r.split("=", 1) for r in a.run]
    loaded = {name: load_group(path, METRIC) for name, path in named}
    cfg = load_config(next(iter(loaded.values())).paths[0] / "config.yaml")
    own = own_edge_users(a.graph, cfg.split, tuple(cfg.global_time_quantiles))
    groups = {}
    for n, g in loaded.items():
        g.per_user.index = g.per_user.index.astype(str)
        groups[n] = g.per_user
    reference = named[0][0]
    table = segment_table(groups, own, reference)
    for seg, t in table.items():
        print(f"\n{seg}: {t['users']:,} test users ({t['share']:.1%})")
        print(
            f"| model | seeds | test {METRIC} | {reference} − model [95% CI] |\n|---|---|---|---|"
        )
        for n, m in t["models"].items():
            v = t["vs"].get(n)
            ci = f"{v['diff']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]" if v else "—"
            print(f"| {n} | {m['seeds']} | {m['mean']:.4f} ± {m['seed_sd']:.4f} | {ci} |")
    stats = own_item_stats(a.graph, cfg.split, tuple(cfg.global_time_quantiles))
    print("\nown-edge users' own items:", json.dumps(stats))
    if a.out:
        res = {"graph": a.graph, "split": cfg.split, "metric": METRIC, "reference": reference,
               "runs": dict(named), "segments": table, "own_items": stats}  # fmt: skip
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
