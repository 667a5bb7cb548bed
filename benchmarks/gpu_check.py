"""The gpu suite, one script for a GPU machine: CUDA tests, AMP on and off, a default graphseq
run, propagation and the chunked softmax against the CPU, peak GPU memory.

    python -m benchmarks gpu                        # on the GPU machine (< 8 min on one GPU)
    python benchmarks/gpu_check.py                  # the same, run by path
    python -m benchmarks gpu --device cpu --tiny --results /tmp/r   # the CI smoke run

Steps (each timed, each failure recorded instead of stopping the script):
1. ``pytest -m cuda`` (the CUDA tests; on CPU they skip).
2. ``graphseq`` trained with its defaults on an ML-1M-shaped synthetic log (6,040 users,
   3,706 items, ~1M events; ``--tiny``: 200 users), ``amp=false`` and ``amp=true``:
   seconds per epoch, time to the best validation, valid / test NDCG@10, peak GPU memory.
3. LightGCN propagation (3 layers, dim 64, ML-100K-shaped graph) forward + backward, on the
   device and on the CPU.
4. The full softmax at 200,000 items (``--tiny``: 5,000): the fused one-buffer CE against
   the chunked CE (``ce_max_logits``), time and peak memory.
The result goes to ``results/gpu/gpu_check[-<tag>].json`` (``--out FILE``: there instead);
the payload is also printed on stdout.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**20, 1) if dev.type == "cuda" else None


def _reset(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def timed(fn: Callable[[], object], dev: torch.device, runs: int = 10, warmup: int = 2) -> float:
    """Median wall time (ms) of ``runs`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    _sync(dev)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        out.append((time.perf_counter() - t0) * 1e3)
    return round(sorted(out)[len(out) // 2], 3)


def cuda_tests() -> dict:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", str(ROOT / "tests")],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    lines = [
        x
        for x in res.stdout.splitlines()
        if any(w in x for w in ("passed", "skipped", "failed", "selected", "error"))
    ]
    tail = lines[-1:] or [res.stderr.strip()[-300:]]
    # exit 5: no test selected (none collected), which counts as nothing failing
    return {"returncode": res.returncode, "ok": res.returncode in (0, 5), "summary": tail[0],
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def training(dev: torch.device, tiny: bool, work: Path) -> dict:
    from data_builders.build import build_graph
    from data_builders.readers.synthetic import SyntheticSpec, generate
    from data_builders.store import save_graph
    from graphseq.config import TrainConfig
    from graphseq.training.trainer import Trainer

    spec = SyntheticSpec(num_users=200, num_items=150, seed=1) if tiny else SyntheticSpec(
        num_users=6040, num_items=3706, events_per_user=165.0, seed=1)  # fmt: skip
    log = generate(spec)
    data, ids, report = build_graph(log)
    graph = work / "graph"
    save_graph(graph, data, ids, report, items=log.items)
    out = {"events": int(report.get("events", 0)) if isinstance(report, dict) else None}
    for amp in (False, True):
        _reset(dev)
        kw = dict(epochs=2, eval_every=1) if tiny else {}
        cfg = TrainConfig(graph=str(graph), model="graphseq", device=dev.type, amp=amp, **kw)
        t0 = time.perf_counter()
        m = Trainer(cfg, work / f"run_amp{int(amp)}", progress=False).fit()
        log_lines = (work / f"run_amp{int(amp)}" / "train_log.jsonl").read_text().splitlines()
        rows = [json.loads(x) for x in log_lines]
        best = m.get("best_epoch")
        to_best = sum(r.get("seconds", 0) for r in rows if r.get("epoch", 0) <= (best or 0))
        out[f"amp={str(amp).lower()}"] = {
            "wall_s": round(time.perf_counter() - t0, 1), "epochs": m["epochs"],
            "best_epoch": best, "s_per_epoch": m["seconds_per_epoch"],
            "train_s_to_best": round(to_best, 1), "valid_NDCG@10": m["valid"]["NDCG@10"],
            "test_NDCG@10": m["test"]["NDCG@10"], "peak_gpu_MiB": _peak(dev),
        }  # fmt: skip
    return out


def propagation(dev: torch.device) -> dict:
    from graphseq.nn import LightGCNView, bipartite_adjacency

    g = torch.Generator().manual_seed(0)
    users, items, edges = 943, 1682, 100_000
    src, dst = (
        torch.randint(users, (edges,), generator=g),
        torch.randint(items, (edges,), generator=g),
    )
    out = {}
    for where in dict.fromkeys([dev, torch.device("cpu")]):
        adj = bipartite_adjacency(src, dst, users, items).to(where)
        x = torch.randn(users + items, 64, device=where, requires_grad=True)
        view = LightGCNView(3)

        def step(view=view, x=x, adj=adj) -> None:
            view(x, adj).sum().backward()

        out[where.type] = {"fwd_bwd_ms": timed(step, where)}
    if "cuda" in out:
        out["cpu_over_cuda"] = round(out["cpu"]["fwd_bwd_ms"] / out["cuda"]["fwd_bwd_ms"], 2)
    return out


def softmax(dev: torch.device, tiny: bool) -> dict:
    from graphseq.nn.losses import full_softmax_ce
    from graphseq.nn.softmax import chunked_softmax_ce, softmax_chunk

    n_items, rows = (5_000, 512) if tiny else (200_000, 128 * 50)
    g = torch.Generator(device="cpu").manual_seed(0)
    h = torch.randn(rows, 64, generator=g).to(dev).requires_grad_()
    items = torch.randn(n_items, 64, generator=g).to(dev).requires_grad_()
    target = torch.randint(n_items, (rows,), generator=g).to(dev)
    chunk = softmax_chunk(rows, n_items, 2**27 if not tiny else 2**20)
    out = {"items": n_items, "rows": rows, "chunk": chunk}
    for name, fn in {
        "fused": lambda: full_softmax_ce(h, items, target).backward(),
        "chunked": lambda: chunked_softmax_ce(h, items, target, None, chunk).backward(),
    }.items():
        _reset(dev)
        out[name] = {"fwd_bwd_ms": timed(fn, dev, runs=5, warmup=1), "peak_gpu_MiB": _peak(dev)}
    with torch.no_grad():
        a = full_softmax_ce(h, items, target)
        b = chunked_softmax_ce(h, items, target, None, chunk)
    out["max_abs_diff"] = float((a - b).abs())
    return out


def main(argv: list[str] | None = None, command: str | None = None) -> dict:
    """Run every step; ``command``: the command line to record (default: the gpu suite's)."""
    from benchmarks.envelope import command_line, write_result
    from benchmarks.suite import make_parser, result_name

    argv = sys.argv[1:] if argv is None else argv
    p = make_parser("gpu", __doc__)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--tiny", action="store_true", help="small sizes (the CI smoke run)")
    p.add_argument("--out", type=Path, help="write the result here instead")
    a = p.parse_args(argv)
    if a.list:
        print("gpu_check  CUDA tests, AMP on/off training, propagation and softmax vs the CPU")
        return {}
    if a.variants and a.variants != ["gpu_check"]:
        p.error("the gpu suite has one variant: gpu_check")
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (use --device cpu for the smoke run)")
    dev = torch.device(a.device)
    result: dict = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.machine(),
        "torch": torch.__version__, "tiny": a.tiny,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        steps = {
            "cuda_tests": cuda_tests,
            "training": lambda: training(dev, a.tiny, Path(tmp)),
            "propagation": lambda: propagation(dev),
            "softmax": lambda: softmax(dev, a.tiny),
        }
        for name, fn in steps.items():
            t0 = time.perf_counter()
            try:
                result[name] = fn()
            except Exception:  # record and go on: one broken path must not hide the others
                result[name] = {"error": traceback.format_exc(limit=5)}
            print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    command = command or command_line(argv, "gpu")
    path = write_result("gpu", result_name("gpu_check", a.tag), result, command, a.results,
                        path=a.out)  # fmt: skip
    print(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return result


if __name__ == "__main__":  # run by path: the benchmarks package is found from the checkout
    sys.path.insert(0, str(ROOT))
    main(command=" ".join(["python", "benchmarks/gpu_check.py", *sys.argv[1:]]))
