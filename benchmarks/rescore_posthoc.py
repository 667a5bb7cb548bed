"""Apply the own-history calibration chosen on validation (``own_history_scales`` ×
``own_history_sharpen``, ``train/posthoc.py``) to a finished run trained before that step
existed: the same grid and rule the trainer now applies after training, then the test split
scored once; ``checkpoint.pt``, ``per_user.parquet`` and ``metrics.json`` are updated (the
previous figures kept under ``before_own_history_choice``).

    python benchmarks/rescore_posthoc.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from data_builders.atomic import write_json
from graphseq.models.registry import posthoc_plan
from graphseq.recommend import load_run
from graphseq.train import run as rundir
from graphseq.train.posthoc import choose_on_validation


def rescore(path: Path) -> dict:
    metrics = json.loads((path / "metrics.json").read_text())
    if "own_history_choice" in metrics:
        return metrics
    run = load_run(path)
    plan = [p for p in posthoc_plan(run.cfg, run.model) if p[2] == "own_history_choice"]
    if not plan:  # no own-history term, or one that scores nothing
        return metrics
    hist, grid, _ = plan[0]
    with torch.no_grad():
        choice = choose_on_validation(hist, lambda: run.evaluate("valid").metrics["NDCG@10"], grid)
        valid, test = run.evaluate("valid"), run.evaluate("test")
    ckpt = rundir.load_checkpoint(path / "checkpoint.pt")
    ckpt["state_dict"]["scorer.history.scale"] = hist.scale.detach().cpu().clone()
    ckpt["state_dict"]["scorer.history.sharpen"] = hist.sharpen.detach().cpu().clone()
    ckpt.pop("checkpoint_version")
    rundir.save_checkpoint(path / "checkpoint.pt", ckpt)
    rundir.write_per_user(path, test.per_user, run.id_maps)
    before = {k: metrics[k] for k in ("valid", "test")}
    w, d = hist.summary()["weight"], hist.summary()["decay"]
    metrics.update(valid=valid.metrics, test=test.metrics, own_history_choice=choice,
                   before_own_history_choice=before,
                   own_history={b: {"weight": round(w[k], 4), "decay": round(d[k], 2)}
                                for k, b in enumerate(run.ev.behaviors)})  # fmt: skip
    write_json(path / "metrics.json", metrics)
    return metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    for r in p.parse_args().runs:
        m = rescore(Path(r))
        print(
            r,
            m["test"]["NDCG@10"],
            {k: v for k, v in m.get("own_history_choice", {}).items() if k != "grid"},
        )


if __name__ == "__main__":
    main()
