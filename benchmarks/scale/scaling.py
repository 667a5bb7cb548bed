"""Cost growth with log size: build, peak memory, training and evaluation at 1M/4M/16M events.

Synthetic logs (``data_builders.synthetic``) with users grown with events (60 per user) and
a fixed catalogue (50k items; ``--items`` for another, e.g. 1M). For each size, each stage in
a fresh subprocess (``children.py``; the runner's peak RSS is that stage's own):

- build: read + build + save of the graph directory, wall seconds and peak RSS;
- train, full-graph, mini-batch, ``minibatch-shared`` (mini-batch with one negative set per
  batch, ``share_negatives=true``) and ``auto`` (the default ``minibatch=auto``, which records
  the mode it chose); all ``loss=sampled``, package defaults otherwise; ``default`` (no
  overrides at all) and ``default-dense`` (the defaults with dense AdamW over the user table,
  the reference for the row-wise optimizer of ``graphseq/training/optim.py``):
  ``--steps`` timed training steps after one warm-up step; an epoch is **extrapolated** as
  steps per epoch × median seconds per step;
- evaluation: item encoding of the whole catalogue (once per evaluation) and full-catalogue
  scoring of a fixed sample of ``--eval-users`` test users; seconds per user of a whole
  evaluation = encode / users + scoring per sampled user (extrapolated).

Log-log slopes are fitted over the sizes (ratios within one run on a shared machine).
``--interactions-only N`` also times default-config ``graphseq`` (full softmax, full-graph)
on an N-event log without its item file, to extrapolate a whole run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.runner import run

CHILDREN = Path(__file__).with_name("children.py")
NUM_ITEMS = 50_000


def _run_child(*args: str, cache: Path | None = None) -> dict:
    """One measurement in a fresh process (:mod:`benchmarks.scale.children`): its JSON line,
    with the runner's wall seconds and peak RSS; with ``cache``, a saved result is reused."""
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    res = run([sys.executable, CHILDREN, *args])
    out = {**res.last_json(), "wall_s": res.wall_s, "peak_rss_mb": res.peak_rss_mb}
    if cache is not None:
        cache.write_text(json.dumps(out))
    return out


def _tag(events: int, items: int) -> str:
    """File-name key of a size: ``10000000``, or ``10000000-1000000i`` off the default catalogue."""
    return f"{events}" if items == NUM_ITEMS else f"{events}-{items}i"


def _log_dir(work: Path, events: int, items: int = NUM_ITEMS) -> Path:
    from data_builders.synthetic import spec_for_events
    from data_builders.synthetic_io import write_synthetic

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


def measure(
    work: Path,
    sizes: list[int],
    steps: int = 10,
    eval_users: int = 1024,
    modes: tuple[str, ...] = ("full", "minibatch"),
    full_max_events: int = 4_000_000,
    interactions_only: int = 0,
    items: int = NUM_ITEMS,
) -> dict:
    """Every size's build and training modes, the table and the log-log slopes; with
    ``interactions_only`` N, the default config on an N-event log without its item file."""
    work.mkdir(parents=True, exist_ok=True)
    rows = [
        _measure(work, n, steps, eval_users, list(modes), full_max_events, items) for n in sizes
    ]
    slopes, values = _table(rows)
    result = {"rows": rows, "slopes": slopes, "fitted_or_measured": values, "steps": steps}
    result.update(eval_users=eval_users, full_max_events=full_max_events)
    if interactions_only:
        n = interactions_only
        src, graph = _log_dir(work, n), work / "graph-interactions"
        b = _run_child("build", str(src), str(graph), "1", cache=work / f"build-io-{n}.json")
        cache = work / f"train-io-{n}-{steps}-{eval_users}.json"
        t = _run_child("train", str(graph), "default", str(steps), str(eval_users), cache=cache)
        result["interactions_only"] = {"build": b, "train": t}
        print(f"interactions-only {b['events']:,} events: {t['epoch_s_extrapolated']:.0f} s/epoch "
              f"(extrap.), evaluation {t['eval_s_extrapolated']:.0f} s", file=sys.stderr)  # fmt: skip
    return result


def plot(result: dict, path: Path) -> None:
    """The cost curves of a result (nothing with a single size)."""
    _plot(result["rows"], result["slopes"], result["fitted_or_measured"], path)
