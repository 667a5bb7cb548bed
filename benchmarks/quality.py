"""Shared by the quality benchmarks (``ml100k.py``, ``multibehavior.py``): train runs in
subprocesses (resumable, one thread each), and summarise them with seed sd and two-level
bootstrap intervals (``graphseq.stats``: seeds and users resampled, users paired)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from graphseq.stats import two_level_bootstrap

Job = tuple[str, int, Path, str, list[str], Path]  # name, seed, run dir, model, --set, graph


def train(job: Job, threads: int = 1) -> dict:
    """``graphseq train`` for one job (resumed when its directory holds a partial run)."""
    name, seed, out, model, sets, graph = job
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    if out.exists():
        cmd = [sys.executable, "-m", "graphseq", "train", "--resume", str(out)]
    else:
        cmd = [sys.executable, "-m", "graphseq", "train", "--graph", str(graph), "--model", model,
               "--out", str(out), "--set", f"seed={seed}", *sets]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())


def run_all(jobs: list[Job], workers: int) -> list[tuple[Job, dict]]:
    with ThreadPoolExecutor(workers) as pool:
        return list(zip(jobs, pool.map(train, jobs)))


def per_user(run_dir: Path, metric: str = "NDCG@10") -> pd.Series:
    return pd.read_parquet(run_dir / "per_user.parquet").set_index("user")[metric]


def summarise(
    results: list[tuple[Job, dict]],
    reference: str | tuple[str, ...],
    extra: dict[str, list[pd.Series]] | None = None,
) -> tuple[list[dict], dict[str, dict]]:
    """Rows (mean, seed sd, Hit, MRR, valid, time) per run name, and ``reference − other``
    for every other name (two-level bootstrap over seeds and the common test users), for
    each reference given that has runs. ``extra``: more per-user columns (one Series per
    seed) without metrics rows of their own."""
    rows, scores = [], {}
    for name in dict.fromkeys(j[0] for j, _ in results):
        rows.append(metrics_row(name, [m for j, m in results if j[0] == name]))
        scores[name] = [per_user(j[2]) for j, _ in results if j[0] == name]
    scores.update(extra or {})
    tests = {}
    for ref in (reference,) if isinstance(reference, str) else reference:
        if ref not in scores:
            continue
        users = scores[ref][0].index
        for other, cols in scores.items():
            common = users.intersection(cols[0].index)
            if other == ref or len(common) < len(users):
                continue
            a = np.stack([c.loc[users].to_numpy() for c in scores[ref]])
            b = np.stack([c.loc[users].to_numpy() for c in cols])
            tests[f"{ref} vs {other}"] = two_level_bootstrap(a, b)
    return rows, tests


def metrics_row(name: str, ms: list[dict]) -> dict:
    """One table row from the ``metrics.json`` of each seed."""
    nd = [m["test"]["NDCG@10"] for m in ms]
    return {
        "model": name, "seeds": len(ms), "test NDCG@10": float(np.mean(nd)),
        "sd": float(np.std(nd, ddof=1)) if len(nd) > 1 else 0.0,
        "Hit@10": float(np.mean([m["test"]["Hit@10"] for m in ms])),
        "MRR@10": float(np.mean([m["test"]["MRR@10"] for m in ms])),
        "valid NDCG@10": float(np.mean([m["valid"]["NDCG@10"] for m in ms])),
        "epochs": float(np.mean([m.get("epochs", 0) for m in ms])),
        "s/epoch": float(np.mean([m.get("seconds_per_epoch") or 0 for m in ms])),
        "train s": float(np.mean([m.get("train_seconds") or 0 for m in ms])),
        "add-ons": _addons(ms[0]),
    }  # fmt: skip


def _addons(m: dict) -> str:
    out = []
    ig = m.get("item_graph")
    if ig and ig.get("weight"):
        out.append(f"item graph w={ig['weight']:g}")
    if any(abs(v["weight"]) > 0 for v in (m.get("own_history") or {}).values()):
        ch = m.get("own_history_choice") or {}
        tag = f" (x{ch['scale']:g}, decay /{ch['sharpen']:g})" if ch else ""
        out.append("own history" + tag)
    return ", ".join(out)


def report(rows: list[dict], tests: dict[str, dict], out: Path, **meta: object) -> None:
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    for k, v in tests.items():
        print(f"{k}: diff {v['diff']:+.4f}  95% CI [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]  "
              f"P(diff<=0) {v['p_le_0']:.4f}")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, "table": rows, "bootstrap": tests}, indent=2, default=float))


def per_run_cli(
    doc: str,
    measure: Callable[[str, argparse.Namespace], dict],
    argv: list[str] | None = None,
    add_args: Callable[[argparse.ArgumentParser], None] | None = None,
) -> list[dict]:
    """The command line of a no-training probe of finished runs: ``RUN ... [--out FILE]``.
    ``measure(run, args)`` per run; each result printed as a JSON line, all of them written
    to ``--out``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", type=Path)
    if add_args is not None:
        add_args(p)
    a = p.parse_args(argv)
    res = [measure(r, a) for r in a.runs]
    for r in res:
        print(json.dumps(r))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    return res
