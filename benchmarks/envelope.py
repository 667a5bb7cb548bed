"""The one result envelope of the benchmarks, written by one function.

Every result is ``benchmarks/results/<suite>/<variant>.json``::

    {"suite": ..., "variant": ..., "command": ..., "commit": ..., "env": {...}, "data": {...}}

- ``variant``: the result's name in its suite, also its file name (``ml100k``,
  ``ml100k-global_time``, ``propagation``, ``scaling-default``, ...);
- ``command``: the exact command line that produced it;
- ``commit``: ``git rev-parse HEAD``, with ``-dirty`` when tracked files had changes;
- ``env``: Python, torch and PyG versions, platform, CPU count, threads, 1-min load average;
- ``data``: the suite's payload.

Results migrated from the files of earlier releases also carry ``"migrated": true`` (their
command taken from the docs that cited them, their commit from the last commit of the file).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
KEYS = ("suite", "variant", "command", "commit", "env", "data")


def command_line(argv: Sequence[str], suite: str | None = None) -> str:
    """``python -m benchmarks SUITE ARGV...`` (``suite`` None: ``python ARGV...``), quoted."""
    head = ["python", "-m", "benchmarks", suite] if suite else ["python"]
    return shlex.join([*head, *map(str, argv)])


def commit(root: Path = ROOT) -> str | None:
    """``git rev-parse HEAD`` of ``root``, ``-dirty`` appended when tracked files changed."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty.strip() else "")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(threads: int | None = None) -> dict[str, Any]:
    """Where the result was measured. ``threads``: the threads the measured code ran with
    (default: torch's, if this process imported it, else ``OMP_NUM_THREADS``)."""
    if threads is None:
        if "torch" in sys.modules:
            threads = sys.modules["torch"].get_num_threads()
        elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = int(os.environ["OMP_NUM_THREADS"])
    return {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "torch_geometric": _version("torch_geometric"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": threads,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically: a temporary file beside ``path``, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=1, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_result(
    suite: str,
    variant: str,
    data: Any,
    command: str,
    results: Path = RESULTS,
    threads: int | None = None,
    path: Path | None = None,
) -> Path:
    """Write the envelope of one result to ``results/<suite>/<variant>.json`` (or ``path``);
    returns where it went."""
    if not variant or "/" in variant or variant.startswith("."):
        raise ValueError(f"bad result name {variant!r}")
    env = environment(threads)
    out = {"suite": suite, "variant": variant, "command": command, "commit": commit(),
           "env": env, "data": data}  # fmt: skip
    path = Path(results) / suite / f"{variant}.json" if path is None else Path(path)
    write_json(path, out)
    return path


def read_result(path: str | Path) -> dict:
    """An envelope, checked for its keys."""
    out = json.loads(Path(path).read_text())
    missing = [k for k in KEYS if k not in out]
    if missing:
        raise ValueError(f"{path}: not a result envelope (missing {', '.join(missing)})")
    return out
