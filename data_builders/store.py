"""Save and load a graph directory.

Layout::

    DIR/graph.pt        tensors only (loads with ``weights_only=True``)
    DIR/ids/<type>.parquet   raw id (str) ↔ index (int64) for every node type
    DIR/items.parquet   item metadata: index, raw id, title, tags (when the log had them)
    DIR/meta.json       format version, behaviors, targets, fingerprint, time
    DIR/report.json     counts per node and edge type, dropped rows, time range

``meta.json["time"]`` is ``"timestamp"``, or ``"input_order"`` for a log without times (edge
``time`` is then the event's position in the input); ``load_graph`` sets ``graph.time_kind``.
Behavior edges of a log with stages carry ``stage`` (int8: 0 train, 1 valid, 2 test), and
``meta.json["stages"]`` is true.

:func:`read_graph` loads the tensors into a :class:`StoredGraph` without importing PyG (the
import costs ~1.5 s, most of a one-user ``graphseq recommend``); :func:`load_graph` returns
the same graph as a PyG ``HeteroData``. Both offer ``graph[node_type].num_nodes``,
``graph[edge_type].<attr>``, ``node_types``, ``edge_types`` and the graph-level attributes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

from data_builders.aliases import edge_key, parse_edge_key
from data_builders.atomic import atomic_dir, write_json
from data_builders.errors import DataError

FORMAT_VERSION = 1
EDGE_ATTRS = ("edge_index", "time", "value", "order", "stage")


def fingerprint(id_maps: dict[str, pd.Index]) -> str:
    """A short hash of the id maps: checkpoints refuse graphs with other ids."""
    h = hashlib.sha256()
    for nt in sorted(id_maps):
        h.update(nt.encode())
        h.update("\x00".join(map(str, id_maps[nt])).encode())
    return h.hexdigest()[:16]


def save_graph(
    out: str | Path,
    data: HeteroData,
    id_maps: dict[str, pd.Index],
    report: dict,
    items: pd.DataFrame | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a graph directory atomically (nothing is left behind on error)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "edges": {
            edge_key(et): {k: data[et][k] for k in EDGE_ATTRS if k in data[et]}
            for et in data.edge_types
        },
    }
    fp = fingerprint(id_maps)
    meta = {
        "format_version": FORMAT_VERSION,
        "behaviors": list(data.behaviors),
        "targets": list(data.targets),
        "fingerprint": fp,
        "time": getattr(data, "time_kind", None) or report.get("time", "timestamp"),
        "stages": any("stage" in data[et] for et in data.edge_types),
    }
    if Path(out).exists() and not overwrite:
        raise DataError(
            "output directory already exists",
            file=out,
            hint="choose another directory, or overwrite it (--overwrite; overwrite=True in Python)",
        )
    with atomic_dir(out, overwrite=overwrite) as tmp:
        torch.save(payload, tmp / "graph.pt")
        (tmp / "ids").mkdir()
        for nt, idx in id_maps.items():
            ids = pd.DataFrame({"raw": pd.Series(idx, dtype="string"), "index": range(len(idx))})
            ids.to_parquet(tmp / "ids" / f"{nt}.parquet", index=False)
        if items is not None:
            meta_items = items.copy()
            meta_items["item"] = meta_items["item"].astype(str)
            meta_items.insert(0, "index", id_maps["item"].get_indexer(meta_items["item"]))
            meta_items = meta_items[meta_items["index"] >= 0].sort_values("index")
            meta_items.to_parquet(tmp / "items.parquet", index=False)
        write_json(tmp / "meta.json", meta)
        write_json(tmp / "report.json", report)
    return Path(out)


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataError(
            "missing file in graph directory", file=path, hint="rebuild it with `graphseq build`"
        )
    return path


class Store(SimpleNamespace):
    """One node or edge type's attributes (``"stage" in store`` as on a PyG store)."""

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__


@dataclass
class StoredGraph:
    """A graph directory's tensors, as :func:`read_graph` loads them (no PyG)."""

    nodes: dict[str, int]
    edges: dict[tuple[str, str, str], dict[str, torch.Tensor]]
    behaviors: list[str]
    targets: list[str]
    fingerprint: str
    time_kind: str = "timestamp"
    path: str = ""
    _stores: dict[Any, Store] = field(default_factory=dict, repr=False, compare=False)  # cache

    @property
    def node_types(self) -> list[str]:
        return list(self.nodes)

    @property
    def edge_types(self) -> list[tuple[str, str, str]]:
        return list(self.edges)

    def __getitem__(self, key: Any) -> Store:
        key = key if isinstance(key, str) else tuple(key)
        if key not in self._stores:
            if isinstance(key, str) and key in self.nodes:
                self._stores[key] = Store(num_nodes=self.nodes[key])
            elif key in self.edges:
                self._stores[key] = Store(**self.edges[key])
            else:
                raise KeyError(key)
        return self._stores[key]

    def to_hetero(self) -> HeteroData:
        """The same graph as a PyG ``HeteroData`` (imports PyG)."""
        from torch_geometric.data import HeteroData

        data = HeteroData()
        for nt, n in self.nodes.items():
            data[nt].num_nodes = n
        for et, attrs in self.edges.items():
            for k, v in attrs.items():
                data[et][k] = v
        data.behaviors = self.behaviors
        data.targets = self.targets
        data.fingerprint = self.fingerprint
        data.time_kind = self.time_kind
        data.path = self.path
        return data


def read_graph(path: str | Path) -> StoredGraph:
    """Load a graph directory written by :func:`save_graph` (``weights_only=True``), no PyG."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            "graph directory not found", file=path, hint="build it with `graphseq build`"
        )
    try:
        meta = json.loads(_need(path / "meta.json").read_text())
        payload = torch.load(_need(path / "graph.pt"), weights_only=True, map_location="cpu")
    except DataError:
        raise
    except Exception as e:  # corrupted or truncated files
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__  # EOFError
        raise DataError(
            f"cannot read graph directory: {why}", file=path, hint="rebuild it"
        ) from None
    if payload.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"graph format {payload.get('format_version')} is not {FORMAT_VERSION}",
            file=path / "graph.pt",
            hint="rebuild it with this graphseq version",
        )
    return StoredGraph(
        nodes=dict(payload["nodes"]),
        edges={parse_edge_key(k): dict(v) for k, v in payload["edges"].items()},
        behaviors=meta["behaviors"],
        targets=meta["targets"],
        fingerprint=meta["fingerprint"],
        time_kind=meta.get("time", "timestamp"),
        path=str(path.resolve()),
    )


def load_graph(path: str | Path) -> HeteroData:
    """Load a graph directory written by :func:`save_graph` as a PyG ``HeteroData``.

    Graph-level attributes: ``behaviors``, ``targets``, ``fingerprint``, ``path``,
    ``time_kind`` (``"timestamp"`` | ``"input_order"``).
    """
    return read_graph(path).to_hetero()


def load_id_maps(path: str | Path) -> dict[str, pd.Index]:
    """``{node_type: Index of raw ids (str)}``, position = node index."""
    ids = Path(path) / "ids"
    if not ids.is_dir():
        _need(ids)
    out = {}
    for f in sorted(ids.glob("*.parquet")):
        df = pd.read_parquet(f)
        out[f.stem] = pd.Index(df.sort_values("index")["raw"].astype(str).to_numpy(), dtype=object)
    return out


def load_items(path: str | Path) -> pd.DataFrame | None:
    """Item metadata (index, item, title, tags) or ``None`` when the log had none."""
    f = Path(path) / "items.parquet"
    return pd.read_parquet(f) if f.exists() else None
