"""Check every file of a run directory before anything is loaded from it.

:func:`check_run_files` looks at the run's ``config.yaml``, ``provenance.json``,
``metrics.json``, ``per_user.parquet`` and ``checkpoint.pt``, and at its graph directory's
``meta.json``, ``report.json``, ``graph.pt``, ``ids/<type>.parquet`` and ``items.parquet``.
It reports every problem it finds at once, in a :class:`RunFilesError` whose ``str()`` is one
line per problem (``FILE: what is wrong (hint: ...)``). The checks are cheap: zip members'
CRCs, tensors memory-mapped rather than read, Parquet footers. ``last.pt`` and
``train_log.jsonl`` are left to ``graphseq train --resume``, the one reader of them.

:func:`run_file_paths` lists the files a loaded run depends on (the server's ``/ready``
compares their ``stat`` with what was loaded).
"""

from __future__ import annotations

import contextlib
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_builders.errors import DataError

REBUILD = "rebuild it with `graphseq build`"
RETRAIN = "retrain the run, or restore the file from a copy"
UNFINISHED = ("wait for it, finish it with `graphseq train --resume RUN`, or pass "
              "--allow-incomplete (allow_incomplete=True in Python) to use its best checkpoint "
              "so far")  # fmt: skip
META_KEYS = ("format_version", "behaviors", "targets", "fingerprint")
IDS_COLUMNS = ("raw", "index")


@dataclass(frozen=True)
class Problem:
    """One damaged or missing file: ``file``, what is wrong, and how to fix it."""

    file: Path
    what: str
    hint: str = ""

    def __str__(self) -> str:
        line = f"{self.file}: {self.what}" + (f" (hint: {self.hint})" if self.hint else "")
        return " ".join(line.split())  # one line, whitespace of parser messages collapsed


class RunFilesError(DataError):
    """Every problem of a run's files; ``str()`` is one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.what, file=first.file, hint=first.hint or None)

    def __str__(self) -> str:
        return "\n".join(map(str, self.problems))


def _why(e: BaseException) -> str:
    """A one-line reason: the exception's first line, or its type when it has no message."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def _quiet(name: str = "graphseq") -> Iterator[None]:
    """Silence ``name``'s warnings while checking (loading says them once, after)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _json_object(f: Path, out: list[Problem], hint: str, required: bool = True) -> dict | None:
    if not f.exists():
        if required:
            out.append(Problem(f, "missing", hint))
        return None
    try:
        d = json.loads(f.read_bytes())
    except (OSError, ValueError) as e:
        out.append(Problem(f, f"not valid JSON ({_why(e)})", hint))
        return None
    if not isinstance(d, dict):
        out.append(Problem(f, f"not a JSON object (a {type(d).__name__})", hint))
        return None
    return d


def _torch_file(f: Path, out: list[Problem], hint: str) -> Any:
    """The object in a ``torch.save`` file (tensors memory-mapped), or ``None`` on a problem."""
    import torch

    if not f.exists():
        out.append(Problem(f, "missing", hint))
        return None
    if f.stat().st_size == 0:
        out.append(Problem(f, "empty file (0 bytes)", hint))
        return None
    try:
        with zipfile.ZipFile(f) as z:
            bad = z.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
        out.append(Problem(f, f"not a torch.save file, truncated or corrupt ({_why(e)})", hint))
        return None
    if bad is not None:
        out.append(Problem(f, f"corrupt: member {bad!r} fails its CRC check", hint))
        return None
    try:
        return torch.load(f, weights_only=True, map_location="cpu", mmap=True)
    except Exception as e:  # UnpicklingError for pickled payloads, RuntimeError for corruption
        out.append(Problem(f, f"cannot be loaded with weights_only=True ({_why(e)})", hint))
        return None


def _parquet_rows(f: Path, out: list[Problem], hint: str, columns: tuple[str, ...] = ()) -> int:
    """Rows in a Parquet file's footer (-1 on a problem); ``columns`` must be there."""
    import pyarrow.parquet as pq

    if not f.exists():
        out.append(Problem(f, "missing", hint))
        return -1
    try:
        meta = pq.read_metadata(f)  # the footer only (the file is closed again)
    except Exception as e:  # ArrowInvalid for truncated or foreign files
        out.append(Problem(f, f"not a readable Parquet file ({_why(e)})", hint))
        return -1
    missing = [c for c in columns if c not in meta.schema.names]
    if missing:
        out.append(Problem(f, f"has no column {', '.join(map(repr, missing))}", hint))
        return -1
    return meta.num_rows


def _check_checkpoint(f: Path, out: list[Problem]) -> str | None:
    """Problems of ``checkpoint.pt``; its graph fingerprint when it is readable."""
    from graphseq.training.run import CHECKPOINT_VERSION

    ckpt = _torch_file(f, out, RETRAIN)
    if ckpt is None:
        return None
    if not isinstance(ckpt, dict) or ckpt.get("checkpoint_version") != CHECKPOINT_VERSION:
        version = ckpt.get("checkpoint_version") if isinstance(ckpt, dict) else None
        out.append(Problem(f, f"not a graphseq checkpoint of version {CHECKPOINT_VERSION} "
                              f"(version {version!r})", RETRAIN))  # fmt: skip
        return None
    if not isinstance(ckpt.get("state_dict"), dict):
        out.append(Problem(f, "has no state_dict", RETRAIN))
        return None
    return ckpt.get("fingerprint")


def _check_graph(g: Path, out: list[Problem]) -> str | None:
    """Problems of the graph directory ``g``; its fingerprint when ``meta.json`` is readable."""
    from data_builders.store import FORMAT_VERSION

    meta = _json_object(g / "meta.json", out, REBUILD)
    if meta is not None:
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            out.append(Problem(g / "meta.json", f"has no {', '.join(map(repr, missing))}", REBUILD))
    _json_object(g / "report.json", out, REBUILD)
    payload = _torch_file(g / "graph.pt", out, REBUILD)
    nodes: dict[str, int] = {}
    if payload is not None:
        if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
            version = payload.get("format_version") if isinstance(payload, dict) else None
            what = f"graph format {version!r} is not {FORMAT_VERSION}"
            out.append(Problem(g / "graph.pt", what, "rebuild it with this graphseq version"))
        elif not isinstance(payload.get("nodes"), dict) or "edges" not in payload:
            out.append(Problem(g / "graph.pt", "has no nodes or edges", REBUILD))
        else:
            nodes = {str(k): int(v) for k, v in payload["nodes"].items()}
    ids = g / "ids"
    if not ids.is_dir():
        out.append(Problem(ids, "missing (the id maps)", REBUILD))
    else:
        # every graph has users and items; graph.pt names the other node types
        for nt in nodes or sorted({"user", "item", *(p.stem for p in ids.glob("*.parquet"))}):
            f = ids / f"{nt}.parquet"
            rows = _parquet_rows(f, out, REBUILD, IDS_COLUMNS)
            if rows >= 0 and nt in nodes and rows != nodes[nt]:
                out.append(Problem(f, f"{rows} ids for {nodes[nt]} {nt} nodes", REBUILD))
    if (g / "items.parquet").exists():
        _parquet_rows(g / "items.parquet", out, REBUILD)
    return meta.get("fingerprint") if meta else None


def _graph_dir(run: Path, cfg_graph: str | None, override: str | Path | None, prov_ok: bool,
               out: list[Problem]) -> Path | None:  # fmt: skip
    """The run's graph directory (as loading finds it), or ``None`` with a problem."""
    from graphseq.training.run import resolve_graph

    if override is None and not prov_ok:  # provenance.json is damaged: the config's path only
        if cfg_graph is None:
            return None  # config.yaml's own problem is reported
        g = Path(cfg_graph) if Path(cfg_graph).is_absolute() else run / cfg_graph
        if not g.is_dir():
            what = (f"graph directory of this run not found (tried {g}; provenance.json is "
                    "damaged, so its graph_relative was not tried)")  # fmt: skip
            out.append(Problem(run / "config.yaml", what, "give its graph directory (--graph DIR)"))
            return None
        return g
    if override is None and cfg_graph is None:
        return None
    try:
        return resolve_graph(run, cfg_graph or "", override)
    except DataError as e:
        out.append(Problem(Path(e.file or run), e.message, e.hint or ""))
    return None


def check_run_files(
    path: str | Path, allow_incomplete: bool = False, graph: str | Path | None = None
) -> None:
    """Raise :class:`RunFilesError` listing every problem of the run in ``path`` and its graph
    directory (``graph`` overrides the config's); return quietly when there is none."""
    from graphseq.config import load_config

    run = Path(path)
    if not run.is_dir():
        raise RunFilesError([Problem(run, "run directory not found",
                                     "is this a finished run directory?")])  # fmt: skip
    out: list[Problem] = []
    cfg_graph = None
    if not (run / "config.yaml").exists():
        out.append(Problem(run, "not a run directory (no config.yaml)"))
    else:
        try:
            with _quiet():
                cfg_graph = load_config(run / "config.yaml").graph
        except DataError as e:
            out.append(Problem(run / "config.yaml", e.message, e.hint or RETRAIN))
        except Exception as e:  # unreadable bytes
            out.append(Problem(run / "config.yaml", f"cannot be read ({_why(e)})", RETRAIN))
    prov = _json_object(run / "provenance.json", out, RETRAIN, required=False)
    if prov is not None and not isinstance(prov.get("graph_relative"), (str, type(None))):
        out.append(Problem(run / "provenance.json", "graph_relative is not a path", RETRAIN))
        prov = None
    if (run / "metrics.json").exists():
        _json_object(run / "metrics.json", out, RETRAIN)
    elif not allow_incomplete:
        what = "run is not finished (no metrics.json): it is still training or was interrupted"
        out.append(Problem(run / "metrics.json", what, UNFINISHED))
    if (run / "per_user.parquet").exists():
        _parquet_rows(run / "per_user.parquet", out, RETRAIN)
    ckpt_fp = _check_checkpoint(run / "checkpoint.pt", out)
    prov_ok = prov is not None or not (run / "provenance.json").exists()
    g = _graph_dir(run, cfg_graph, graph, prov_ok, out)
    graph_fp = _check_graph(g, out) if g is not None else None
    if ckpt_fp is not None and graph_fp is not None and ckpt_fp != graph_fp:
        out.append(Problem(run / "checkpoint.pt", f"trained on a graph with other id maps "
                           f"(fingerprint {ckpt_fp}, {g} has {graph_fp})",
                           "pass --graph with the graph it was trained on"))  # fmt: skip
    if out:
        raise RunFilesError(out)


def run_file_paths(path: str | Path, graph: str | Path) -> list[Path]:
    """The files a loaded run depends on, that exist: the run's and its graph directory's."""
    run, g = Path(path), Path(graph)
    names = ["config.yaml", "provenance.json", "metrics.json", "checkpoint.pt"]
    graph_names = ("meta.json", "report.json", "graph.pt", "items.parquet")
    files = [run / n for n in names] + [g / n for n in graph_names]
    files += sorted((g / "ids").glob("*.parquet"))
    return [f for f in files if f.exists()]


__all__ = ["Problem", "RunFilesError", "check_run_files", "run_file_paths"]
