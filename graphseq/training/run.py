"""The run directory: every file written atomically; ``metrics.json`` last marks completion."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import graphseq
from data_builders.atomic import atomic_path, torch_save, write_json, write_text
from data_builders.errors import DataError
from graphseq.config import TrainConfig, load_config
from graphseq.device import resolve_device
from graphseq.evaluate import EvalResult, evaluate_with
from graphseq.graph.data import GraphData, open_graph
from graphseq.models.base import Recommender
from graphseq.models.resolve import build_model, resolve
from graphseq.segments import SEGMENT_NAMES
from graphseq.training.runfiles import check_run_files

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
            raise DataError(
                "graph directory not found", file=override, hint="check the graph path given"
            )
        return Path(override).resolve()
    tried = [Path(graph) if Path(graph).is_absolute() else run / graph]
    prov = run / "provenance.json"
    try:
        rel = json.loads(prov.read_text()).get("graph_relative") if prov.exists() else None
    except (OSError, ValueError, AttributeError) as e:  # not JSON, or not an object
        raise DataError(f"not a valid provenance file ({e})", file=prov, hint="retrain the run, "
                        "or restore the file from a copy") from None  # fmt: skip
    if rel:
        tried.append(run / rel)
    for p in tried:
        if p.is_dir():
            return p.resolve()
    raise DataError(
        f"graph directory of this run not found (tried {', '.join(map(str, tried))})",
        file=run / "config.yaml",
        hint="give its graph directory (--graph DIR; graph=DIR in Python; its fingerprint is checked against the checkpoint)",
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
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__  # EOFError
        raise DataError(
            f"refusing to load checkpoint: {why}",
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
    """``per_user.parquet``: raw user and target ids, 1-based rank, the user's segment (by
    name, :mod:`graphseq.segments`), per-user metrics."""
    df = pd.DataFrame({k: v.cpu().numpy() for k, v in per_user.items()})
    if "segment" in df:
        df["segment"] = pd.Categorical.from_codes(df["segment"], SEGMENT_NAMES)
    df["user"] = id_maps["user"][df["user"].to_numpy()].astype(str)
    df["target"] = id_maps["item"][df["target"].to_numpy()].astype(str)
    with atomic_path(run / "per_user.parquet") as tmp:
        df.to_parquet(tmp, index=False)


def write_config(run: Path, text: str) -> None:
    write_text(run / "config.yaml", text)


# parameters added after checkpoint version 2 whose fresh values are what older runs did:
# the own-history weights start at 0 (no term), the item graph's λ is the config's
LATER_NO_OP = ("scorer.history.weight", "scorer.history.log_decay", "scorer.history.scale",
               "scorer.history.sharpen", "scorer.item_graph.reg")  # fmt: skip
RENAMED = {"items.view_scale": "items.view_gain"}  # parameters renamed since: old -> new


def load_weights(model: torch.nn.Module, state: dict, file: Path) -> None:
    """``load_state_dict``, accepting a checkpoint that predates a no-op part (LATER_NO_OP)
    or a renamed parameter (RENAMED)."""
    state = {RENAMED.get(k, k): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if k not in LATER_NO_OP]
    if bad or unexpected:
        raise DataError(
            "checkpoint does not match the model its config builds "
            f"(missing {bad[:5]}, unexpected {list(unexpected)[:5]})",
            file=file,
            hint="it was written by another graphseq version: retrain the run",
        )


@dataclass
class LoadedModel:
    """A run's best model on its graph: the (resolved) config, the model in eval mode, and
    the graph opened with the run's split."""

    path: Path
    cfg: TrainConfig
    model: Recommender
    data: GraphData

    def evaluate(self, split: str = "test") -> EvalResult:
        """Re-run the protocol's evaluation of ``split`` (``"valid"``, also spelt
        ``"validation"``, or ``"test"``)."""
        split = {"validation": "valid"}.get(split, split)
        if split not in ("valid", "test"):
            raise DataError(f"unknown split {split!r}", hint="use split='valid' or split='test'")
        d = self.data
        return evaluate_with(self.cfg, self.model, d.events, d.split, split, d.side)


def load_model(
    path: str | Path,
    device: str | None = None,
    allow_incomplete: bool = False,
    graph: str | Path | None = None,
) -> LoadedModel:
    """Load the run directory ``path``: its config, its graph (``graph`` overrides the
    config's; a run moved together with its graph finds it, :func:`resolve_graph`) and its
    best ``checkpoint.pt`` (``weights_only=True``; the graph's fingerprint must match).

    A run without ``metrics.json`` (still training, or interrupted) is refused unless
    ``allow_incomplete``, which loads its best checkpoint so far. Every file of the run and
    its graph is checked first (:func:`graphseq.training.runfiles.check_run_files`): damaged
    ones are all reported together, one line each."""
    path = Path(path)
    check_run_files(path, allow_incomplete, graph)
    if not (path / "config.yaml").exists():
        raise DataError("not a run directory (no config.yaml)", file=path)
    if not allow_incomplete and not (path / "metrics.json").exists():
        raise DataError(
            "run is not finished (no metrics.json): it is still training or was interrupted",
            file=path,
            hint="wait for it, finish it with `graphseq train --resume RUN`, or pass "
            "--allow-incomplete (allow_incomplete=True in Python) to use its best checkpoint so far",
        )
    cfg = load_config(path / "config.yaml")
    dev = resolve_device(device or ("cpu" if cfg.device == "cpu" else "auto"))  # checked first
    cfg = cfg.replace(graph=str(resolve_graph(path, cfg.graph, graph)))
    data = open_graph(cfg.graph, cfg.split, tuple(cfg.global_time_quantiles), False)
    ckpt = load_checkpoint(path / "checkpoint.pt", data.fingerprint)
    # item text features travel in the checkpoint: no encoder or cache needed to load a run
    data.side.item_features = ckpt["state_dict"].get("items.item_features")
    resolved = resolve(cfg, data.shape)  # a run's config is saved resolved: no change
    model = build_model(resolved, data.shape)
    load_weights(model, ckpt["state_dict"], path / "checkpoint.pt")
    model.to(dev).eval()
    return LoadedModel(path, resolved.cfg, model, data)
