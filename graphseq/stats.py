"""Comparing runs honestly: per-user metrics of several seeds, paired over users, with a
two-level bootstrap whose intervals include seed-to-seed variance.

A model's score is the mean over its seeds of the mean over test users. The bootstrap
resamples, in each round, the seeds of each model (with replacement, independently: seed 0
of one model has nothing to do with seed 0 of another) and the test users (with
replacement, the same users for both models: the comparison is paired). The 95% interval is
taken over rounds; with one seed per model it is the usual paired bootstrap over users.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_builders.errors import DataError
from graphseq.segments import SEGMENTS, empty_note


@dataclass
class RunGroup:
    """The finished runs of one model (one per seed): their metrics and per-user scores."""

    name: str
    paths: list[Path]
    metrics: list[dict]
    per_user: pd.DataFrame  # rows: test users (raw ids), columns: seeds
    fingerprint: str | None
    protocol: dict
    segment: pd.Series | None = None  # test user -> segment (graphseq.segments); None: older runs

    @property
    def seeds(self) -> int:
        return len(self.paths)


def run_dirs(path: str | Path) -> list[Path]:
    """A finished run directory, or a directory of them (e.g. ``--seeds`` output)."""
    p = Path(path)
    if (p / "metrics.json").exists():
        return [p]
    runs = sorted(d for d in p.glob("*") if (d / "metrics.json").exists()) if p.is_dir() else []
    if not runs:
        raise DataError(
            "no finished run here (no metrics.json in it or in its subdirectories)", file=p,
            hint="pass a run directory or a directory of runs",
        )  # fmt: skip
    return runs


def load_group(path: str | Path, metric: str = "NDCG@10") -> RunGroup:
    """Load the runs under ``path``; they must share graph and protocol."""
    paths = run_dirs(path)
    metrics = [json.loads((p / "metrics.json").read_text()) for p in paths]
    fps = set()
    for p in paths:
        prov = p / "provenance.json"
        fps.add(json.loads(prov.read_text()).get("graph_fingerprint") if prov.exists() else None)
    protos = {json.dumps(_protocol(m), sort_keys=True) for m in metrics}
    if len(fps) > 1 or len(protos) > 1:
        raise DataError("runs of different graphs or protocols in one group", file=path)
    cols, segment = {}, None
    for k, p in enumerate(paths):
        f = p / "per_user.parquet"
        if not f.exists():
            raise DataError("run has no per_user.parquet", file=p)
        df = pd.read_parquet(f).set_index("user")
        if metric not in df:
            raise DataError(f"per_user.parquet has no metric {metric!r}", file=f)
        cols[k] = df[metric]
        if k == 0 and "segment" in df:  # a function of the graph and protocol: seed 0's
            segment = df["segment"].astype(str)
    per_user = pd.DataFrame(cols)
    name = Path(path).resolve().name  # the group directory, even when it holds one run
    return RunGroup(name, paths, metrics, per_user, fps.pop(), _protocol(metrics[0]), segment)


def _protocol(m: dict) -> dict:
    p = dict(m.get("protocol", {}))
    p.pop("repeat_targets_dropped", None)
    # how many users validation scored steers model selection, like any tuning choice; the
    # test protocol, which the comparison is about, does not depend on it (runs from before
    # the key existed validated on every user)
    p.pop("valid_users", None)
    return p


def check_comparable(groups: list[RunGroup]) -> None:
    """Refuse runs of different graphs, protocols or test users."""
    first = groups[0]
    for g in groups[1:]:
        if g.fingerprint != first.fingerprint:
            raise DataError(
                f"{g.name} was trained on another graph than {first.name}",
                hint="compare runs of one graph directory",
            )
        if g.protocol != first.protocol:
            raise DataError(
                f"{g.name} used another protocol than {first.name}: {g.protocol} vs {first.protocol}",
                hint="compare runs of one split and evaluation setting",
            )
        if set(g.per_user.index) != set(first.per_user.index):
            raise DataError(f"{g.name} was tested on other users than {first.name}")


def two_level_bootstrap(
    a: np.ndarray, b: np.ndarray, n: int = 10_000, seed: int = 0, chunk: int = 250
) -> dict:
    """Mean(a) − mean(b) with a 95% interval over seeds and users.

    Args:
        a, b: (S_a, U) and (S_b, U) per-user scores of each seed, users aligned.
        n: bootstrap rounds.  seed: RNG seed.
    Returns ``diff``, ``ci95``, ``p_le_0`` (share of rounds with diff ≤ 0) and ``users``.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    users = a.shape[1]
    out = []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        sa = rng.integers(0, len(a), (m, len(a)))  # resampled seeds of each model
        sb = rng.integers(0, len(b), (m, len(b)))
        ma = a[sa].mean(1)  # (m, U): per-user mean over the resampled seeds
        mb = b[sb].mean(1)
        u = rng.integers(0, users, (m, users))  # the same resampled users for both
        d = ma - mb
        out.append(np.take_along_axis(d, u, 1).mean(1))
    means = np.concatenate(out)
    return {
        "diff": float(a.mean() - b.mean()),
        "ci95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
        "p_le_0": float((means <= 0).mean()),
        "users": users,
    }


def compare(groups: list[RunGroup], n: int = 10_000, seed: int = 0) -> list[dict]:
    """One row per group: mean ± seed sd of the test metric, and the paired difference
    against the first group (two-level bootstrap); and under ``segments``, the same over
    the users of each segment (:data:`graphseq.segments.SEGMENTS`, with ``users`` and
    ``share``; an empty one has a ``note`` instead), when a group's ``per_user.parquet``
    says who is in which (runs from before segments do not)."""
    check_comparable(groups)
    users = groups[0].per_user.index
    rows = _rows(groups, users, n, seed)
    seg = next((g.segment for g in groups if g.segment is not None), None)
    if seg is None:
        return rows
    seg = seg.reindex(users)
    counts = seg.value_counts().to_dict()
    for name, parts in SEGMENTS.items():
        sel = users[seg.isin(parts).to_numpy()]
        if not len(sel):  # e.g. no repeat on a log with one behavior: said, not averaged
            note = empty_note(name, counts)
            for r in rows:
                r.setdefault("segments", {})[name] = {"users": 0, "share": 0.0, "note": note}
            continue
        for r, s in zip(rows, _rows(groups, sel, n, seed)):
            del s["run"]
            share = len(sel) / len(users)
            r.setdefault("segments", {})[name] = {"users": len(sel), "share": share, **s}
    return rows


def _rows(groups: list[RunGroup], users: pd.Index, n: int, seed: int) -> list[dict]:
    """:func:`compare`'s rows over ``users``."""
    base = groups[0].per_user.loc[users].to_numpy().T
    rows = []
    for g in groups:
        per_seed = g.per_user.loc[users].to_numpy().T  # (S, U)
        means = per_seed.mean(1)
        row = {
            "run": g.name, "seeds": g.seeds, "mean": float(means.mean()),
            "seed_sd": float(means.std(ddof=1)) if len(means) > 1 else 0.0,
        }  # fmt: skip
        if g is not groups[0]:
            row["vs_first"] = two_level_bootstrap(per_seed, base, n, seed)
        rows.append(row)
    return rows
