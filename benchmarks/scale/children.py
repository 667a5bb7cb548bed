"""What the scale suite measures in a fresh process: one measurement per process, one JSON
line on stdout; wall time and peak RSS are the runner's (:mod:`benchmarks.runner`).

Run by path (``python benchmarks/scale/children.py KIND ARGS...``), so it imports nothing of
the benchmarks and only what ``PYTHONPATH`` gives of the package: ``build-scale`` times an
older checkout's reader that way. Kinds:

- ``build SRC OUT INTERACTIONS_ONLY`` (scaling): read + build + save a synthetic log;
- ``train GRAPH MODE STEPS EVAL_USERS`` (scaling): training steps, then an evaluation;
- ``pipeline FORMAT INPUT OUT`` (build_speed): imports, read, build, save, timed per stage;
- ``columns FORMAT INPUT OUT QUERY`` (build_scale): read + build + save of the named-column
  synthetic log (``FORMAT`` csv or sql).
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import time
from pathlib import Path

SCHEMA = {"user": "user_id", "item": "item_id", "timestamp": "timestamp",
          "behavior": "behavior", "value": "value", "targets": ["buy"]}  # fmt: skip


def _rss_mb() -> float:
    """This process's peak RSS so far, MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform == "darwin" else kb / 1024


def build(src: str, out: str, interactions_only: bool) -> dict:
    from data_builders.build import build_graph
    from data_builders.store import save_graph
    from data_builders.synthetic_io import read_synthetic

    t0 = time.perf_counter()
    log = read_synthetic(Path(src))
    if interactions_only:
        log.items = None
    data, ids, report = build_graph(log)
    save_graph(out, data, ids, report, items=log.items, overwrite=True)
    return {
        "build_s": time.perf_counter() - t0,
        "events": report["events"],
        "nodes": report["nodes"],
    }


def train(graph: str, mode: str, steps: int, eval_users: int) -> dict:
    """``steps`` timed training steps of ``mode`` after one warm-up step, as the trainer takes
    them; an epoch is extrapolated as steps per epoch × the median step."""
    import numpy as np
    import torch

    from graphseq.config import TrainConfig
    from graphseq.training.optim import dense_tables, make_optimizer
    from graphseq.training.trainer import Trainer

    torch.set_num_threads(1)
    over = {"full": dict(loss="sampled", minibatch=False),
            "minibatch": dict(loss="sampled", minibatch=True),
            "minibatch-shared": dict(loss="sampled", minibatch=True, share_negatives=True),
            "auto": dict(loss="sampled"),  # auto: the default minibatch=auto
            "minibatch-ce": dict(minibatch=True)}  # fmt: skip  # the full softmax, every step
    # "default" (or any other name): the package defaults, no overrides; "default-dense": the
    # defaults with dense AdamW over the user table (the reference for the row-wise optimizer)
    cfg = TrainConfig(graph=graph, model="graphseq", **over.get(mode, {}))
    t0 = time.perf_counter()
    tr = Trainer(cfg, Path(graph) / f"run-{mode}", progress=False)
    if mode == "default-dense":
        dense_tables(tr.model)
        tr.opt = make_optimizer(tr.model, tr.params, cfg.lr, cfg.weight_decay)
    setup_s = time.perf_counter() - t0
    batches = tr._batches(1)
    model = tr.model.train()
    per_step = []
    for step, idx in enumerate(itertools.islice(itertools.cycle(batches), steps + 1)):
        t = time.perf_counter()
        loss = model.loss(tr.train_ctx, tr.builder.make(idx, 1, step))  # as Trainer._train_epoch
        tr.opt.zero_grad(set_to_none=True)
        loss.backward()
        tr.opt.step()
        per_step.append(time.perf_counter() - t)
    step_s = float(np.median(per_step[1:]))  # the first step builds cached graphs
    out = {
        "mode": mode,
        "chosen": tr.mode.as_dict(),  # what minibatch=auto (or the forced setting) resolved to
        "setup_s": setup_s,
        "first_step_s": per_step[0],
        "step_s": step_s,
        "steps_timed": len(per_step) - 1,
        "steps_per_epoch": len(batches),
        "epoch_s_extrapolated": step_s * len(batches),
        "train_peak_rss_mb": _rss_mb(),  # the peak over setup and the training steps
    }
    if eval_users > 0:  # 0: training steps only (the largest logs)
        out.update(_time_eval(tr, model, cfg.eval_batch_size, cfg.max_seq_len, eval_users))
    return out


def _time_eval(tr, model, batch_size: int, max_len: int, eval_users: int) -> dict:
    """One test evaluation's item encoding, and full-catalogue scoring of ``eval_users``."""
    import torch

    from graphseq.graph.context import GraphContext
    from graphseq.graph.sequences import pad_from_csr
    from graphseq.graph.splits import scoring_input

    tr.release_training_graph()  # as Trainer._evaluate does
    inp = scoring_input(tr.ev, tr.split, "test")
    ctx = GraphContext(tr.ev, inp.graph_mask, tr.side)
    model.eval()
    with torch.no_grad():
        rows = torch.randperm(len(inp.target_idx), generator=torch.Generator().manual_seed(0))
        rows = rows[:eval_users].sort().values
        users = tr.ev.user[inp.target_idx]
        t = time.perf_counter()  # once per evaluation: item table (+ full-graph snapshot pass)
        enc = model.encode(ctx)
        one = rows[:1]
        model.user_repr(
            ctx, enc, users[one], pad_from_csr(tr.ev, inp.hist_ptr, inp.hist_idx, one, 8)
        )
        encode_s = time.perf_counter() - t
        t = time.perf_counter()
        for b in rows.split(batch_size):
            hist = pad_from_csr(tr.ev, inp.hist_ptr, inp.hist_idx, b, max_len)
            model.score(model.user_repr(ctx, enc, users[b], hist), enc.items).topk(10)
        score_s = time.perf_counter() - t
    n_users = len(inp.target_idx)
    return {
        "encode_s": encode_s,
        "score_s_per_user": score_s / len(rows),
        "eval_s_per_user": encode_s / n_users + score_s / len(rows),
        "eval_s_extrapolated": encode_s + score_s / len(rows) * n_users,
        "eval_users_timed": len(rows),
        "test_users": n_users,
    }


def pipeline(fmt: str, path: str, out: str) -> dict:
    """Imports, then read, build and save once: seconds and peak RSS after each stage."""
    t0 = time.perf_counter()
    from data_builders.build import BuildOptions, build_graph  # torch, PyG, pandas
    from data_builders.readers import read_log
    from data_builders.store import save_graph

    imports = time.perf_counter() - t0
    secs, rss = {}, {}
    t0 = time.perf_counter()
    log = read_log(fmt, Path(path))
    t1 = time.perf_counter()
    secs["read"], rss["read"] = t1 - t0, _rss_mb()
    data, id_maps, report = build_graph(log, BuildOptions())
    t2 = time.perf_counter()
    secs["build"], rss["build"] = t2 - t1, _rss_mb()
    save_graph(out, data, id_maps, report, items=log.items, overwrite=True)
    t3 = time.perf_counter()
    secs["save"], rss["save"] = t3 - t2, _rss_mb()
    secs["total"], rss["total"] = t3 - t0, _rss_mb()
    return {"imports": imports, "secs": secs, "rss_mb": rss, "events": int(report["events"])}


def columns(fmt: str, path: str, out: str, query: str) -> dict:
    """Read + build + save of the named-column log, timed per stage (imports included)."""
    t0 = time.perf_counter()
    from data_builders.build import build_graph
    from data_builders.readers import read_log
    from data_builders.schema import Schema
    from data_builders.store import save_graph

    t1 = time.perf_counter()
    schema = Schema.from_dict(SCHEMA)
    log = read_log(fmt, path, schema, query=query) if query else read_log(fmt, path, schema)
    t2 = time.perf_counter()
    data, ids, report = build_graph(log)
    t3 = time.perf_counter()
    save_graph(out, data, ids, report, items=log.items, overwrite=True)
    t4 = time.perf_counter()
    secs = {"imports": t1 - t0, "read": t2 - t1, "build": t3 - t2, "save": t4 - t3}
    return {"secs": secs, "events": report["events"]}


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "build":
        res = build(args[0], args[1], args[2] == "1")
    elif kind == "train":
        res = train(args[0], args[1], int(args[2]), int(args[3]))
    elif kind == "pipeline":
        res = pipeline(*args)
    else:
        res = columns(*args)
    print(json.dumps(res))
