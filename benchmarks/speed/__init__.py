"""The speed suite: propagation, the neighbour sampler, LightGCN against RecBole, CLI latency
and serving load. Each variant writes ``results/speed/<variant>[-<tag>].json``.

    python -m benchmarks speed --list
    python -m benchmarks speed --variants propagation sampler --threads 2
    python -m benchmarks speed --variants lightgcn --ml100k DIR/ml-100k --recbole-python PY
    OMP_NUM_THREADS=1 python -m benchmarks speed --variants cli serve --run RUN --user 196
    OMP_NUM_THREADS=1 python -m benchmarks speed --variants serve --previous COMMIT_OR_DIR
    python -m benchmarks speed --variants epoch --graph G --base BASE_TREE --threads 2

``cli`` and ``serve`` without ``--run`` use a graphseq run of the quickstart's synthetic data,
trained once into ``--work``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.suite import make_parser, pick, print_list, result_name, save

SUITE = "speed"
VARIANTS = {
    "propagation": "LightGCNView vs a bare torch.sparse.mm chain vs PyG (ML-100K-shaped graph)",
    "sampler": "vectorised neighbour sampling vs the same sampler per seed",
    "lightgcn": "in-package LightGCN epoch vs RecBole 1.2.1's (needs --ml100k)",
    "cli": "graphseq --help / --version / recommend latency, fresh processes",
    "serve": "graphseq serve: requests/s and latency per endpoint",
    "epoch": "training-epoch time of models on --graph, against a --base tree in the same "
    "run; FLOP rate against the matmul peak",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = make_parser(SUITE, __doc__)
    p.add_argument("--work", type=Path, default=Path("/tmp/graphseq-bench/speed"))
    p.add_argument("--threads", type=int, default=2, help="torch threads (propagation, "
                   "sampler, lightgcn)")  # fmt: skip
    g = p.add_argument_group("propagation")
    g.add_argument("--runs", type=int, default=30, help="timed rounds (median reported)")
    g.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    g.add_argument("--pyg-runs", type=int, default=20, help="timed rounds of PyG's LightGCN")
    g = p.add_argument_group("sampler")
    g.add_argument("--sampler-seeds", type=int, default=10_000, help="seed nodes sampled")
    g = p.add_argument_group("lightgcn")
    g.add_argument("--ml100k", type=Path, help="DIR/ml-100k of get_ml100k.sh")
    g.add_argument("--recbole-python", help="a Python with recbole==1.2.1 (the same-run reference)")
    g.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, RecBole; "
                   "epoch: new, base)")  # fmt: skip
    g.add_argument("--epochs", type=int, default=3, help="our epochs per round")
    g = p.add_argument_group("epoch")
    g.add_argument("--graph", type=Path, help="graph directory")
    g.add_argument("--models", nargs="+", default=["sasrec", "graphseq"])
    g.add_argument("--base", type=Path, help="a tree to compare with (e.g. a git worktree)")
    g.add_argument("--steps", type=int, default=0, help="batches per timed epoch (0: all)")
    g.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config keys")
    g = p.add_argument_group("cli and serve")
    g.add_argument("--run", type=Path, help="run directory (default: the synthetic run)")
    g.add_argument("--user", help="raw user id for cli (default: a synthetic run's user)")
    g.add_argument("--repeats", type=int, default=5, help="cli: processes per command")
    g.add_argument("--train-epochs", type=int, default=2, help="epochs of the synthetic run")
    g = p.add_argument_group("serve")
    g.add_argument("--endpoint", nargs="+", default=["recommend", "batch", "head_of_line"],
                   choices=["recommend", "batch", "similar", "history", "head_of_line"])  # fmt: skip
    g.add_argument("--requests", type=int, default=2000, help="timed requests per endpoint")
    g.add_argument("--concurrency", type=int, nargs="+", default=[1, 8],
                   help="client threads (each in turn; batch: the largest)")  # fmt: skip
    g.add_argument("--serve-warmup", type=int, default=50, help="untimed requests first")
    g.add_argument("-k", type=int, default=10)
    g.add_argument("--batch-users", type=int, default=100, help="users per batch request")
    g.add_argument("--batch-requests", type=int, default=200, help="timed batch requests")
    g.add_argument("--server-threads", type=int, default=0, help="server OMP_NUM_THREADS "
                   "(0: torch default)")  # fmt: skip
    g.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    g.add_argument("--hol-batch", type=int, default=1000, help="entries of the head-of-line batch")
    g.add_argument("--previous", metavar="REF", help="the previous implementation, served in "
                   "the same run: a checkout directory, or a git commit (git archive)")  # fmt: skip
    g.add_argument("--serve-rounds", type=int, default=1, help="(previous, current) rounds")
    a = p.parse_args(argv)
    if a.list:
        print_list(VARIANTS.items())
        return 0
    names = pick(p, VARIANTS, a.variants)
    if "epoch" in names and a.graph is None:
        p.error("epoch needs --graph G (or pick other --variants)")
    if "lightgcn" in names and a.ml100k is None:
        p.error("lightgcn needs --ml100k DIR/ml-100k (or pick other --variants)")
    if a.user and a.run is None:
        p.error("--user is a user of --run RUN")
    a.work.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        data, threads = _measure(name, a)
        save(SUITE, result_name(name, a.tag), data, argv, a.results, threads)
        if name == "serve":  # a request that failed fails the run (the result is still kept)
            failed |= any(_errors(x) for r in data["rounds"] for x in r.values())
    return 1 if failed else 0


def _errors(server: dict) -> int:
    """Failed requests of one server's serve figures."""
    n = sum(x["errors"] for e in ("recommend", "batch", "similar", "history")
            for x in server.get(e, []))  # fmt: skip
    hol = server.get("head_of_line")
    return n + (hol["errors"] + (hol["batch_status"] != 200) if hol else 0)


def _measure(name: str, a) -> tuple[dict, int | None]:
    """One variant's payload and the threads it ran with."""
    if name == "propagation":
        from benchmarks.speed.propagation import measure

        return measure(a.threads, a.runs, a.warmup, a.pyg_runs), a.threads
    if name == "sampler":
        from benchmarks.speed.sampler import measure

        return measure(a.threads, a.sampler_seeds), a.threads
    if name == "lightgcn":
        from benchmarks.speed.lightgcn import measure

        out = measure(a.ml100k, a.work, a.threads, a.rounds, a.epochs, a.recbole_python)
        return out, a.threads
    if name == "epoch":
        from benchmarks.speed.epoch import measure

        out = measure(a.graph, a.models, a.base, a.threads, a.rounds, a.steps, a.set)
        return out, a.threads
    if name == "cli":
        from benchmarks.speed.cli import measure

        return measure(a.run, a.work, a.user, a.repeats, a.train_epochs), None
    from benchmarks.speed.cli import synthetic_run
    from benchmarks.speed.serve import Load, measure

    load = Load(tuple(a.endpoint), a.requests, tuple(a.concurrency), a.serve_warmup, a.k,
                a.batch_users, a.batch_requests, a.hol_batch, server_threads=a.server_threads,
                startup_timeout=a.startup_timeout, previous=a.previous, rounds=a.serve_rounds)  # fmt: skip
    return measure(a.run or synthetic_run(a.work, a.train_epochs), load), a.server_threads or None
