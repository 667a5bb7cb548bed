"""Sampled losses against the full softmax: ``sasrec`` with ``loss=ce`` and ``loss=sampled``
(per-sequence or shared negatives), 3 seeds each, ``ce`` minus each (two-level bootstrap over
seeds and users).

Same protocol as the MovieLens benchmark (leave-last-out, full ranking, history excluded,
package defaults otherwise: sampled losses draw 256 negatives per sequence), on ML-100K or
ML-1M.
"""

from __future__ import annotations

from benchmarks.quality.jobs import (
    Variant,
    jobs_for,
    report,
    result_base,
    run_all,
    summarise,
)
from benchmarks.runner import build

VARIANTS: dict[str, Variant] = {
    "ce": Variant("sasrec"),  # the default: full softmax
    "sampled": Variant("sasrec", ("loss=sampled",)),  # 256 uniform negatives per sequence
    "sampled shared": Variant("sasrec", ("loss=sampled", "share_negatives=true")),  # per batch
}


def run(a, names: list[str], dataset: str) -> dict[str, dict]:
    graph = build(a.work / "graph", "recbole", a.data)
    out = {}
    for split in a.split:
        jobs = jobs_for(VARIANTS, names, a.seeds, a.work, split, {"all": graph}, a.set)
        rows, tests = summarise(run_all(jobs, a.jobs), reference="ce")
        meta = dict(dataset=dataset, split=split, variants=names, overrides=a.set, seeds=a.seeds)
        out[result_base(dataset, "losses", split)] = report(rows, tests, **meta)
    return out
