"""How much a trained graphseq run uses its views: fusion weights and the views' share.

For each run, on its full scoring graph: the mean fusion weight of each view over all items
(what ``metrics.json`` reports as ``view_weights``), the mean of ``|view_scale|``, and the
views' share of the item vectors, ``mean ‖view_scale ⊙ fused‖ / mean ‖input‖`` (0 when the
network ignores the views; the residual starts there). No training.

    python benchmarks/view_usage.py W/runs/graphseq/seed0 W/runs/graphseq/seed1
"""

from __future__ import annotations

import sys
from pathlib import Path

from graphseq.recommend import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import per_run_cli  # noqa: E402


def view_usage(run_dir: str | Path) -> dict:
    """``{"views": {name: weight}, "scale_abs_mean", "view_share"}`` of one run."""
    run = load_run(run_dir)  # its full-graph encoding: run.enc
    enc = run.model.items
    if not getattr(enc, "views", None) or enc.view_side != "both":
        raise SystemExit(f"{run_dir}: not a run with views on both sides (view_side=both)")
    x = enc.input().detach()
    term = run.enc.items.detach() - x  # items = input + view_scale ⊙ fused
    w = run.enc.view_weights
    weights = [1.0] if w is None else w.mean(0).tolist()
    return {
        "run": str(run_dir),
        "views": {n: round(float(v), 4) for n, v in zip(run.model.views, weights)},
        "scale_abs_mean": round(float(enc.view_scale.detach().abs().mean()), 4),
        "view_share": round(float(term.norm(dim=1).mean() / x.norm(dim=1).mean()), 4),
    }


def main(argv: list[str] | None = None) -> None:
    per_run_cli(__doc__, lambda run, _: view_usage(run), argv)


if __name__ == "__main__":
    main()
