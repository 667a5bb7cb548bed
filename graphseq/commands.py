"""What each ``graphseq`` command does (the parser is in :mod:`graphseq.cli`).

Each ``cmd_*`` takes the parsed arguments and returns the exit code. Heavy imports happen
inside the commands; ``--json`` output goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

from graphseq.progress import progress_mode
from graphseq.rules import show_ids, table_suffix

log = logging.getLogger("graphseq")

SERVE_MODULES = {"fastapi", "prometheus_client", "pydantic", "starlette", "uvicorn"}  # [serve]

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


def _error(message: str, **kw: Any) -> Exception:
    from data_builders.errors import DataError

    return DataError(message, **kw)


def _say(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _bars() -> bool:
    # the trainer's progress (graphseq.progress) is bars in a terminal, lines in a log
    return progress_mode() != "off"


def print_table(rows: list[list[str]], header: list[str], file: TextIO | None = None) -> None:
    file = file or sys.stderr
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip(), file=file)


def metrics_row(name: str, m: dict) -> list[str]:
    """One row of :data:`METRIC_HEADER` from a ``metrics.json`` dict."""
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


def training_summary(run: str | Path, m: dict) -> list[str]:
    """Where the run went, its best epoch and what validation chose (lines for stderr)."""
    lines = [f"run written to {Path(run).resolve()}"]
    best = m.get("best_epoch")
    if best:
        lines.append(
            f"best epoch {best} of {m['epochs']} (valid NDCG@10 {m['valid']['NDCG@10']:.4f})"
        )
    ig = m.get("item_graph")
    if ig:
        if ig.get("weight"):
            lines.append(
                f"validation chose item-item graph fusion: weight {ig['weight']:g}, "
                f"decay {ig['decay']:g} (valid NDCG@10 {ig['valid_NDCG@10']:.4f})"
            )
        else:
            lines.append("validation chose no item-item graph fusion (weight 0)")
    return lines


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
        rows = [[k, v] for k, v in report["nodes"].items()]
        rows += [[k, v] for k, v in report["edges"].items()]
        print_table(rows, ["nodes / edges", "count"])
        _say(f"events {report['events']}  targets {report['targets']}  dropped {report['dropped']}")
        _say(f"graph written to {a.out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from graphseq.config import TrainConfig, explicit_keys, load_config
    from graphseq.models.resolve import check_model_name, ignored_keys
    from graphseq.training.seeds import train_seeds
    from graphseq.training.trainer import Trainer

    if a.resume:
        given = [f for f, v in (("--graph", a.graph), ("--model", a.model), ("--out", a.out),
                 ("--config", a.config), ("--set", a.set), ("--seeds", a.seeds)) if v]  # fmt: skip
        if given:
            raise _error(
                f"--resume continues a run with its own saved config; {', '.join(given)} "
                "would be ignored", hint="drop them, or start a new run with --out",
            )  # fmt: skip
        trainer = Trainer.resume(a.resume, progress=_bars())
        out = a.resume
    else:
        if not (a.graph and a.out):
            raise _error("train needs --graph DIR and --out RUN (or --resume RUN)")
        base = TrainConfig(model=a.model or "graphseq", graph=a.graph)
        sets = [p for group in a.set for p in group]
        cfg = load_config(a.config, sets, base)
        if a.model:
            cfg = cfg.replace(model=a.model)
        check_model_name(cfg.model)
        for key in ignored_keys(cfg.model, explicit_keys(a.config, sets)):
            log.warning("warning: config key '%s' is not used by model '%s'", key, cfg.model)
        if a.seeds:
            summary = train_seeds(cfg, a.out, a.seeds, progress=_bars())
            if a.json:
                print(json.dumps(summary))
            m, s = summary["test_mean"]["NDCG@10"], summary["test_sd"]["NDCG@10"]
            _say(
                f"{cfg.model}: test NDCG@10 {m:.4f} ± {s:.4f} over seeds {a.seeds}",
                f"runs written to {Path(a.out).resolve()}/seed<N>, summary in summary.json",
            )
            return 0
        trainer = Trainer(cfg, a.out, progress=_bars())
        out = a.out
    metrics = trainer.fit()
    if not trainer.is_main:  # distributed: rank 0 reports
        return 0
    if a.json:
        print(json.dumps(metrics))
    else:
        print_table([metrics_row(metrics["model"].split("(")[0], metrics)], METRIC_HEADER)
    _say(*training_summary(out, metrics))
    return 0


def cmd_tune(a: argparse.Namespace) -> int:
    from graphseq.config import TrainConfig, explicit_keys, load_config
    from graphseq.models.resolve import check_model_name
    from graphseq.training.search import tune
    from graphseq.training.space import load_space

    check_model_name(a.model)
    sets = [p for group in a.set for p in group]
    base = load_config(a.config, sets, TrainConfig(model=a.model, graph=a.graph))
    base = base.replace(model=a.model, graph=a.graph)
    overrides = {k: getattr(base, k) for k in explicit_keys(a.config, sets) - {"graph"}}
    space = load_space(a.model, a.space)
    res = tune(base, a.out, space, a.trials, overrides, a.timeout, a.seeds, progress=_bars())
    if a.json:
        print(json.dumps(res))
    out = Path(a.out).resolve()
    t = res["test"]["metrics"]["NDCG@10"]
    _say(
        f"best trial {res['best_trial']} of {sum(res['trials'].values())} {res['trials']}: "
        f"valid NDCG@10 {res['valid_NDCG@10']:.4f}; test NDCG@10 {t:.4f} (scored once, "
        "for this trial only)",
        f"best config: {out / 'best_config.yaml'} (graphseq train --config takes it)",
    )
    if "seeds" in res:
        m, sd = res["seeds"]["test_mean"]["NDCG@10"], res["seeds"]["test_sd"]["NDCG@10"]
        _say(f"best config over seeds {a.seeds}: test NDCG@10 {m:.4f} ± {sd:.4f} ({out}/seeds)")
    return 0


def _load(a: argparse.Namespace):
    from graphseq.recommend import load_run

    return load_run(a.run, allow_incomplete=a.allow_incomplete, graph=a.graph)


def cmd_evaluate(a: argparse.Namespace) -> int:
    res = _load(a).evaluate(a.split)
    if a.json:
        print(json.dumps(res.metrics))
    else:
        print_table([[k, f"{v:.4f}"] for k, v in res.metrics.items()], [a.split, "value"])
    return 0


def cmd_recommend(a: argparse.Namespace) -> int:
    if a.out and not a.all:
        raise _error("--out is only for --all (the other queries print their results)")
    if a.fallback_popular and not a.users:
        raise _error("--fallback-popular is only for --users")
    if a.all and not a.out:
        raise _error("--all needs --out FILE.parquet or FILE.csv")
    if a.all and table_suffix(a.out) is None:
        raise _error("--out must end in .parquet or .csv", file=a.out)
    run = _load(a)
    if a.all:
        n = run.recommend_all(a.out, k=a.k)
        _say(f"wrote top-{a.k} for {n} users to {a.out}")
        return 0
    if a.items:
        out = run.similar_items_dict(a.items, k=a.k)
    elif a.history:
        known, unknown = run.split_known("item", a.history)
        if not known:
            raise _error(
                f"unknown item ids: {show_ids(unknown)}", hint="no --history item is known"
            )
        if unknown:
            _say(f"graphseq: warning: skipped unknown item ids: {show_ids(unknown, limit=20)}")
        out = {"history": run.recommend_history_list(known, k=a.k)}
    else:
        out = run.recommend_dict(a.users, k=a.k, fallback_popular=a.fallback_popular)
    if a.json:
        print(json.dumps(out))
    else:
        for key, recs in out.items():
            _say(f"{key}: " + ", ".join(f"{r['item']} ({r['score']:.3f})" for r in recs))
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise _error("export writes a directory, and this is a file", file=out)
    run = _load(a)
    files = run.export(out, item_graph_k=a.item_graph_k)
    _say(f"wrote {', '.join(str(f) for f in files)}")
    if not any(f.name == "user_encoder.pt2" for f in files):
        _say(f"user_encoder.pt2 not written: {run.model!r} has no sequence user encoder "
             "(sasrec, gru4rec and graphseq have one)")  # fmt: skip
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (so 'address in use' is a clear error, early)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        raise _error(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def cmd_serve(a: argparse.Namespace) -> int:
    import importlib
    import os
    import tempfile

    from graphseq.serve.limits import Limits

    names = ("max_body_bytes", "max_history", "max_batch_users", "max_batch_items", "timeout_s",
             "max_concurrency", "max_echo", "score_threads", "chunk_users")  # fmt: skip
    limits = Limits(**{n: getattr(a, n) for n in names})
    metrics_dir = None
    if a.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # the workers' metrics go to files there, summed by /metrics; set before the import
        metrics_dir = tempfile.TemporaryDirectory(prefix="graphseq-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    try:
        for name in sorted(SERVE_MODULES):
            importlib.import_module(name)
        from graphseq.serve import configure_logging, create_app, serve
    except ImportError as e:
        if (e.name or "").split(".")[0] not in SERVE_MODULES:
            raise
        raise _error(
            f"graphseq serve needs the [serve] extra (module {e.name!r} is missing)",
            hint='pip install -e ".[serve]" in a checkout, or pip install "graphseq[serve]"',
        ) from None
    sock = _listen(a.host, a.port)  # before loading: a taken port fails at once
    try:
        app = create_app(a.run, allow_incomplete=a.allow_incomplete, graph=a.graph, limits=limits)
        host = f"[{a.host}]" if ":" in a.host else a.host
        url = f"http://{host}:{sock.getsockname()[1]}"
        workers = f", {a.workers} workers" if a.workers > 1 else ""
        _say(f"serving {a.run} at {url} (API docs: {url}/docs{workers}); Ctrl-C stops")
        handler = configure_logging(debug=a.verbose)
        try:
            serve(app, sock, a.workers)
        finally:
            logging.getLogger("graphseq.serve").removeHandler(handler)
    finally:
        sock.close()
        if metrics_dir is not None:
            metrics_dir.cleanup()
    return 0


def cmd_quickstart(a: argparse.Namespace) -> int:
    from graphseq.quickstart import MODELS, quickstart

    unknown = sorted(set(a.models or ()) - set(MODELS))
    if unknown:
        raise _error(f"unknown quickstart models: {show_ids(unknown)}", hint=f"pick from {MODELS}")
    res = quickstart(a.dir, fast=a.fast, models=tuple(a.models or MODELS), progress=_bars())
    rows = [metrics_row(name, m) for name, m in res.metrics.items()]
    print_table(rows, METRIC_HEADER)
    _say(f"runs written to {res.runs}")
    if a.json:
        print(json.dumps({"runs": str(res.runs), "metrics": res.metrics}))
    return 0


__all__ = ["METRIC_HEADER", "metrics_row", "print_compare", "print_table", "training_summary"]


def cmd_inspect(a: argparse.Namespace) -> int:
    from graphseq.inspect import main

    return main(a)


def cmd_compare(a: argparse.Namespace) -> int:
    from graphseq.stats import compare, load_group

    rows = compare([load_group(r, a.metric) for r in a.runs], n=a.resamples)
    if a.json:
        print(json.dumps(rows))
    else:
        print_compare(rows, a.metric)
    return 0


def print_compare(rows: list[dict], metric: str) -> None:
    """:func:`graphseq.stats.compare`'s rows as tables on stderr: all test users, then each
    segment's users."""
    header = ["run", "seeds", f"test {metric} (mean ± seed sd)", "minus first, 95% CI"]
    print_table([_compare_row(r) for r in rows], header)
    if "segments" not in rows[0]:
        _say("\nsegments: not in these runs' per_user.parquet (written before segments); "
             "`graphseq inspect segments` computes them from the graph")  # fmt: skip
        return
    for name, seg in rows[0]["segments"].items():
        if not seg["users"]:
            _say(f"\n{name}: no test user: {seg['note']}")
            continue
        _say(f"\n{name}: {seg['users']:,} test users ({seg['share']:.1%})")
        print_table([_compare_row({**r["segments"][name], "run": r["run"]}) for r in rows], header)


def _compare_row(r: dict) -> list[str]:
    d = r.get("vs_first")
    diff = f"{d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d else "—"
    return [r["run"], r["seeds"], f"{r['mean']:.4f} ± {r['seed_sd']:.4f}", diff]
