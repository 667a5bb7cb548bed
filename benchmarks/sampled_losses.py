"""Sampled losses against the full softmax on MovieLens-100K: ``sasrec`` with ``loss=ce``,
``gbce`` and ``sampled``, 3 seeds each, paired bootstrap of each against ``ce``.

Same protocol as ``benchmarks/ml100k.py`` (leave-last-out, full ranking, history excluded,
package defaults otherwise), one run at a time with one thread. Results:
``benchmarks/results/sampled_losses.json``.

    python benchmarks/sampled_losses.py --data /tmp/scaledata/ml-100k --work /tmp/scale/losses
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ml100k import _train, paired_bootstrap  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
RUNS: dict[str, list[str]] = {  # name -> --set overrides of sasrec
    "gbce": ["loss=gbce"],  # 256 uniform negatives, t = 0.75
    "ce": [],  # the default: full softmax
    "sampled": ["loss=sampled"],  # 256 uniform negatives (no logQ needed)
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="directory with ml-100k.inter (get_ml100k.sh)")
    p.add_argument("--work", default="/tmp/sampled_losses")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", help="subset of run names")
    a = p.parse_args()
    work = Path(a.work)
    graph = work / "graph"
    if not graph.exists():
        import subprocess

        subprocess.run([sys.executable, "-m", "graphseq", "build", "--format", "recbole",
                        "--input", a.data, "--out", str(graph)], check=True)  # fmt: skip
    rows, per_user, runs = [], {}, {}
    for name, sets in RUNS.items():
        if a.only and name not in a.only:
            continue
        ms, frames = [], []
        for seed in a.seeds:
            out = work / "runs" / name / f"seed{seed}"
            m = _train(graph, out, "sasrec", sets, seed)
            print(f"{name} seed {seed}: test NDCG@10 {m['test']['NDCG@10']:.4f}, valid "
                  f"{m['valid']['NDCG@10']:.4f}, {m['epochs']} epochs", file=sys.stderr)  # fmt: skip
            ms.append(m)
            frames.append(pd.read_parquet(out / "per_user.parquet").set_index("user")["NDCG@10"])
        per_user[name] = pd.concat(frames, axis=1).mean(axis=1)
        test = [m["test"]["NDCG@10"] for m in ms]
        valid = [m["valid"]["NDCG@10"] for m in ms]
        runs[name] = {"sets": sets, "test_NDCG@10": test, "valid_NDCG@10": valid,
                      "epochs": [m["epochs"] for m in ms],
                      "seconds_per_epoch": [m["seconds_per_epoch"] for m in ms]}  # fmt: skip
        rows.append({"loss": name, "test NDCG@10": np.mean(test), "sd": np.std(test, ddof=1),
                     "valid NDCG@10": np.mean(valid), "valid sd": np.std(valid, ddof=1),
                     "epochs": np.mean(runs[name]["epochs"]),
                     "s/epoch": np.mean(runs[name]["seconds_per_epoch"])})  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    tests = {f"{k} - ce": paired_bootstrap(per_user[k], per_user["ce"])
             for k in per_user if k != "ce" and "ce" in per_user}  # fmt: skip
    for k, v in tests.items():
        print(f"{k}: {v['diff']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"runs": runs, "table": rows, "bootstrap": tests, "seeds": a.seeds}
    (RESULTS / "sampled_losses.json").write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
