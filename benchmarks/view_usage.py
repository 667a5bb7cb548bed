"""How much a trained graphseq run uses its views: fusion weights and the views' share.

For each run, on its full scoring graph: the mean fusion weight of each view over all items
(what ``metrics.json`` reports as ``view_weights``), the mean of ``|view_scale|``, and the
views' share of the item vectors, ``mean ‖view_scale ⊙ fused‖ / mean ‖input‖`` (0 when the
network ignores the views; the residual starts there). No training.

    python benchmarks/view_usage.py W/runs/graphseq/seed0 W/runs/graphseq/seed1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from graphseq.recommend import load_run


def view_usage(run_dir: str | Path) -> dict:
    """``{"views": {name: weight}, "scale_abs_mean", "view_share"}`` of one run."""
    run = load_run(run_dir)
    enc = run.model.items
    if not getattr(enc, "views", None) or getattr(enc, "sampled", False):
        raise SystemExit(f"{run_dir}: not a full-graph run with views")
    with torch.no_grad():
        x = enc.input()
        xs = [enc._full_view(run.ctx, k, v, x, None) for k, v in enumerate(enc.views)]
        fused, w = enc.fusion(torch.stack(xs))
        term, x = (enc.view_scale * fused).detach(), x.detach()
    names = [v.name for v in enc.views]
    weights = [1.0] if w is None else w.mean(0).tolist()
    return {
        "run": str(run_dir),
        "views": {n: round(float(v), 4) for n, v in zip(names, weights)},
        "scale_abs_mean": round(float(enc.view_scale.detach().abs().mean()), 4),
        "view_share": round(float(term.norm(dim=1).mean() / x.norm(dim=1).mean()), 4),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    res = [view_usage(r) for r in a.runs]
    for r in res:
        print(json.dumps(r))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
