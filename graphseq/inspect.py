"""Look into finished runs without training them again (``graphseq inspect``).

- :func:`segments`: ``graphseq compare`` with the repeat and explore segments
  (:mod:`graphseq.segments`) also for runs written before ``per_user.parquet`` held them,
  and what the repeat users' own items look like;
- :func:`view_usage`: how much a trained run uses its item views;
- :func:`rescore`: a run's post-training choices made again with today's scoring code.

The modules that pull torch are imported inside the functions, so the CLI starts light.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from graphseq.commands import print_compare

METRIC = "NDCG@10"
NO_REPEAT = "no repeat user"


def _test_input(graph: str | Path, split: str, quantiles: tuple[float, float]):
    """The opened graph and the test split's scoring input of ``graph``."""
    from graphseq.graph.data import open_graph
    from graphseq.graph.splits import scoring_input

    data = open_graph(graph, split, quantiles, require_targets=False)
    return data, scoring_input(data.events, data.split, "test")


def user_segments(
    graph: str | Path, split: str, quantiles: tuple[float, float], exclude_seen: bool = True
) -> pd.Series:
    """Raw test user id → segment (:func:`graphseq.segments.segment_codes`), for runs whose
    ``per_user.parquet`` predates the ``segment`` column."""
    from graphseq.segments import SEGMENT_NAMES, segment_codes

    data, inp = _test_input(graph, split, quantiles)
    codes = segment_codes(data.events, inp, exclude_seen).numpy()
    users = data.ids["user"][data.events.user[inp.target_idx].numpy()].astype(str)
    return pd.Series(np.asarray(SEGMENT_NAMES)[codes], index=pd.Index(users, name="user"))


def own_events(ev, inp, exclude_seen: bool = True) -> pd.DataFrame:
    """Each scored row's own non-target events on candidate items
    (:func:`graphseq.segments.own_events`): ``row``, ``item``, ``pos`` (index into
    ``inp.hist_idx``, so larger is later) and ``age`` (events before the row's last, 0 for it)."""
    from graphseq.segments import own_events as own

    row, pos = own(ev, inp, exclude_seen)
    age = inp.hist_ptr[1:][row] - 1 - pos
    return pd.DataFrame({"row": row.numpy(), "item": ev.item[inp.hist_idx[pos]].numpy(),
                         "pos": pos.numpy(), "age": age.numpy()})  # fmt: skip


def own_item_stats(
    graph: str | Path, split: str, quantiles: tuple[float, float], exclude_seen: bool = True
) -> dict:
    """Of the repeat test users: how many distinct own non-target items they have (not
    bought before, with ``exclude_seen``: those are excluded from the ranking), how often
    the target is the most recent of them, and the NDCG@10 of ranking them by recency alone
    (most recent first), the simplest pointer."""
    data, inp = _test_input(graph, split, quantiles)
    ev = data.events
    h = own_events(ev, inp, exclude_seen).groupby(["row", "item"], as_index=False)["pos"].max()
    h["rank"] = h.sort_values("pos", ascending=False).groupby("row").cumcount()
    tgt = pd.DataFrame({"row": np.arange(len(inp.target_idx)),
                        "item": ev.item[inp.target_idx].numpy()})  # fmt: skip
    hit = h.merge(tgt, on=["row", "item"])
    if hit.empty:  # no repeat user: said, not averaged
        return {"users": 0, "note": NO_REPEAT}
    n_own = h.groupby("row").size().loc[hit["row"]]
    r = hit["rank"].to_numpy()
    ndcg = np.where(r < 10, 1.0 / np.log2(r + 2.0), 0.0)
    return {"users": len(hit), "own_items_mean": float(n_own.mean()),
            "own_items_median": float(n_own.median()), "target_most_recent": float((r == 0).mean()),
            "recency_rank_NDCG@10": float(ndcg.mean())}  # fmt: skip


def _named(run: str) -> tuple[str, str]:
    """``NAME=DIR`` or ``DIR`` (named for its directory, as ``graphseq compare`` does)."""
    if "=" in run and not Path(run).exists():
        name, path = run.split("=", 1)
        return name, path
    return Path(run).resolve().name, run


def segments(
    runs: list[str], graph: str | Path | None = None, metric: str = METRIC, n: int = 10_000
) -> dict:
    """``graphseq compare`` of ``runs`` (``NAME=DIR`` or ``DIR``: a run or a directory of
    seed runs; the first is the reference) with every segment, for runs written before
    ``per_user.parquet`` had its ``segment`` column too: theirs is computed from ``graph``
    (default: the first run's) as the evaluation does. Plus ``own_items``
    (:func:`own_item_stats`)."""
    from graphseq.config import load_config
    from graphseq.stats import compare, load_group
    from graphseq.training.run import resolve_graph

    named = [_named(r) for r in runs]
    if len({name for name, _ in named}) < len(named):
        raise DataError("two runs have one name", hint="name them: NAME=DIR")
    groups = [load_group(path, metric) for _, path in named]
    first = groups[0].paths[0]
    cfg = load_config(first / "config.yaml")
    graph = resolve_graph(first, cfg.graph, graph)
    quantiles = tuple(cfg.global_time_quantiles)
    computed = None
    for g, (name, _) in zip(groups, named):
        g.name = name
        g.per_user.index = g.per_user.index.astype(str)
        if g.segment is None:  # a run from before per-user segments
            if computed is None:
                computed = user_segments(graph, cfg.split, quantiles, cfg.exclude_seen)
            g.segment = computed
    return {"graph": str(graph), "split": cfg.split, "metric": metric, "reference": named[0][0],
            "runs": dict(named), "compare": compare(groups, n),
            "own_items": own_item_stats(graph, cfg.split, quantiles, cfg.exclude_seen)}  # fmt: skip


def view_usage(run_dir: str | Path) -> dict:
    """``{"run", "views": {name: weight}, "gain_abs_mean", "view_share"}`` of one run, on
    its full scoring graph: the mean fusion weight of each view over all items (what
    ``metrics.json`` reports as ``view_weights``), the mean of ``|view_gain|``, and the views'
    share of the item vectors, ``mean ‖view_gain ⊙ fused‖ / mean ‖input‖`` (0 when the
    network ignores the views; training starts there)."""
    from graphseq.recommend import load_run

    run = load_run(run_dir)  # its full-graph encoding: run.enc
    enc = getattr(run.model, "items", None)
    if not getattr(enc, "views", None):
        raise DataError("not a run with item views (graphseq with views)", file=run_dir)
    x = enc.input().detach()
    term = run.enc.items.detach() - x  # items = input + view_gain ⊙ fused
    w = run.enc.view_weights
    weights = [1.0] if w is None else w.mean(0).tolist()
    return {
        "run": str(run_dir),
        "views": {n: round(float(v), 4) for n, v in zip(run.model.views, weights)},
        "gain_abs_mean": round(float(enc.view_gain.detach().abs().mean()), 4),
        "view_share": round(float(term.norm(dim=1).mean() / x.norm(dim=1).mean()), 4),
    }


def rescore(path: str | Path, valid_users: int = 0) -> dict:
    """Make a finished run's post-training choices again, with today's scoring code and the
    trainer's rule: every step of its post-training plan (the item–item graph's weight and
    decay, the own-history calibration, ...) back on its neutral setting, chosen again on
    validation in order, then the test split scored once. The trained weights are not
    touched. ``checkpoint.pt``, ``per_user.parquet`` and ``metrics.json`` are updated; the
    previous figures are kept under ``before_rescore``. ``valid_users`` N chooses on N
    validation users drawn from the run's seed (0: the run's own setting). Returns the new
    ``metrics.json``."""
    import torch

    from data_builders.atomic import write_json
    from graphseq.evaluate import EvalCache, evaluate_with
    from graphseq.recommend import load_run
    from graphseq.training import run as rundir
    from graphseq.training.posthoc import choose_plan, plan_of

    path = Path(path)
    run = load_run(path)
    metrics = json.loads((path / "metrics.json").read_text())
    plan = plan_of(run.model)
    if not plan:  # nothing is chosen after training for this model
        return metrics
    c = run.cfg.replace(valid_users=valid_users) if valid_users else run.cfg
    sp = run.data.split  # the run's own split, opened with it
    cache = EvalCache()  # the weights are fixed: one scoring context for every validation

    def valid():
        return evaluate_with(c, run.model, run.ev, sp, "valid", run.side, cache)

    with torch.no_grad():
        tuned = choose_plan(plan, lambda: valid().metrics["NDCG@10"], reset=True)
        valid_result, test = valid(), run.evaluate("test")  # test: every user, as trained
    ckpt = rundir.load_checkpoint(path / "checkpoint.pt")
    ckpt["state_dict"] = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
    ckpt.pop("checkpoint_version")
    rundir.save_checkpoint(path / "checkpoint.pt", ckpt)
    rundir.write_per_user(path, test.per_user, run.id_maps)
    before = {k: metrics[k] for k in ("valid", "test", *tuned) if k in metrics}
    metrics.update(valid=valid_result.metrics, test=test.metrics, before_rescore=before, **tuned)
    metrics["segments"] = {"valid": valid_result.segments, "test": test.segments}
    metrics["protocol"]["valid_users"] = valid_result.num_users
    hist = run.model.scorer.history
    if hist is not None:
        metrics["own_history"] = hist.by_behavior(run.ev.behaviors)
    write_json(path / "metrics.json", metrics)
    return metrics


def rescore_summary(run: str | Path, m: dict) -> dict:
    """What :func:`rescore` changed: test NDCG@10 now and before, and the new choices."""
    chosen = {k: {n: v for n, v in m[k].items() if n != "grid"}
              for k in ("item_graph", "own_history_choice", "neighbors") if k in m}  # fmt: skip
    before = m.get("before_rescore", {}).get("test", {}).get(METRIC)
    return {"run": str(run), f"test {METRIC}": m["test"][METRIC], "before": before,
            "chosen": chosen}  # fmt: skip


def _say(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def main(a: argparse.Namespace) -> int:
    """``graphseq inspect segments|views|rescore`` (the parser is in :mod:`graphseq.cli`)."""
    out: Any
    if a.what == "segments":
        out = segments(a.runs, a.graph, a.metric)
        print_compare(out["compare"], out["metric"])
        _say("\nrepeat users' own items: " + json.dumps(out["own_items"]))
    elif a.what == "views":
        out = [view_usage(r) for r in a.runs]
        for r in out:
            views = " · ".join(f"{n} {w:.3f}" for n, w in r["views"].items())
            _say(f"{r['run']}: views {views}; |gain| {r['gain_abs_mean']:.4f}; "
                 f"views' share {r['view_share']:.4f}")  # fmt: skip
    else:
        out = []
        for r in a.runs:
            out.append(rescore_summary(r, rescore(r, a.valid_users)))
            s = out[-1]
            _say(f"{r}: test {METRIC} {s[f'test {METRIC}']:.4f} (before {s['before']}); "
                 f"chosen {json.dumps(s['chosen'])}")  # fmt: skip
    if a.json:
        print(json.dumps(out))
    return 0
