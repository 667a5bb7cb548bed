"""``graphseq quickstart``: the main job end to end on the embedded synthetic data."""

from __future__ import annotations

import logging
from pathlib import Path

from data_builders.build import build_graph
from data_builders.readers.synthetic import SyntheticSpec, read_synthetic, write_synthetic
from data_builders.store import save_graph
from graphseq.config import TrainConfig
from graphseq.train.trainer import Trainer

log = logging.getLogger("graphseq")

MODELS = ("pop", "mf", "lightgcn", "sasrec", "graphseq")


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


def quickstart(workdir: str | Path = "graphseq-quickstart", fast: bool = False) -> list[list[str]]:
    """Generate the synthetic log, build its graph, train every model; returns table rows."""
    from graphseq.cli import _metrics_rows

    workdir = Path(workdir)
    spec = SyntheticSpec(num_users=300) if fast else SyntheticSpec()
    data = workdir / "data"
    if not (data / "events.csv").exists():
        log.info("writing synthetic log to %s", data)
        write_synthetic(data, spec)
    log_ = read_synthetic(data)
    g, ids, report = build_graph(log_)
    graph = workdir / "graph"
    save_graph(graph, g, ids, report, items=log_.items, overwrite=True)
    log.info("graph: %s nodes, %s events", report["nodes"], report["events"])
    rows = []
    for name, cfg in quickstart_configs(str(graph), fast).items():
        log.info("training %s", name)
        run = workdir / "runs" / name
        metrics = Trainer(cfg, run).fit()
        rows.append(_metrics_rows(name, metrics))
    return rows
