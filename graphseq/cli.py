"""The ``graphseq`` command line.

Machine output (``--json``) goes to stdout and nothing else does; tables, progress and logs
go to stderr. Errors: one line on stderr (``graphseq: error: ...``), exit code 2. Heavy
modules (torch, PyG, pandas) are imported by the commands, so ``--help``, ``--version`` and
argument errors answer at once.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from typing import NoReturn

from graphseq import __version__
from graphseq.commands import (
    METRIC_HEADER,
    cmd_build,
    cmd_compare,
    cmd_evaluate,
    cmd_export,
    cmd_inspect,
    cmd_quickstart,
    cmd_recommend,
    cmd_serve,
    cmd_train,
    cmd_tune,
    metrics_row,
)
from graphseq.rules import MAX_K

log = logging.getLogger("graphseq")

DESCRIPTION = (
    "Graph-neural-network recommendation from behavior logs: build a graph, train and "
    "evaluate models, recommend, export embeddings and serve them over HTTP."
)
EPILOG = (
    "Machine output (--json) goes to stdout and nothing else does; tables, progress and logs "
    "go to stderr. Errors are one line on stderr with exit code 2. "
    "'graphseq COMMAND --help' describes a command."
)


class _Parser(argparse.ArgumentParser):
    """argparse with graphseq's one-line errors (no usage block): ``graphseq: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"graphseq: error: {message} (hint: see `{self.prog} --help`)\n")


def _int_in(lo: int, hi: int, what: str):
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be from {lo} to {hi}, got {n}")
        return n

    parse.__name__ = what  # argparse names the type in its messages
    return parse


port_number = _int_in(1, 65535, "port")
top_k = _int_in(1, MAX_K, "k")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, metavar="RUN", help="run directory")
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="use a run that has no metrics.json yet (still training or interrupted): "
        "its best checkpoint so far",
    )
    p.add_argument(
        "--graph",
        metavar="DIR",
        help="graph directory instead of the run's own (checked against the checkpoint's "
        "graph fingerprint); a run moved together with its graph finds it without this",
    )


def _positive(kind: type, what: str):
    def parse(text: str) -> int | float:
        try:
            n = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not n > 0 or n == float("inf"):
            raise argparse.ArgumentTypeError(f"{what} must be a positive number, got {text}")
        return n

    parse.__name__ = what
    return parse


def _serve_limits(s: argparse.ArgumentParser) -> None:
    """The bounds of ``graphseq serve`` (defaults: graphseq.serve.limits.Limits)."""
    from graphseq.serve.limits import Limits

    d = Limits  # the class: its defaults, without validating (which imports pandas)
    g = s.add_argument_group("workers and bounds (the bounds hold in each worker)")
    flags = [
        ("--workers", int, 1, "N", "worker processes, forked after the run is loaded"),
        ("--max-body-bytes", int, d.max_body_bytes, "B", "larger request bodies get 413"),
        ("--max-history", int, d.max_history, "N", "items in one /recommend/history"),
        ("--max-batch-users", int, d.max_batch_users, "N", "users in one /recommend/batch"),
        ("--max-batch-items", int, d.max_batch_items, "N", "users × k in one /recommend/batch"),
        ("--timeout-s", float, d.timeout_s, "S", "per-request deadline; later answers are 504"),
        ("--max-concurrency", int, d.max_concurrency, "N",
         "requests in flight; more get 429 with Retry-After"),
        ("--max-echo", int, d.max_echo, "N", "unknown ids listed in an answer"),
        ("--score-threads", int, d.score_threads, "N", "threads running the model"),
        ("--chunk-users", int, d.chunk_users, "N", "rows of every model call"),
    ]  # fmt: skip
    for flag, kind, default, metavar, help in flags:
        g.add_argument(flag, type=_positive(kind, flag[2:]), default=default, metavar=metavar,
                       help=f"{help} (default {default:,})")  # fmt: skip


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="graphseq", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"graphseq {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        c.set_defaults(func=func)
        return c

    b = command("build", "build a graph directory from a log", cmd_build)
    b.add_argument(
        "--format",
        required=True,
        help="csv | sql | movielens-100k | movielens | recbole | jodie | synthetic",
    )
    b.add_argument(
        "--input", required=True, help="input file or directory (sql: database file or dir)"
    )
    b.add_argument("--query", help="--format sql: the DuckDB query giving the events")
    b.add_argument("--out", required=True, help="graph directory to write")
    b.add_argument("--schema", help="YAML schema (required for --format csv)")
    b.add_argument("--kcore", type=int, default=0, help="k-core filter (0: off)")
    b.add_argument("--kg-top-relations", type=int, default=20, help="KG relations kept (-1: all)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    b.add_argument("--json", action="store_true", help="print report.json on stdout")

    t = command("train", "train a model; early-stops on validation, evaluates on test", cmd_train)
    t.add_argument("--graph", help="graph directory")
    t.add_argument("--model", help="pop | mf | lightgcn | sasrec | graphseq (default graphseq)")
    t.add_argument("--out", help="run directory")
    t.add_argument("--config", help="YAML config")
    t.add_argument(
        "--set",
        nargs="+",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys (repeatable; values parsed as YAML scalars)",
    )
    t.add_argument(
        "--seeds", nargs="+", type=int, help="one run per seed, with a mean ± sd summary"
    )
    t.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last.pt")
    t.add_argument("--json", action="store_true", help="print metrics.json on stdout")

    u = command("tune", "search hyper-parameters on validation (Optuna; the [tune] extra)",
                cmd_tune)  # fmt: skip
    u.add_argument("--graph", required=True, help="graph directory")
    u.add_argument("--model", required=True, help="model to tune (pop | mf | lightgcn | ...)")
    u.add_argument("--trials", required=True, type=_int_in(1, 100_000, "trials"),
                   help="trials the study should hold (finished or pruned); resumes DIR")  # fmt: skip
    u.add_argument(
        "--out", required=True, metavar="DIR", help="study directory (study.db, trials/)"
    )
    u.add_argument("--space", metavar="YAML", help="search space entries over the model's default")
    u.add_argument("--timeout", type=float, metavar="S", help="start no trial after S seconds")
    u.add_argument("--seeds", nargs="+", type=int, help="re-run the best config per seed")
    u.add_argument("--config", help="YAML config: fixed keys of every trial")
    u.add_argument("--set", nargs="+", action="append", default=[], metavar="KEY=VALUE",
                   help="fixed keys of every trial (as for train)")  # fmt: skip
    u.add_argument("--json", action="store_true", help="print best.json on stdout")

    e = command("evaluate", "re-evaluate a saved run", cmd_evaluate)
    _run_args(e)
    e.add_argument("--split", default="test", choices=["valid", "test"])
    e.add_argument("--json", action="store_true", help="print the metrics on stdout")

    r = command("recommend", "top-k raw item ids from a trained run", cmd_recommend)
    _run_args(r)
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--users", nargs="+", metavar="ID", help="raw user ids")
    what.add_argument("--items", nargs="+", metavar="ID", help="raw item ids: similar items")
    what.add_argument(
        "--history",
        nargs="+",
        metavar="ID",
        help="raw item ids of an anonymous user's history, oldest first (unknown ids are "
        "skipped and listed on stderr)",
    )
    what.add_argument("--all", action="store_true", help="every user, written to --out")
    r.add_argument("--out", metavar="FILE", help="for --all: FILE.parquet or FILE.csv")
    r.add_argument("-k", type=top_k, default=10, help=f"items per query, 1..{MAX_K} (default 10)")
    r.add_argument(
        "--fallback-popular",
        action="store_true",
        help="with --users: unknown users get popular items",
    )
    r.add_argument("--json", action="store_true", help="print the recommendations on stdout")

    x = command(
        "export", "write embeddings with raw ids (parquet files in a directory)", cmd_export
    )
    _run_args(x)
    x.add_argument("--out", required=True, metavar="DIR", help="directory to write (created)")
    x.add_argument(
        "--item-graph-k",
        type=_int_in(0, 1_000_000, "item-graph-k"),
        default=100,
        metavar="K",
        help="item-item graph fusion: neighbours kept per item in item_graph.parquet "
        "(default 100; 0 = all)",
    )

    s = command("serve", "serve a run over HTTP (FastAPI; needs the [serve] extra)", cmd_serve)
    _run_args(s)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=port_number, default=8000, help="1..65535 (default 8000)")
    _serve_limits(s)

    c = command("compare", "test metrics of runs and paired differences against the first, "
                "overall and per repeat / explore segment", cmd_compare)  # fmt: skip
    c.add_argument("runs", nargs="+", help="run directories, or directories of seed runs")
    c.add_argument("--metric", default="NDCG@10", help="per-user metric (per_user.parquet)")
    c.add_argument("--resamples", type=int, default=10_000, help="bootstrap rounds")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")

    n = command("inspect", "look into finished runs: segments, view usage, re-scoring",
                cmd_inspect)  # fmt: skip
    what = n.add_subparsers(dest="what", required=True, metavar="WHAT")
    seg = what.add_parser("segments", help="compare runs by repeat / explore users, older runs too",
                          description="graphseq compare over the repeat and explore segments, "
                          "computed from the graph for runs whose per_user.parquet predates "
                          "them, plus the repeat users' own items.")  # fmt: skip
    seg.add_argument("runs", nargs="+", metavar="RUN", help="[NAME=]DIR: a run or a directory "
                     "of seed runs (the first is the reference)")  # fmt: skip
    seg.add_argument("--graph", metavar="DIR", help="graph directory (default: the first run's)")
    seg.add_argument("--metric", default="NDCG@10", help="per-user metric (per_user.parquet)")
    views = what.add_parser("views", help="how much trained runs use their item views",
                            description="Fusion weights and the views' share of the item vectors.")  # fmt: skip
    views.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    res = what.add_parser("rescore", help="make runs' post-training choices again (in place)",
                          description="Re-choose a finished run's post-training choices on "
                          "validation with today's scoring; the previous figures are kept "
                          "under before_rescore in metrics.json.")  # fmt: skip
    res.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    res.add_argument("--valid-users", type=_int_in(0, 10**9, "valid-users"), default=0,
                     metavar="N", help="choose on N validation users (0: the run's setting)")  # fmt: skip
    for x in (seg, views, res):
        x.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    q = command(
        "quickstart",
        "synthetic data → graph → train graphseq and baselines → table",
        cmd_quickstart,
    )
    q.add_argument("--dir", default="graphseq-quickstart", help="working directory")
    q.add_argument("--fast", action="store_true", help="smaller data and fewer epochs (smoke runs)")
    q.add_argument("--models", nargs="+", metavar="M", help="models to train (default: all five)")
    q.add_argument("--json", action="store_true", help="print the results table as JSON on stdout")
    return p


def _error_line(e: BaseException, verbose: bool) -> str | None:
    """The one-line message for an error the user can fix, ``None`` to re-raise it."""
    from data_builders.errors import DataError  # imported here: pandas is not needed before

    if isinstance(e, DataError):
        return str(e)
    if isinstance(e, BrokenPipeError) or verbose:
        return None
    if isinstance(e, (ValueError, KeyError, RuntimeError, OSError)):
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def _main(argv: list[str] | None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(message)s",
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("graphseq: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        msg = _error_line(e, args.verbose)
        if msg is None:
            raise
        for line in msg.splitlines() or [msg]:  # several only for a run's damaged files
            print(f"graphseq: error: {line}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 error; 1 when stdout closed early)."""
    try:
        try:
            return _main(argv)
        finally:  # flush here, so a reader that went away (`| head`) is seen now, not at exit
            sys.stdout.flush()
    except BrokenPipeError:  # the recipe of Python's signal docs: no traceback, exit 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


def entry() -> NoReturn:
    """The console script and ``python -m graphseq``: :func:`main`, then exit."""
    code = main()
    # Exit without collecting the many objects torch and PyG made (~1 s on 2 cores). Not in
    # main(): a process that calls main() and goes on keeps its garbage collector as it was.
    gc.freeze()
    sys.exit(code)


__all__ = ["METRIC_HEADER", "entry", "main", "make_parser", "metrics_row"]

if __name__ == "__main__":
    entry()
