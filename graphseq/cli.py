"""The ``graphseq`` command line. Machine output (``--json``) goes to stdout and nothing else
does; progress and logs go to stderr. Errors: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from data_builders.errors import DataError

log = logging.getLogger("graphseq")


def _print_table(rows: list[list[str]], header: list[str], file=sys.stderr) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line, file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)), file=file)


def cmd_build(a: argparse.Namespace) -> int:
    from data_builders.build import BuildOptions, build_graph
    from data_builders.readers import read_log
    from data_builders.schema import Schema
    from data_builders.store import save_graph

    schema = Schema.from_yaml(a.schema) if a.schema else None
    log_ = read_log(a.format, a.input, schema, query=a.query)
    opts = BuildOptions(kcore=a.kcore, kg_top_relations=a.kg_top_relations)
    data, ids, report = build_graph(log_, opts)
    save_graph(a.out, data, ids, report, items=log_.items, overwrite=a.overwrite)
    if a.json:
        print(json.dumps(report))
    else:
        rows = [[k, v] for k, v in report["nodes"].items()] + [
            [k, v] for k, v in report["edges"].items()
        ]
        _print_table(rows, ["nodes / edges", "count"])
        print(
            f"events {report['events']}  targets {report['targets']}  dropped {report['dropped']}",
            file=sys.stderr,
        )
        print(f"graph written to {a.out}", file=sys.stderr)
    return 0


def _metrics_rows(name: str, m: dict) -> list[str]:
    t = m["test"]
    return [
        name,
        f"{t['NDCG@10']:.4f}",
        f"{t['Recall@10']:.4f}",
        f"{t['MRR@10']:.4f}",
        f"{t['Coverage@10']:.3f}",
        f"{m['valid']['NDCG@10']:.4f}",
        str(m["epochs"]),
        f"{m['seconds_per_epoch']:.2f}",
    ]


METRIC_HEADER = [
    "model",
    "test NDCG@10",
    "Recall@10",
    "MRR@10",
    "Coverage@10",
    "valid NDCG@10",
    "epochs",
    "s/epoch",
]


def cmd_train(a: argparse.Namespace) -> int:
    from graphseq.config import TrainConfig, load_config
    from graphseq.train.seeds import train_seeds
    from graphseq.train.trainer import Trainer

    if a.resume:
        trainer = Trainer.resume(a.resume)
    else:
        if not (a.graph and a.out):
            raise DataError("train needs --graph DIR and --out RUN (or --resume RUN)")
        base = TrainConfig(model=a.model or "graphseq", graph=a.graph)
        cfg = load_config(a.config, [p for group in a.set for p in group], base)
        if a.model:
            cfg = cfg.replace(model=a.model)
        if a.seeds:
            summary = train_seeds(cfg, a.out, a.seeds)
            print(json.dumps(summary) if a.json else "", file=sys.stdout if a.json else sys.stderr)
            m, s = summary["test_mean"]["NDCG@10"], summary["test_sd"]["NDCG@10"]
            print(
                f"{cfg.model}: test NDCG@10 {m:.4f} ± {s:.4f} over seeds {a.seeds}", file=sys.stderr
            )
            return 0
        trainer = Trainer(cfg, a.out)
    metrics = trainer.fit()
    if not trainer.is_main:  # distributed: rank 0 reports
        return 0
    if a.json:
        print(json.dumps(metrics))
    else:
        _print_table([_metrics_rows(metrics["model"].split("(")[0], metrics)], METRIC_HEADER)
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from graphseq.recommend import load_run

    run = load_run(a.run)
    res = run.evaluate(a.split)
    print(json.dumps(res.metrics) if a.json else "", file=sys.stdout if a.json else sys.stderr)
    if not a.json:
        _print_table([[k, f"{v:.4f}"] for k, v in res.metrics.items()], [a.split, "value"])
    return 0


def cmd_recommend(a: argparse.Namespace) -> int:
    from graphseq.recommend import load_run

    run = load_run(a.run)
    if a.all:
        if not a.out:
            raise DataError("--all needs --out FILE.parquet")
        n = run.recommend_all(a.out, k=a.k)
        print(f"wrote top-{a.k} for {n} users to {a.out}", file=sys.stderr)
        return 0
    if a.items:
        out = run.similar_items(a.items, k=a.k)
    elif a.history:
        out = {"history": run.recommend_history(a.history, k=a.k)}
    elif a.users:
        out = run.recommend(a.users, k=a.k, fallback_popular=a.fallback_popular)
    else:
        raise DataError("recommend needs --users ID..., --items ID..., --history ID... or --all")
    if a.json:
        print(json.dumps(out))
    else:
        for key, recs in out.items():
            print(
                f"{key}: " + ", ".join(f"{r['item']} ({r['score']:.3f})" for r in recs),
                file=sys.stderr,
            )
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from graphseq.recommend import load_run

    files = load_run(a.run).export(a.out)
    print(f"wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    import uvicorn

    from graphseq.serve import create_app

    uvicorn.run(create_app(a.run), host=a.host, port=a.port, log_level="warning")
    return 0


def cmd_quickstart(a: argparse.Namespace) -> int:
    from graphseq.quickstart import quickstart

    rows = quickstart(a.dir, fast=a.fast)
    _print_table(rows, METRIC_HEADER, file=sys.stdout)
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphseq", description=__doc__.split("\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a graph directory from a log")
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
    b.set_defaults(func=cmd_build)

    t = sub.add_parser("train", help="train a model; early-stops on validation, evaluates on test")
    t.add_argument("--graph", help="graph directory")
    t.add_argument("--model", help="pop | mf | lightgcn | sasrec | graphseq")
    t.add_argument("--out", help="run directory")
    t.add_argument("--config", help="YAML config")
    t.add_argument(
        "--set",
        nargs="+",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys",
    )
    t.add_argument(
        "--seeds", nargs="+", type=int, help="one run per seed, with a mean ± sd summary"
    )
    t.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last.pt")
    t.add_argument("--json", action="store_true", help="print metrics.json on stdout")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="re-evaluate a saved run")
    e.add_argument("--run", required=True)
    e.add_argument("--split", default="test", choices=["valid", "test"])
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("recommend", help="top-K raw item ids")
    r.add_argument("--run", required=True)
    r.add_argument("--users", nargs="+", help="raw user ids")
    r.add_argument("--items", nargs="+", help="raw item ids: similar items")
    r.add_argument("--history", nargs="+", help="raw item ids of an anonymous user's history")
    r.add_argument("--all", action="store_true", help="every user, written to --out")
    r.add_argument("--out", help="parquet file for --all")
    r.add_argument("-k", type=int, default=10)
    r.add_argument(
        "--fallback-popular", action="store_true", help="unknown users get popular items"
    )
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_recommend)

    x = sub.add_parser("export", help="embeddings with raw ids (parquet)")
    x.add_argument("--run", required=True)
    x.add_argument("--out", required=True)
    x.set_defaults(func=cmd_export)

    s = sub.add_parser("serve", help="HTTP API (FastAPI)")
    s.add_argument("--run", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    q = sub.add_parser(
        "quickstart", help="synthetic data → graph → train graphseq and baselines → table"
    )
    q.add_argument("--dir", default="graphseq-quickstart", help="working directory")
    q.add_argument(
        "--fast", action="store_true", help="smaller data and fewer epochs (CI, smoke tests)"
    )
    q.set_defaults(func=cmd_quickstart)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(message)s",
    )
    try:
        return args.func(args)
    except DataError as e:
        print(f"graphseq: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        if args.verbose:
            raise
        print(f"graphseq: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
