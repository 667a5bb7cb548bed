"""What the quality benchmarks share: ``graphseq train`` runs in subprocesses (resumable, one
thread each, ``--jobs`` at a time), summarised with seed sd and two-level bootstrap intervals
(``graphseq.stats``: seeds and users resampled, users paired)."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchmarks.runner import GRAPHSEQ, run, threads_env
from graphseq.stats import two_level_bootstrap


@dataclass(frozen=True)
class Variant:
    """One named run of a quality benchmark: ``graphseq train --model MODEL --set SETS``.

    ``seeded``: False for the deterministic models (one seed, the first).
    ``graph``: which of the benchmark's graphs it trains on (Tmall: ``all`` or ``buy``).
    """

    model: str
    sets: tuple[str, ...] = ()
    seeded: bool = True
    graph: str = "all"

    def describe(self) -> str:
        sets = f" --set {' '.join(self.sets)}" if self.sets else ""
        notes = [n for n, on in (("one seed", not self.seeded), ("buy graph", self.graph == "buy"))
                 if on]  # fmt: skip
        return f"--model {self.model}{sets}" + (f"  ({', '.join(notes)})" if notes else "")


class Job(NamedTuple):
    """One ``graphseq train`` run: variant name, seed, run directory, model, --set, graph."""

    name: str
    seed: int
    out: Path
    model: str
    sets: list[str]
    graph: Path


def result_base(dataset: str, study: str = "main", split: str = "leave_last_out") -> str:
    """``<dataset>[-<study>][-<split>]``: the main study and leave-last-out are left out."""
    parts = [dataset, study if study != "main" else "", split if split != "leave_last_out" else ""]
    return "-".join(p for p in parts if p)


def run_dir(work: Path, split: str, name: str, seed: int) -> Path:
    return work / split / name.replace(" ", "_") / f"seed{seed}"


def jobs_for(
    variants: dict[str, Variant],
    names: list[str],
    seeds: list[int],
    work: Path,
    split: str,
    graphs: dict[str, Path],
    extra: list[str] | None = None,
) -> list[Job]:
    """Every (variant, seed) job, ``split`` and ``extra`` overrides added to each."""
    jobs = []
    for name in names:
        v = variants[name]
        for seed in seeds if v.seeded else seeds[:1]:
            sets = [f"split={split}", *v.sets, *(extra or [])]
            jobs.append(Job(name, seed, run_dir(work, split, name, seed), v.model, sets,
                            graphs[v.graph]))  # fmt: skip
    return jobs


def train(job: Job, threads: int = 1) -> dict:
    """``graphseq train`` for one job (resumed when its directory holds a partial run)."""
    metrics = job.out / "metrics.json"
    if metrics.exists():
        return json.loads(metrics.read_text())
    if job.out.exists():
        cmd = [*GRAPHSEQ, "train", "--resume", job.out]
    else:
        cmd = [*GRAPHSEQ, "train", "--graph", job.graph, "--model", job.model, "--out", job.out,
               "--set", f"seed={job.seed}", *job.sets]  # fmt: skip
    print(" ".join(map(str, cmd)), file=sys.stderr, flush=True)
    run(cmd, env=threads_env(threads))
    return json.loads(metrics.read_text())


def run_all(jobs: list[Job], workers: int) -> list[tuple[Job, dict]]:
    with ThreadPoolExecutor(max(1, workers)) as pool:
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
    for name in dict.fromkeys(j.name for j, _ in results):
        rows.append(metrics_row(name, [m for j, m in results if j.name == name]))
        scores[name] = [per_user(j.out) for j, _ in results if j.name == name]
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


def report(rows: list[dict], tests: dict[str, dict], **meta: object) -> dict:
    """Print the table and the intervals (stdout); the result's payload."""
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    for k, v in tests.items():
        print(f"{k}: diff {v['diff']:+.4f}  95% CI [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]  "
              f"P(diff<=0) {v['p_le_0']:.4f}")  # fmt: skip
    return {**meta, "table": rows, "bootstrap": tests}
