"""The scale suite: cost growth with the log (build, training, evaluation), build speed,
build at 100M events, and a whole default run on a ~1M-event log. Each variant writes
``results/scale/<variant>[-<tag>].json`` (``scaling`` also its plot, ``.png``); every
measurement runs in a fresh process.

    python -m benchmarks scale --list
    OMP_NUM_THREADS=1 python -m benchmarks scale --variants scaling --sizes 1000000 4000000
    python -m benchmarks scale --variants build_speed --ml100k DIR/ml-100k
    python -m benchmarks scale --variants build_scale --baseline-src /tmp/graphseq-baseline
    python -m benchmarks scale --variants large_log --threads 2
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.suite import make_parser, pick, print_list, result_name, save

SUITE = "scale"
VARIANTS = {
    "scaling": "build, training steps and evaluation at growing synthetic logs (log-log slopes)",
    "build_speed": "log -> graph directory: ML-100K (< 2 s) and 10M synthetic events (< 60 s)",
    "build_scale": "10M/30M/100M-event Parquet logs -> graph, and CSV/gz/DuckDB at 10M",
    "large_log": "a whole default graphseq run on a ~1M-event interactions-only log",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = make_parser(SUITE, __doc__)
    p.add_argument("--work", type=Path, default=Path("/tmp/graphseq-bench/scale"),
                   help="logs and graphs, one folder per variant (cached)")  # fmt: skip
    p.add_argument("--sizes", type=int, nargs="+", help="log sizes in events (scaling: 1M 4M "
                   "16M; build_scale: 10M 30M 100M)")  # fmt: skip
    g = p.add_argument_group("scaling")
    g.add_argument("--steps", type=int, default=10, help="timed training steps per mode")
    g.add_argument("--eval-users", type=int, default=1024, help="test users scored (0: none)")
    g.add_argument("--modes", nargs="+", default=["full", "minibatch"], help="full minibatch "
                   "minibatch-shared auto minibatch-ce default default-dense")  # fmt: skip
    g.add_argument("--full-max-events", type=int, default=4_000_000, help="skip full-graph above")
    g.add_argument("--interactions-only", type=int, default=0, help="events (0: skip)")
    g.add_argument("--items", type=int, default=50_000, help="catalogue size of every log")
    g = p.add_argument_group("build_speed")
    g.add_argument("--events", type=int, default=10_000_000, help="synthetic events (0: skip)")
    g.add_argument("--ml100k", type=Path, help="DIR/ml-100k (RecBole files; optional)")
    g.add_argument("--reps", type=int, default=3, help="ML-100K runs (median reported)")
    g = p.add_argument_group("build_scale")
    g.add_argument("--compare-events", type=int, default=10_000_000, help="CSV/gz/DuckDB log")
    g.add_argument("--baseline-src", type=Path, help="older checkout: its pandas path, timed too")
    g = p.add_argument_group("large_log")
    g.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the run")
    g.add_argument("--seed", type=int, default=1, help="seed of the synthetic log")
    a = p.parse_args(argv)
    if a.list:
        print_list(VARIANTS.items())
        return 0
    for name in pick(p, VARIANTS, a.variants):
        print(f"== {name}", file=sys.stderr, flush=True)
        work = a.work / name
        data, threads = _measure(name, work, a)
        path = save(SUITE, result_name(name, a.tag), data, argv, a.results, threads)
        if name == "scaling":
            from benchmarks.scale.scaling import plot

            plot(data, path.with_suffix(".png"))
    return 0


def _measure(name: str, work: Path, a) -> tuple[dict, int | None]:
    """One variant's payload and the threads it ran with (None: as the environment says)."""
    if name == "scaling":
        from benchmarks.scale.scaling import measure

        data = measure(work, a.sizes or [1_000_000, 4_000_000, 16_000_000], a.steps,
                       a.eval_users, tuple(a.modes), a.full_max_events, a.interactions_only,
                       a.items)  # fmt: skip
        return data, 1  # the training children set one thread
    if name == "build_speed":
        from benchmarks.scale.build_speed import measure

        return measure(work, a.events, a.ml100k, a.reps), None
    if name == "build_scale":
        from benchmarks.scale.build_scale import measure

        return measure(work, a.sizes, a.compare_events, a.baseline_src), None
    from benchmarks.scale.large_log import measure

    return measure(work, a.seed, a.threads), a.threads
