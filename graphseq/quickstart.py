"""``graphseq quickstart``: the main job end to end on the embedded synthetic data.

Layout of the working directory (``--dir``)::

    data/            the synthetic log and its spec.json (reused while the size matches)
    runs/<N>/graph   each invocation's graph, and one run per model beside it:
    runs/<N>/<model> N = 1, 2, ... so a second quickstart never collides with the first
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from data_builders.build import build_graph
from data_builders.readers.synthetic import SyntheticSpec, read_synthetic, write_synthetic
from data_builders.store import save_graph
from graphseq.config import TrainConfig
from graphseq.training.trainer import Trainer

log = logging.getLogger("graphseq")

MODELS = ("pop", "mf", "lightgcn", "sasrec", "graphseq")


@dataclass
class QuickstartResult:
    runs: Path  # the directory holding this invocation's graph and runs
    metrics: dict[str, dict[str, Any]]  # model -> its metrics.json


def quickstart_spec(fast: bool = False) -> SyntheticSpec:
    """The synthetic log's size: 1,000 users (~60k events), or 300 for ``--fast``."""
    return SyntheticSpec(num_users=300) if fast else SyntheticSpec()


def quickstart_configs(graph: str, fast: bool = False) -> dict[str, TrainConfig]:
    """Per-model settings for the synthetic default (sequences ~60 events, so L = 50)."""
    epochs = 4 if fast else 20
    seq = dict(max_seq_len=50, epochs=epochs, eval_every=2, patience=3, lr=3e-3, batch_size=128)
    pairs = dict(epochs=epochs, eval_every=2, patience=3, lr=5e-3, batch_size=1024)
    base = TrainConfig(graph=graph)
    return {
        "pop": base.replace(model="pop"),
        "mf": base.replace(model="mf", **pairs),
        "lightgcn": base.replace(model="lightgcn", **pairs),
        "sasrec": base.replace(model="sasrec", **seq),
        "graphseq": base.replace(model="graphseq", **seq),
    }


def synthetic_data(data: Path, spec: SyntheticSpec, progress: bool = True) -> Path:
    """``data`` holding the log of ``spec``: reused when its ``spec.json`` records the same spec,
    else (re)written."""
    meta = data / "spec.json"
    if (data / "events.csv").exists() and meta.exists():
        try:
            if json.loads(meta.read_text()).get("spec") == asdict(spec):
                log.info("reusing the synthetic log in %s", data)
                return data
        except (ValueError, AttributeError):
            pass  # unreadable spec: write the data again
    meta.unlink(missing_ok=True)  # spec.json is written last: its absence marks a partial log
    log.info("writing a synthetic log of %d users to %s", spec.num_users, data)
    return write_synthetic(data, spec, progress=progress)


def _next_runs_dir(root: Path) -> Path:
    taken = [int(p.name) for p in root.glob("*") if p.is_dir() and p.name.isdigit()]
    return root / str(max(taken, default=0) + 1)


def quickstart(
    workdir: str | Path = "graphseq-quickstart",
    fast: bool = False,
    models: Sequence[str] = MODELS,
    progress: bool = True,
) -> QuickstartResult:
    """Write (or reuse) the synthetic log, build its graph, train ``models`` into a fresh
    ``runs/<N>`` directory; returns where they went and each model's metrics."""
    workdir = Path(workdir)
    data = synthetic_data(workdir / "data", quickstart_spec(fast), progress)
    log_ = read_synthetic(data)
    g, ids, report = build_graph(log_)
    runs = _next_runs_dir(workdir / "runs")
    graph = runs / "graph"
    save_graph(graph, g, ids, report, items=log_.items)
    log.info("graph: %s nodes, %s events", report["nodes"], report["events"])
    configs = quickstart_configs(str(graph), fast)
    metrics = {}
    for name in models:
        log.info("training %s", name)
        metrics[name] = Trainer(configs[name], runs / name, progress=progress).fit()
    return QuickstartResult(runs, metrics)
