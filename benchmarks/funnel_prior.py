"""Can the funnel say which of a user's carted items gets bought next? (no training)

On Tmall 16% of test purchases are of an item the same user carted or faved before, and
every model given the own-history pointer ranks those items first; what separates the
pointer models there is the order of the user's own items. This script measures, on the
users whose target is one of their own items (the ``own-edge`` segment of
``segments.py``), NDCG@10 of ranking their own not-yet-bought items by

- ``recency``: a recency-decayed count of the user's events on the item,
  ``Σ exp(-age / τ)`` (age in events), τ chosen on validation: the untrained pointer;
- ``recency + funnel``: that plus ``β · log r(i)``, where ``r(i)`` is the item's
  conversion rate in the scoring graph: of the other users who carted or faved it, the
  share who bought it afterwards (shrunk toward the catalogue's rate; the graph's 2-hop
  cart → buy evidence, the cascade MB-CGCN and CRGCN propagate). β chosen on validation.

Everything is read from the scoring graph of each split, so the leakage rule holds.

    python benchmarks/funnel_prior.py --graph /tmp/mb/graph_all --split leave_last_out
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_builders.store import read_graph
from graphseq.graph.events import EventTable
from graphseq.graph.splits import Split, make_split, scoring_input

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segments import own_events  # noqa: E402

TAUS = (1.0, 3.0, 10.0, 30.0, 100.0)
BETAS = (0.0, 0.03, 0.1, 0.3, 1.0)
SHRINK = 5.0  # pseudo-users at the catalogue's conversion rate


def conversion(ev: EventTable, mask: torch.Tensor) -> tuple[pd.DataFrame, float]:
    """Per item of the graph in ``mask``: ``n`` users with a non-target event on it, ``k`` of
    them with a target event on it after their first non-target one; and the overall rate."""
    idx = torch.nonzero(mask).flatten().numpy()  # event order: chronological per user
    e = pd.DataFrame({"user": ev.user[idx].numpy(), "item": ev.item[idx].numpy(),
                      "pos": idx, "target": ev.is_target[idx].numpy()})  # fmt: skip
    first = e[~e["target"]].groupby(["user", "item"])["pos"].min().rename("p0")
    last_buy = e[e["target"]].groupby(["user", "item"])["pos"].max().rename("pb")
    m = first.to_frame().join(last_buy, how="left")
    m["conv"] = m["pb"] > m["p0"]
    g = m.groupby(level="item")["conv"].agg(n="size", k="sum")
    return g, float(g["k"].sum() / max(g["n"].sum(), 1))


def own_items(ev: EventTable, split_name: str, split: Split) -> pd.DataFrame:
    """One row per own event of the own-edge segment (``segments.own_events``): its age,
    whether its item is the target, and the item's conversion rate without this user."""
    inp = scoring_input(ev, split, split_name)
    h = own_events(ev, inp)
    tgt = ev.item[inp.target_idx].numpy()
    h["hit"] = h["item"].to_numpy() == tgt[h["row"].to_numpy()]
    g, rate = conversion(ev, inp.graph_mask)
    c = g.reindex(h["item"])
    # this user carted/faved the item and has not bought it: one of the n, none of the k
    n = c["n"].fillna(1).to_numpy() - 1
    h["log_r"] = np.log((c["k"].fillna(0).to_numpy() + SHRINK * rate) / (n + SHRINK))
    return h[h["row"].isin(h.loc[h["hit"], "row"])]  # the own-edge segment


def ndcg(h: pd.DataFrame, tau: float, beta: float) -> float:
    """Mean NDCG@10 of the segment's targets among their own items."""
    s = (
        h.assign(s=np.exp(-h["age"] / tau))
        .groupby(["row", "item"], as_index=False)
        .agg(s=("s", "sum"), log_r=("log_r", "first"), hit=("hit", "first"))
    )
    s["s"] += beta * s["log_r"]
    s["rank"] = s.sort_values("s", ascending=False, kind="stable").groupby("row").cumcount()
    r = s.loc[s["hit"], "rank"].to_numpy()
    return float(np.where(r < 10, 1.0 / np.log2(r + 2.0), 0.0).mean())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graph", required=True)
    p.add_argument("--split", default="leave_last_out")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    ev = EventTable.from_graph(read_graph(a.graph))
    split = make_split(ev, a.split)
    data = {name: own_items(ev, name, split) for name in ("valid", "test")}
    valid = {(t, b): ndcg(data["valid"], t, b) for t in TAUS for b in BETAS}
    tau0 = max(TAUS, key=lambda t: valid[(t, 0.0)])
    tau1, beta1 = max(valid, key=valid.get)
    res = {"graph": a.graph, "split": a.split, "segment_users": {
               k: int(v.loc[v["hit"], "row"].nunique()) for k, v in data.items()},
           "recency": {"tau": tau0, "valid": valid[(tau0, 0.0)],
                       "test": ndcg(data["test"], tau0, 0.0)},
           "recency + funnel": {"tau": tau1, "beta": beta1, "valid": valid[(tau1, beta1)],
                                "test": ndcg(data["test"], tau1, beta1)}}  # fmt: skip
    print(json.dumps(res, indent=1))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
