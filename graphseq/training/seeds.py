"""Several seeds of one configuration, summarised as mean ± sd."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_builders.atomic import write_json
from graphseq.config import TrainConfig
from graphseq.training.trainer import Trainer


def train_seeds(
    cfg: TrainConfig, out: str | Path, seeds: list[int], progress: bool = True
) -> dict[str, Any]:
    """One run per seed in ``out/seed<k>``; ``out/summary.json`` holds mean ± sd of test metrics."""
    out = Path(out)
    runs = [Trainer(cfg.replace(seed=s), out / f"seed{s}", progress).fit() for s in seeds]
    keys = runs[0]["test"].keys()
    summary = {
        "seeds": seeds,
        "test_mean": {k: float(np.mean([r["test"][k] for r in runs])) for k in keys},
        "test_sd": {
            k: float(np.std([r["test"][k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
            for k in keys
        },
        "valid_mean": {k: float(np.mean([r["valid"][k] for r in runs])) for k in keys},
    }
    write_json(out / "summary.json", summary)
    return summary


__all__ = ["train_seeds"]
