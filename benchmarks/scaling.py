"""Cost growth with log size: build, peak memory, training and evaluation at 1M/4M/16M events.

Synthetic logs (``data_builders/readers/synthetic.py``) with users grown with events (60 per
user) and a fixed catalogue (50k items; ``--items`` for another, e.g. 1M). For each size, in fresh subprocesses (so
``ru_maxrss`` is that stage's own peak):

- build: read + build + save of the graph directory, wall seconds and peak RSS;
- train, full-graph, mini-batch, ``minibatch-shared`` (mini-batch with one negative set per
  batch, ``share_negatives=true``) and ``auto`` (the default ``minibatch=auto``, which records
  the mode it chose); all ``loss=sampled``, package defaults otherwise; ``default`` (no
  overrides at all) and ``default-dense`` (the defaults with dense AdamW over the user table,
  the reference for the row-wise optimizer of ``graphseq/train/optim.py``):
  ``--steps`` timed training steps after one warm-up step; an epoch is **extrapolated** as
  steps per epoch × median seconds per step;
- evaluation: item encoding of the whole catalogue (once per evaluation) and full-catalogue
  scoring of a fixed sample of ``--eval-users`` test users; seconds per user of a whole
  evaluation = encode / users + scoring per sampled user (extrapolated).

Log-log slopes are fitted over the sizes (ratios within one run on a shared machine).
``--interactions-only N`` also times default-config ``graphseq`` (full softmax, full-graph)
on an N-event log without its item file, to extrapolate a whole run.

    OMP_NUM_THREADS=1 python benchmarks/scaling.py --work /tmp/scale --sizes 1000000 4000000 16000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NUM_ITEMS = 50_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_build(src: str, out: str, interactions_only: bool) -> dict:
    from data_builders.build import build_graph
    from data_builders.readers import read_log
    from data_builders.store import save_graph

    t0 = time.perf_counter()
    log = read_log("synthetic", Path(src))
    if interactions_only:
        log.items = None
    data, ids, report = build_graph(log)
    save_graph(out, data, ids, report, items=log.items, overwrite=True)
    secs = time.perf_counter() - t0
    return {"build_s": secs, "events": report["events"], "nodes": report["nodes"], "rss": _rss_mb()}


def _child_train(graph: str, mode: str, steps: int, eval_users: int) -> dict:
    import torch

    from graphseq.config import TrainConfig
    from graphseq.train.optim import dense_tables, make_optimizer
    from graphseq.train.trainer import Trainer

    torch.set_num_threads(1)
    over = {"full": dict(loss="sampled", minibatch=False),
            "minibatch": dict(loss="sampled", minibatch=True),
            "minibatch-shared": dict(loss="sampled", minibatch=True, share_negatives=True),
            "auto": dict(loss="sampled"),  # auto: the default minibatch=auto
            "minibatch-ce": dict(minibatch=True)}  # fmt: skip  # the full softmax, every step
    # "default" (or any other name): the package defaults, no overrides; "default-dense": the
    # defaults with dense AdamW over the user table (the reference for the row-wise optimizer)
    cfg = TrainConfig(graph=graph, model="graphseq", **over.get(mode, {}))
    t0 = time.perf_counter()
    tr = Trainer(cfg, Path(graph) / f"run-{mode}", progress=False)
    if mode == "default-dense":
        dense_tables(tr.model)
        tr.opt = make_optimizer(tr.model, tr.params, cfg.lr, cfg.weight_decay)
    setup_s = time.perf_counter() - t0
    batches = tr._batches(1)
    model = tr.model.train()
    per_step = []
    for step, idx in enumerate(itertools.islice(itertools.cycle(batches), steps + 1)):
        t = time.perf_counter()
        loss = model.loss(tr.train_ctx, tr.builder.make(idx, 1, step))  # as Trainer._train_epoch
        tr.opt.zero_grad(set_to_none=True)
        loss.backward()
        tr.opt.step()
        per_step.append(time.perf_counter() - t)
    step_s = float(np.median(per_step[1:]))  # the first step builds cached graphs
    train_peak = _rss_mb()  # the peak over setup and the training steps
    out = {
        "mode": mode,
        "chosen": tr.mode.as_dict(),  # what minibatch=auto (or the forced setting) resolved to
        "setup_s": setup_s,
        "first_step_s": per_step[0],
        "step_s": step_s,
        "steps_timed": len(per_step) - 1,
        "steps_per_epoch": len(batches),
        "epoch_s_extrapolated": step_s * len(batches),
        "train_peak_rss_mb": train_peak,
    }
    if eval_users > 0:  # 0: training steps only (the largest logs)
        out.update(_time_eval(tr, model, cfg.eval_batch_size, cfg.max_seq_len, eval_users))
    out["rss"] = _rss_mb()
    return out


def _time_eval(tr, model, batch_size: int, max_len: int, eval_users: int) -> dict:
    """One test evaluation's item encoding, and full-catalogue scoring of ``eval_users``."""
    import torch

    from graphseq.graph.context import GraphContext
    from graphseq.graph.sequences import pad_from_csr
    from graphseq.graph.splits import scoring_input

    tr.release_training_graph()  # as Trainer._evaluate does
    inp = scoring_input(tr.ev, tr.split, "test")
    ctx = GraphContext(tr.ev, inp.graph_mask, tr.side)
    model.eval()
    with torch.no_grad():
        rows = torch.randperm(len(inp.target_idx), generator=torch.Generator().manual_seed(0))
        rows = rows[:eval_users].sort().values
        users = tr.ev.user[inp.target_idx]
        t = time.perf_counter()  # once per evaluation: item table (+ full-graph snapshot pass)
        enc = model.encode(ctx)
        one = rows[:1]
        model.user_repr(
            ctx, enc, users[one], pad_from_csr(tr.ev, inp.hist_ptr, inp.hist_idx, one, 8)
        )
        encode_s = time.perf_counter() - t
        t = time.perf_counter()
        for b in rows.split(batch_size):
            hist = pad_from_csr(tr.ev, inp.hist_ptr, inp.hist_idx, b, max_len)
            model.score(model.user_repr(ctx, enc, users[b], hist), enc.items).topk(10)
        score_s = time.perf_counter() - t
    n_users = len(inp.target_idx)
    return {
        "encode_s": encode_s,
        "score_s_per_user": score_s / len(rows),
        "eval_s_per_user": encode_s / n_users + score_s / len(rows),
        "eval_s_extrapolated": encode_s + score_s / len(rows) * n_users,
        "eval_users_timed": len(rows),
        "test_users": n_users,
    }


def _run_child(*args: str, cache: Path | None = None) -> dict:
    """Run one measurement in a fresh process; with ``cache``, reuse a saved result."""
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    cmd = [sys.executable, __file__, "--child", *args]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = out.pop("rss")  # the child's own ru_maxrss
    if cache is not None:
        cache.write_text(json.dumps(out))
    return out


def _tag(events: int, items: int) -> str:
    """File-name key of a size: ``10000000``, or ``10000000-1000000i`` off the default catalogue."""
    return f"{events}" if items == NUM_ITEMS else f"{events}-{items}i"


def _log_dir(work: Path, events: int, items: int = NUM_ITEMS) -> Path:
    from data_builders.readers.synthetic import spec_for_events, write_synthetic

    d = work / f"log-{_tag(events, items)}"
    if not (d / "spec.json").exists():
        print(f"generating {events:,} events over {items:,} items (not timed) ...", file=sys.stderr)
        write_synthetic(d, spec_for_events(events, num_items=items), progress=False)
    return d


def slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log y on log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _measure(
    work: Path,
    events: int,
    steps: int,
    eval_users: int,
    modes: list[str],
    full_max: int,
    items: int = NUM_ITEMS,
) -> dict:
    tag = _tag(events, items)
    src, graph = _log_dir(work, events, items), work / f"graph-{tag}"
    row: dict = {"events_requested": events}
    b = _run_child("build", str(src), str(graph), "0", cache=work / f"build-{tag}.json")
    row.update(events=b["events"], users=b["nodes"]["user"], items=b["nodes"]["item"])
    row.update(build_s=b["build_s"], build_peak_mb=b["peak_rss_mb"])
    print(
        f"{events:,}: build {b['build_s']:.1f} s, peak {b['peak_rss_mb']:.0f} MB", file=sys.stderr
    )
    for mode in modes:
        if mode == "full" and events > full_max:
            print(f"  full: not run above {full_max:,} events (memory)", file=sys.stderr)
            continue
        cache = work / f"train-{tag}-{mode}-{steps}-{eval_users}.json"
        t = _run_child("train", str(graph), mode, str(steps), str(eval_users), cache=cache)
        row[mode] = t
        print(f"  {mode}: {t['step_s']:.2f} s/step × {t['steps_per_epoch']} steps, "
              f"peak {t['peak_rss_mb']:.0f} MB", file=sys.stderr)  # fmt: skip
    return row


FIGS = {  # figure name → how to read it from a row
    "build s": lambda r: r["build_s"],
    "build peak MB": lambda r: r["build_peak_mb"],
    "full-graph epoch s (extrap.)": lambda r: r["full"]["epoch_s_extrapolated"],
    "full-graph peak MB": lambda r: r["full"]["peak_rss_mb"],
    "mini-batch epoch s (extrap.)": lambda r: r["minibatch"]["epoch_s_extrapolated"],
    "mini-batch peak MB": lambda r: r["minibatch"]["peak_rss_mb"],
    "mini-batch shared negatives epoch s (extrap.)": lambda r: r["minibatch-shared"][
        "epoch_s_extrapolated"
    ],
    "default (auto) epoch s (extrap.)": lambda r: r["auto"]["epoch_s_extrapolated"],
    "default epoch s (extrap.)": lambda r: r["default"]["epoch_s_extrapolated"],
    "default training peak MB": lambda r: r["default"]["train_peak_rss_mb"],
    "default, dense AdamW, epoch s (extrap.)": lambda r: r["default-dense"]["epoch_s_extrapolated"],
    "eval s/user full-graph": lambda r: r["full"]["eval_s_per_user"],
    "eval s/user mini-batch": lambda r: r["minibatch"]["eval_s_per_user"],
}


def _table(rows: list[dict]) -> tuple[dict[str, float], dict[str, list]]:
    """Print the markdown table; slopes are fitted on measured points only, and a size that
    was not measured gets the fitted line's value, printed with ``~`` (extrapolated)."""
    ev = [r["events"] for r in rows]
    print("| figure | " + " | ".join(f"{e / 1e6:.1f}M events" for e in ev) + " | log-log slope |")
    print("|---|" + "---|" * (len(ev) + 1))
    slopes, values = {}, {}
    for k, f in FIGS.items():
        pts = [(e, f(r)) for e, r in zip(ev, rows) if _has(r, f)]
        if len(pts) < 2:
            continue
        a, c = np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)
        slopes[k] = float(a)
        ys = [f(r) if _has(r, f) else None for r in rows]
        values[k] = [y if y is not None else float(np.exp(c) * e**a) for e, y in zip(ev, ys)]
        cells = " | ".join(
            f"{v:.4g}" if y is not None else f"~{v:.4g}" for v, y in zip(values[k], ys)
        )
        print(f"| {k} | {cells} | {slopes[k]:.2f} |")
    return slopes, values


def _has(r: dict, f) -> bool:
    try:
        f(r)
        return True
    except KeyError:
        return False


def _plot(rows: list[dict], slopes: dict, values: dict, path: Path) -> None:
    """Measured points joined by lines; the fitted line dotted (over unmeasured sizes too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [r["events"] for r in rows]
    groups = [("seconds", ["build s", "full-graph epoch s (extrap.)", "mini-batch epoch s (extrap.)",
                           "default epoch s (extrap.)", "default, dense AdamW, epoch s (extrap.)"]),
              ("peak RSS MB", ["build peak MB", "full-graph peak MB", "mini-batch peak MB",
                               "default training peak MB"]),
              ("eval seconds per user", ["eval s/user full-graph", "eval s/user mini-batch"])]  # fmt: skip
    groups = [(y, keys) for y, keys in groups if any(k in slopes for k in keys)]
    if not groups:  # one size: no curve to draw
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4.5), squeeze=False)
    for ax, (ylabel, keys) in zip(axes[0], groups):
        for k in keys:
            if k in slopes:
                pts = [(e, FIGS[k](r)) for e, r in zip(ev, rows) if _has(r, FIGS[k])]
                line = ax.loglog(*zip(*pts), "o-", label=f"{k} (slope {slopes[k]:.2f})")[0]
                ax.loglog(ev, values[k], ":", color=line.get_color())  # fit, extrapolated
        lo, hi = ax.get_ylim()
        if hi / lo < 10:  # at least a decade, so a flat figure looks flat
            mid = (lo * hi) ** 0.5
            ax.set_ylim(mid / 10**0.5, mid * 10**0.5)
        ax.set_xlabel("events")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"graphseq cost growth (synthetic, {rows[0]['items']:,} items, 2-core CPU, 1 thread)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/scale"))
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per mode")
    p.add_argument("--eval-users", type=int, default=1024, help="test users scored")
    p.add_argument("--modes", nargs="+", default=["full", "minibatch"])
    p.add_argument("--full-max-events", type=int, default=4_000_000, help="skip full-graph above")
    p.add_argument("--interactions-only", type=int, default=0, help="events (0: skip)")
    p.add_argument("--items", type=int, default=NUM_ITEMS, help="catalogue size of every log")
    p.add_argument("--out", type=Path, default=RESULTS / "scaling.json")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [
        _measure(
            args.work, n, args.steps, args.eval_users, args.modes, args.full_max_events, args.items
        )  # fmt: skip
        for n in args.sizes
    ]
    slopes, values = _table(rows)
    result = {"rows": rows, "slopes": slopes, "fitted_or_measured": values, "steps": args.steps}
    result.update(eval_users=args.eval_users, full_max_events=args.full_max_events)
    if args.interactions_only:
        src, graph = _log_dir(args.work, args.interactions_only), args.work / "graph-interactions"
        n = args.interactions_only
        b = _run_child("build", str(src), str(graph), "1", cache=args.work / f"build-io-{n}.json")
        cache = args.work / f"train-io-{n}-{args.steps}-{args.eval_users}.json"
        t = _run_child(
            "train", str(graph), "default", str(args.steps), str(args.eval_users), cache=cache
        )
        result["interactions_only"] = {"build": b, "train": t}
        print(f"interactions-only {b['events']:,} events: {t['epoch_s_extrapolated']:.0f} s/epoch "
              f"(extrap.), evaluation {t['eval_s_extrapolated']:.0f} s", file=sys.stderr)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    _plot(rows, slopes, values, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *a = sys.argv[2:]
        if kind == "build":
            print(json.dumps(_child_build(a[0], a[1], a[2] == "1")))
        else:
            print(json.dumps(_child_train(a[0], a[1], int(a[2]), int(a[3]))))
    else:
        main()
