"""Appending later events (after every user's test event, and new users after the cutoff)
leaves every test-time user representation and score unchanged."""

from __future__ import annotations

import pandas as pd
import torch

from data_builders.build import build_graph
from data_builders.log import CanonicalLog
from graphseq.config import TrainConfig
from graphseq.evaluate import evaluate
from graphseq.graph.context import ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.splits import global_time, leave_last_out
from graphseq.models import GraphShape, build_model


def _later_events(log: CanonicalLog, new_users: bool) -> CanonicalLog:
    ev = log.events
    t_max, line = int(ev["timestamp"].max()), int(ev["line"].max())
    users = ev["user"].drop_duplicates().to_numpy()
    items = ev["item"].drop_duplicates().to_numpy()
    n = 3 * len(users)
    g = torch.Generator().manual_seed(0)
    pick = torch.randint(len(items), (n,), generator=g).numpy()
    who = [f"new{k % 40}" for k in range(n)] if new_users else list(users) * 3
    later = pd.DataFrame({
        "user": who, "item": items[pick], "timestamp": t_max + 1 + torch.arange(n).numpy(),
        # known users get non-target events (a later buy would become their test target)
        "behavior": (["buy", "click", "cart"] if new_users else ["click", "cart", "click"]) * len(users),
        "value": 1.0,
        "line": line + 1 + torch.arange(n).numpy(),
    })  # fmt: skip
    return CanonicalLog(
        pd.concat([ev, later], ignore_index=True), items=log.items, targets=log.targets
    )


def _scores(log, cfg, split_fn, state=None):
    data, ids, _ = build_graph(log)
    ev, side = EventTable.from_graph(data), ItemSide.from_graph(data)
    torch.manual_seed(0)
    model = build_model(cfg, GraphShape.of(ev, side))
    if state is not None:
        model.load_state_dict(state)
    if getattr(model, "item_graph", None) is not None:  # cover the fused item–item graph too
        model.item_graph.weight.fill_(1.0)
    model.eval()
    res = evaluate(model, ev, split_fn(ev), "test", side, max_len=cfg.max_seq_len)
    users = ids["user"][res.per_user["user"].numpy()]
    return model.state_dict(), dict(zip(users, res.per_user["rank"].tolist())), res.metrics


def test_later_events_of_known_users_change_nothing(small_log):
    cfg = TrainConfig(
        model="graphseq",
        max_seq_len=30,
        snapshot_scale=True,
        views=("cooc", "tag", "behavior"),
        dropout=0.0,
    )
    state, ranks, metrics = _scores(small_log, cfg, leave_last_out)
    _, ranks2, metrics2 = _scores(
        _later_events(small_log, new_users=False), cfg, leave_last_out, state
    )
    assert ranks == ranks2 and metrics == metrics2


def test_new_users_after_the_cutoff_change_nothing(small_log):
    # no user-sized parameters (no coarse scale), so the grown user table can reuse the weights
    cfg = TrainConfig(
        model="graphseq", max_seq_len=30, views=("cooc", "tag"), snapshot_scale=False, dropout=0.0
    )
    t = small_log.events["timestamp"]
    cut = (int(t.quantile(0.8)), int(t.quantile(0.9)))

    def split(ev):
        return global_time(ev, *cut)

    state, ranks, metrics = _scores(small_log, cfg, split)
    _, ranks2, metrics2 = _scores(_later_events(small_log, new_users=True), cfg, split, state)
    assert ranks == ranks2 and metrics == metrics2
