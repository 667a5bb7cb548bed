"""Rescale a trained item–item scale after training: valid and test NDCG@10 per factor.

A run trained with ``item_graph_mode=trained`` learned its EASE weight ``s`` against the
cross-fitted fold graphs; scoring uses the full scoring graph's EASE. This multiplies the
learned ``s`` by each factor (0 = the network alone) and evaluates the same trained network
on validation and test. No training.

    python benchmarks/item_scale_rescale.py W/runs/graphseq_item_graph_mode=trained/seed0
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from graphseq.models.itemscale import ItemGraphScale
from graphseq.recommend import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import per_run_cli  # noqa: E402

FACTORS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def rescale(run_dir: str | Path, factors: Sequence[float] = FACTORS) -> dict:
    """``{"run", "weight", "decay", "factors": {f: {"valid", "test"}}}`` of one run."""
    run = load_run(run_dir)
    scales = [m for m in run.model.modules() if isinstance(m, ItemGraphScale)]
    if not scales:
        raise SystemExit(f"{run_dir}: not a run with item_graph_mode=trained")
    sc = scales[0]
    learned = sc.scale.detach().clone()
    out: dict[str, dict[str, float]] = {}
    with torch.no_grad():
        for f in factors:
            sc.scale.copy_(learned * f)
            out[f"{f:g}"] = {
                split: round(float(run.evaluate(split).metrics["NDCG@10"]), 4)
                for split in ("valid", "test")
            }
        sc.scale.copy_(learned)
    return {"run": str(run_dir), **sc.summary(), "factors": out}


def main(argv: list[str] | None = None) -> None:
    per_run_cli(
        __doc__,
        lambda run, a: rescale(run, a.factors),
        argv,
        lambda p: p.add_argument("--factors", type=float, nargs="+", default=list(FACTORS)),
    )


if __name__ == "__main__":
    main()
