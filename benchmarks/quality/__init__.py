"""The quality suite: ``graphseq train`` runs of named variants, 3 seeds, paired bootstrap.

Datasets (``--dataset``, ``--data`` points at the folder the data script writes):

- ``ml100k``: MovieLens-100K, ``DIR/ml-100k`` of ``get_ml100k.sh`` (RecBole atomic files);
- ``ml1m``: MovieLens-1M viewing orders, ``DIR/ml-1m`` of ``get_ml1m.sh``;
- ``tmall``: the Tmall buy/cart/fav log, ``DIR/tmall`` of ``get_tmall.sh``.

Studies (``--study``): ``main`` (every model and ablation), ``losses`` (sampled losses
against the full softmax; ml100k, ml1m) and ``cold`` (cold-start items; ml100k). Runs go
to ``--work`` (resumable: a finished run is read back, a partial one resumed), ``--jobs`` at
a time with one thread each. A result per split goes to
``results/quality/<dataset>[-<study>][-<split>][-<tag>].json``; a subset of the variants
without ``--tag`` is tagged ``partial``, so it never replaces the full table.

    python -m benchmarks quality --list
    python -m benchmarks quality --dataset ml100k --data DIR/ml-100k --work W --jobs 2
    python -m benchmarks quality --dataset tmall --data DIR/tmall --work W --set epochs=3
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.quality.jobs import result_base
from benchmarks.suite import make_parser, pick, print_list, result_name, save

SUITE = "quality"
DATASETS = ("ml100k", "ml1m", "tmall")
STUDIES = {"main": DATASETS, "losses": ("ml100k", "ml1m"), "cold": ("ml100k",)}
SPLITS = ("leave_last_out", "global_time")


def variants(dataset: str, study: str) -> dict:
    """The variants of one benchmark (name → :class:`~benchmarks.quality.jobs.Variant`)."""
    from benchmarks.quality import cold, losses, movielens, tmall

    if study == "losses":
        return losses.VARIANTS
    if study == "cold":
        return cold.VARIANTS
    return {"ml100k": movielens.ML100K, "ml1m": movielens.ML1M, "tmall": tmall.VARIANTS}[dataset]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = make_parser(SUITE, __doc__)
    p.add_argument("--dataset", choices=DATASETS, default="ml100k")
    p.add_argument("--study", choices=list(STUDIES), default="main")
    p.add_argument("--data", type=Path, help="the dataset's folder (see above)")
    p.add_argument(
        "--work", type=Path, help="run directories (None: /tmp/graphseq-bench/<dataset>[-<study>])"
    )
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--split", nargs="+", choices=SPLITS, help="default leave_last_out; cold: its own"
    )
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="overrides for every run (tmall: its sequence models only)")  # fmt: skip
    p.add_argument("--table", action="store_true", help="cold: print the stored result's table")
    a = p.parse_args(argv)
    if a.dataset not in STUDIES[a.study]:
        p.error(f"the {a.study} study runs on {', '.join(STUDIES[a.study])}, not {a.dataset}")
    known = variants(a.dataset, a.study)
    if a.list:
        print_list((n, v.describe()) for n, v in known.items())
        return 0
    if a.table:
        return _print_cold_table(p, a)
    if a.study == "cold" and a.split:
        p.error("the cold study runs its own splits (simulated, global_time, leave_last_out)")
    if a.data is None:
        p.error("--data DIR is required (the dataset's folder)")
    names = pick(p, known, a.variants)
    a.split = a.split or ["leave_last_out"]
    a.work = a.work or Path("/tmp/graphseq-bench") / result_base(a.dataset, a.study)
    tag = a.tag or ("partial" if len(names) < len(known) else "")
    for name, data in _run(a, names).items():
        save(SUITE, result_name(name, tag), {"study": a.study, **data}, argv, a.results, 1)
    return 0


def _run(a, names: list[str]) -> dict[str, dict]:
    from benchmarks.quality import cold, losses, movielens, tmall

    if a.study == "losses":
        return losses.run(a, names, a.dataset)
    if a.study == "cold":
        return cold.run(a, names)
    if a.dataset == "tmall":
        return tmall.run(a, names)
    return movielens.run(a, variants(a.dataset, a.study), names, a.dataset)


def _print_cold_table(p, a) -> int:
    from benchmarks.quality.cold import table

    if a.study != "cold":
        p.error("--table is for --study cold")
    path = a.results / SUITE / f"{result_name(result_base('ml100k', 'cold'), a.tag)}.json"
    if not path.exists():
        p.error(f"no stored result at {path}")
    print(table(json.loads(path.read_text())["data"]))
    return 0
