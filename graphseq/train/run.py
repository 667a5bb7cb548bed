"""The run directory: every file written atomically; ``metrics.json`` last marks completion."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import graphseq
from data_builders.atomic import atomic_path, torch_save, write_json, write_text
from data_builders.errors import DataError

CHECKPOINT_VERSION = 2  # 2: composed models (graphseq 0.2); 1 is refused


def git_commit() -> str | None:
    """The package's git commit, when it runs from a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(graphseq.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_provenance(run: Path, graph_fingerprint: str, graph: str | Path | None = None) -> None:
    """``provenance.json``; with ``graph``, also its path relative to the run (``graph_relative``)
    so that a run moved together with its graph directory still finds it."""
    rel = os.path.relpath(Path(graph).resolve(), Path(run).resolve()) if graph else None
    write_json(
        run / "provenance.json",
        {
            "graphseq_version": graphseq.__version__,
            "git_commit": git_commit(),
            "graph_fingerprint": graph_fingerprint,
            "graph_relative": rel,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    )


def resolve_graph(run: str | Path, graph: str, override: str | Path | None = None) -> Path:
    """The graph directory of the run in ``run`` whose config names ``graph``: ``override``
    (``--graph``) when given; else ``graph`` if it exists (relative paths: to the run); else
    the graph at ``provenance.json``'s ``graph_relative`` from the run (both were moved).
    The caller checks the checkpoint's fingerprint against it."""
    run = Path(run)
    if override is not None:
        if not Path(override).is_dir():
            raise DataError("graph directory not found", file=override, hint="check --graph")
        return Path(override).resolve()
    tried = [Path(graph) if Path(graph).is_absolute() else run / graph]
    prov = run / "provenance.json"
    rel = json.loads(prov.read_text()).get("graph_relative") if prov.exists() else None
    if rel:
        tried.append(run / rel)
    for p in tried:
        if p.is_dir():
            return p.resolve()
    raise DataError(
        f"graph directory of this run not found (tried {', '.join(map(str, tried))})",
        file=run / "config.yaml",
        hint="pass --graph DIR (its fingerprint is checked against the checkpoint)",
    )


def append_log(run: Path, record: dict[str, Any]) -> None:
    """One JSON line per epoch, appended and flushed (a crash loses at most that line)."""
    with open(run / "train_log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def truncate_log(run: Path, epochs: int) -> None:
    """Keep the log lines of the first ``epochs`` epochs (resume after a crash)."""
    f = run / "train_log.jsonl"
    if not f.exists():
        return
    keep = [
        ln for ln in f.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= epochs
    ]
    if keep:
        write_text(f, "\n".join(keep) + "\n")
    else:
        f.unlink()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    torch_save({"checkpoint_version": CHECKPOINT_VERSION, **payload}, path)


def load_checkpoint(path: str | Path, fingerprint: str | None = None) -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse pickled payloads and other graphs' checkpoints."""
    path = Path(path)
    if not path.exists():
        raise DataError("checkpoint not found", file=path, hint="is this a finished run directory?")
    try:
        ckpt = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # UnpicklingError for pickled payloads, RuntimeError for corruption
        raise DataError(
            f"refusing to load checkpoint: {str(e).splitlines()[0]}",
            file=path,
            hint="graphseq checkpoints hold tensors and plain values only; this file is corrupt or not graphseq's",
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise DataError("not a graphseq checkpoint of this version", file=path)
    if fingerprint is not None and ckpt.get("fingerprint") != fingerprint:
        raise DataError(
            f"checkpoint was trained on a graph with other id maps (fingerprint {ckpt.get('fingerprint')}, graph has {fingerprint})",
            file=path,
            hint="evaluate it on the graph it was trained on",
        )
    return ckpt


def write_per_user(
    run: Path, per_user: dict[str, torch.Tensor], id_maps: dict[str, pd.Index]
) -> None:
    """``per_user.parquet``: raw user and target ids, 1-based rank, per-user metrics."""
    df = pd.DataFrame({k: v.cpu().numpy() for k, v in per_user.items()})
    df["user"] = id_maps["user"][df["user"].to_numpy()].astype(str)
    df["target"] = id_maps["item"][df["target"].to_numpy()].astype(str)
    with atomic_path(run / "per_user.parquet") as tmp:
        df.to_parquet(tmp, index=False)


def write_config(run: Path, text: str) -> None:
    write_text(run / "config.yaml", text)
