"""Run the app with uvicorn on a socket that is already listening: in this process, or in
``workers`` processes forked after the run was loaded.

Forked workers share the loaded model, graph and id maps with the parent page by page
(copy-on-write), so N workers cost about one model's memory and start at once; each scores
with one torch thread (a process forked after torch's thread pool started must not start
another). The parent supervises: it passes SIGTERM and SIGINT on to the workers once, waits
for them to finish their requests, and forks a new worker for one that dies.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("graphseq.serve")
RESPAWN_PAUSE_S = 1.0  # a worker that died within this many seconds of its start waits as long


def server(app: FastAPI) -> uvicorn.Server:
    """A uvicorn server for ``app``: no access log of its own (the app writes JSON lines)."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def _worker(app: FastAPI, sock: socket.socket) -> None:
    """The forked child: serve until told to stop, then leave without the parent's exit."""
    code = 1
    try:
        os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent, which passes it on once
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)
        import torch

        torch.set_num_threads(1)
        server(app).run(sockets=[sock])
        code = 0
    finally:
        os._exit(code)


def _mark_dead(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve(app: FastAPI, sock: socket.socket, workers: int = 1) -> None:
    """Serve ``app`` on the listening ``sock`` until SIGTERM or Ctrl-C (see the module)."""
    if workers == 1:
        server(app).run(sockets=[sock])
        return
    started: dict[int, float] = {}
    stopping = False

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            _worker(app, sock)
        started[pid] = time.monotonic()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(started):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            fork()
        while started:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            since = started.pop(pid, None)
            if since is None:
                continue
            _mark_dead(pid)
            if not stopping:
                code = os.waitstatus_to_exitcode(status)
                log.error(
                    "worker exited; starting another", extra={"fields": {"pid": pid, "code": code}}
                )
                if time.monotonic() - since < RESPAWN_PAUSE_S:
                    time.sleep(RESPAWN_PAUSE_S)
                fork()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


__all__ = ["serve", "server"]
