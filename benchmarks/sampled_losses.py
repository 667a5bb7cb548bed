"""Sampled losses against the full softmax on MovieLens-100K: ``sasrec`` with ``loss=ce``,
``gbce`` and ``sampled``, 3 seeds each, ``ce`` minus each (two-level bootstrap over seeds
and users, ``benchmarks/quality.py``).

Same protocol as ``benchmarks/ml100k.py`` (leave-last-out, full ranking, history excluded,
package defaults otherwise: sampled losses draw 256 negatives per sequence), runs in
subprocesses with one thread each. Results: ``benchmarks/results/sampled_losses.json``.

    python benchmarks/sampled_losses.py --data /tmp/gsdata/ml-100k --work /tmp/losses --jobs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import Job, report, run_all, summarise  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "sampled_losses.json"
RUNS: dict[str, list[str]] = {  # name -> --set overrides of sasrec
    "ce": [],  # the default: full softmax
    "gbce": ["loss=gbce"],  # 256 uniform negatives per sequence, t = 0.75
    "sampled": ["loss=sampled"],  # 256 uniform negatives per sequence
    "sampled shared": ["loss=sampled", "share_negatives=true"],  # one set per batch
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory with ml-100k.inter (get_ml100k.sh)")
    p.add_argument("--work", default="/tmp/sampled_losses")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", help="subset of run names")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (one thread each)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra overrides for every run (e.g. a shared epoch budget)")  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    work = Path(a.work)
    graph = work / "graph"
    if not graph.exists():
        subprocess.run([sys.executable, "-m", "graphseq", "build", "--format", "recbole",
                        "--input", a.data, "--out", str(graph)], check=True)  # fmt: skip
    jobs: list[Job] = [
        (name, seed, work / "runs" / name.replace(" ", "_") / f"seed{seed}", "sasrec",
         [*sets, *a.set], graph)
        for name, sets in RUNS.items() if not a.only or name in a.only
        for seed in a.seeds
    ]  # fmt: skip
    rows, tests = summarise(run_all(jobs, a.jobs), reference="ce")
    report(rows, tests, a.out, runs=RUNS, seeds=a.seeds, extra_sets=a.set)


if __name__ == "__main__":
    main()
