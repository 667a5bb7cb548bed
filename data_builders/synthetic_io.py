"""Writing synthetic logs to disk in bounded memory, and reading them back.

``write_synthetic`` generates users block by block, spills each chunk's events to sorted
temporary record files, then merges them in time windows into ``events.csv`` (or
``events.parquet``), so memory stays bounded however many events are written; ids are written
from Arrow string dictionaries (``take``), never as Python strings. ``read_synthetic`` reads
such a directory through the ``csv`` reader with a fixed schema.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from data_builders.errors import DataError
from data_builders.log import CanonicalLog
from data_builders.synthetic import (
    _BLOCK_USERS,
    _EVENT,
    BEHAVIORS,
    SyntheticSpec,
    _block,
    _concat,
    _items_frame,
    _names,
    _World,
)

_log = logging.getLogger(__name__)
__all__ = ["EVENT_COLUMNS", "read_synthetic", "write_synthetic"]

EVENT_COLUMNS = ["user_id", "item_id", "timestamp", "behavior", "value"]  # events file columns
FORMATS = ("csv", "parquet")  # events.csv or events.parquet
# how read_synthetic reads a written directory (the csv reader's schema)
SCHEMA = {
    "user": "user_id",
    "item": "item_id",
    "timestamp": "timestamp",
    "behavior": "behavior",
    "value": "value",
    "time_unit": "s",
    "targets": ["buy"],
}


def write_synthetic(
    out_dir: str | Path,
    spec: SyntheticSpec | None = None,
    chunk_events: int = 1_000_000,
    progress: bool = True,
    format: str = "csv",
) -> Path:
    """Write ``events.csv`` (or ``events.parquet``), ``items.csv`` and ``spec.json``.

    Args:
        out_dir: directory to write (created).
        spec: sizes and rates (default: :class:`SyntheticSpec`).
        chunk_events: events generated, and merged, per step (bounds memory).
        progress: progress bars on stderr.
        format: ``csv`` or ``parquet`` (one row group per merge window).

    The result reads back equal to ``generate(spec)``.
    """
    if format not in FORMATS:
        raise DataError(f"unknown synthetic format {format!r}", hint="use csv or parquet")
    spec = spec or SyntheticSpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _World(spec)
    n_blocks = -(-spec.num_users // _BLOCK_USERS)
    per_chunk = max(1, round(chunk_events / (_BLOCK_USERS * spec.events_per_user)))
    total = round(spec.num_users * spec.events_per_user)
    with tempfile.TemporaryDirectory(dir=out, prefix=".spill-") as tmp:
        chunks, samples, stride = [], [], max(1, chunk_events // 64)
        with tqdm(total=total, unit="ev", desc="generate", disable=not progress) as bar:
            for b0 in range(0, n_blocks, per_chunk):
                blocks = range(b0, min(b0 + per_chunk, n_blocks))
                ev = _concat([_block(spec, world, b) for b in blocks])
                chunks.append(Path(tmp, f"chunk{len(chunks)}"))
                ev.tofile(chunks[-1].with_suffix(".rec"))
                np.ascontiguousarray(ev["ts"]).tofile(chunks[-1].with_suffix(".ts"))
                samples.append(ev["ts"][::stride])
                bar.update(len(ev))
        cuts = np.unique(np.sort(np.concatenate(samples))[::64])[1:]  # ~chunk_events per window
        edges = np.r_[np.iinfo(np.int64).min, cuts, np.iinfo(np.int64).max]
        n_rows = _merge(spec, chunks, edges, out / f"events.{format}", progress)
    items = _items_frame(spec, world)
    items["tags"] = items["tags"].map("|".join)
    items.set_axis(["item_id", "tags", "title"], axis=1).to_csv(out / "items.csv", index=False)
    meta = {"format": "graphseq-synthetic", "version": 1, "events": n_rows, "spec": asdict(spec)}
    (out / "spec.json").write_text(json.dumps(meta, indent=2) + "\n")
    _log.info("wrote %d synthetic events for %d users to %s", n_rows, spec.num_users, out)
    return out


def _merge(
    spec: SyntheticSpec, chunks: list[Path], edges: np.ndarray, path: Path, progress: bool
) -> int:
    """Write the spilled chunks to ``path`` in event order, one time window at a time."""
    users = pa.array(_names("u", spec.num_users), pa.string())
    items = pa.array(_names("i", spec.num_items), pa.string())
    behaviors = pa.array(BEHAVIORS, pa.string())
    times = [np.memmap(c.with_suffix(".ts"), dtype=np.int64, mode="r") for c in chunks]
    parquet = path.suffix == ".parquet"
    n_rows, part = 0, path.with_name(path.name + ".part")
    schema = pa.schema([(c, t) for c, t in zip(EVENT_COLUMNS, [pa.string()] * 2 + [pa.int64()])])
    schema = schema.append(pa.field("behavior", pa.string())).append(
        pa.field("value", pa.float64())
    )
    with (
        open(part, "wb") as fh,
        tqdm(total=len(edges) - 1, desc="write", disable=not progress) as b,
    ):
        writer = pq.ParquetWriter(fh, schema) if parquet else None
        if not parquet:
            fh.write((",".join(EVENT_COLUMNS) + "\n").encode())
        opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
        for lo, hi in zip(edges[:-1], edges[1:]):
            parts = []
            for c, ts in zip(chunks, times):  # read, not map: only the window is resident
                i, j = np.searchsorted(ts, [lo, hi])
                rec = c.with_suffix(".rec")
                parts.append(np.fromfile(rec, _EVENT, count=j - i, offset=i * _EVENT.itemsize))
            ev = _concat(parts)
            cols = [users.take(ev["uid"]), items.take(ev["item"]), pa.array(ev["ts"])]
            cols += [behaviors.take(ev["beh"]), pa.array(np.ones(len(ev)))]
            table = pa.Table.from_arrays(cols, schema=schema)
            if writer is not None:
                if len(table):
                    writer.write_table(table, row_group_size=len(table))
            else:
                pacsv.write_csv(table, fh, opts)
            n_rows += len(ev)
            b.update(1)
        if writer is not None:
            writer.close()
    part.replace(path)
    return n_rows


def read_synthetic(path: str | Path, chunksize: int | None = None) -> CanonicalLog:
    """Read a directory written by ``write_synthetic`` (or a file inside it).

    ``chunksize`` is accepted for compatibility and ignored (the reader chunks by itself).
    """
    from data_builders.readers.csv_reader import read_csv_log
    from data_builders.schema import Schema

    root = Path(path)
    if not root.exists():
        raise DataError("synthetic data not found", file=root, hint="write it with write_synthetic")
    root = root.parent if root.is_file() else root
    events = next((root / f"events.{f}" for f in FORMATS if (root / f"events.{f}").is_file()), None)
    if events is None:
        raise DataError("no events.csv or events.parquet in synthetic data directory", file=root)
    spec = dict(SCHEMA, events=events.name)
    if (root / "items.csv").is_file():
        spec["items"] = {"file": "items.csv", "item": "item_id", "tags": "tags", "title": "title"}
    log = read_csv_log(root, Schema.from_dict(spec))
    log.source = f"synthetic: {root}"
    return log
