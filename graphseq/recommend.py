"""Use a trained run: recommend for known users, anonymous histories, similar items, export.

Recommendations see every event the graph holds (the model is deployed after its test):
the user's whole known history is the sequence, and its target items are excluded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from data_builders.atomic import atomic_path
from data_builders.errors import DataError
from graphseq.evaluate import seen_pairs
from graphseq.frames import RunFrames
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable, csr_rows, target_counts, user_csr
from graphseq.graph.sequences import pad_from_csr
from graphseq.models.base import Encoded
from graphseq.rules import k_problem, show_ids, table_suffix
from graphseq.training.run import LoadedModel, load_model


def _check_k(k: int) -> None:
    if (problem := k_problem(k)) is not None:
        raise DataError(problem)


def _text(raw: Any) -> str:
    """A raw id as the id maps hold it (text); one that cannot be text (a lone surrogate)
    becomes a string no map holds, so it is simply unknown."""
    s = str(raw)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8") + "\x00"
    return s


@dataclass
class Run(RunFrames, LoadedModel):
    """A finished run, loaded once: model, graph, id maps and the full-graph encoding
    (``ctx``: every event of the graph; ``enc``: the model's encoding of it).

    For scripts and notebooks: :meth:`recommend`, :meth:`recommend_history`,
    :meth:`similar_items`, :meth:`item_embeddings`, :meth:`user_embeddings` (DataFrames,
    :mod:`graphseq.frames`), :attr:`metrics`, :meth:`evaluate` and :meth:`export`. The
    ``*_dict`` / ``*_list`` forms give the same recommendations as JSON-shaped data (the
    CLI's ``--json`` and the HTTP server)."""

    ctx: GraphContext | None = None
    enc: Encoded | None = None
    _csr: tuple[Tensor, Tensor] | None = None

    @property
    def ev(self) -> EventTable:
        return self.data.events

    @property
    def side(self) -> ItemSide:
        return self.data.side

    @property
    def id_maps(self) -> dict[str, pd.Index]:
        return self.data.ids

    # ---- helpers ---------------------------------------------------------------------------
    @property
    def has_item_vectors(self) -> bool:
        """Whether items have embeddings to compare (``pop``'s one column is a count)."""
        return self.model.items.has_item_vectors

    def positions(self, kind: str, ids: Iterable[Any]) -> np.ndarray:
        """Each raw ``kind`` id's row (``user`` or ``item``), -1 for an unknown one. Ids are
        matched as text (``5`` and ``"5"`` are one id); one that is not valid text (a lone
        surrogate) is unknown."""
        return self.id_maps[kind].get_indexer([_text(i) for i in ids])

    def split_known(self, kind: str, ids: list[Any]) -> tuple[list[str], list[str]]:
        """``(known, unknown)`` raw ``kind`` ids as text; unknown deduplicated."""
        found = self.positions(kind, ids) >= 0
        known = [_text(i) for i, f in zip(ids, found) if f]
        return known, list(dict.fromkeys(_text(i) for i, f in zip(ids, found) if not f))

    def raw_ids(self, kind: str, rows: np.ndarray | Tensor) -> np.ndarray:
        """The raw ``kind`` ids of node ``rows``, in the dtype they had in the log (integers
        when the log was a DataFrame with integer ids, else strings)."""
        rows = rows.cpu().numpy() if isinstance(rows, Tensor) else np.asarray(rows)
        ids = np.asarray(self.id_maps[kind][rows], dtype=object)
        if self.data.id_dtypes.get(kind) == "int64":
            return ids.astype(np.int64)
        return ids.astype(str)

    def _item_ids(self, idx: Tensor) -> list[str]:
        return [str(x) for x in self.id_maps["item"][idx.cpu().numpy()]]

    @staticmethod
    def top(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """``(values, items)`` (B, k) of each row's ``k`` best scores (-inf: excluded)."""
        return torch.topk(scores, min(k, scores.size(1)), dim=1)

    def _topk(self, scores: Tensor, k: int) -> list[list[dict]]:
        vals, idx = self.top(scores, k)
        return [
            [
                {"item": i, "score": float(v)}
                for i, v in zip(self._item_ids(ri), rv)
                if v > float("-inf")
            ]
            for ri, rv in zip(idx, vals)
        ]

    @torch.no_grad()
    def user_scores(self, rows: Tensor) -> Tensor:
        """(B, I) scores of users ``rows`` (node indices) over every item, seen items -inf."""
        ptr, idx = self._user_csr()
        return self._score_rows(ptr, idx, rows)

    @torch.no_grad()
    def _score_rows(self, ptr: Tensor, idx: Tensor, users: Tensor) -> Tensor:
        """(B, I) scores of ``users`` (rows of the per-user CSR), their seen items masked."""
        hist = pad_from_csr(self.ev, ptr, idx, users, self.cfg.max_seq_len)
        dev = self.enc.items.device
        scores = self.model.rank_scores(self.ctx, self.enc, users.to(dev), hist.to(dev)).float()
        if self.cfg.exclude_seen:
            r, it = seen_pairs(self.ev, *csr_rows(ptr, idx, users))
            scores[r.to(dev), it.to(dev)] = float("-inf")
        return scores

    @torch.no_grad()
    def history_scores(self, rows: np.ndarray) -> Tensor:
        """(1, I) scores of an anonymous user whose history is items ``rows`` (oldest
        first); the history's own items -inf."""
        n = len(rows)
        ev = self.ev
        tmp = EventTable(
            torch.zeros(n, dtype=torch.long), torch.as_tensor(rows, dtype=torch.long),
            torch.arange(n), torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.bool),
            ev.behaviors, 1, ev.num_items,
        )  # fmt: skip
        hist = pad_from_csr(
            tmp, torch.tensor([0, n]), torch.arange(n), torch.tensor([0]), self.cfg.max_seq_len
        )
        dev = self.enc.items.device
        # users=None: the model folds the history in (or reads it)
        scores = self.model.rank_scores(self.ctx, self.enc, None, hist.to(dev)).float()
        scores[0, torch.as_tensor(rows, dtype=torch.long, device=dev)] = float("-inf")
        return scores

    @torch.no_grad()
    def similar_scores(self, rows: np.ndarray) -> Tensor:
        """(Q, I) cosine similarity of items ``rows`` to every item (itself -inf)."""
        if not self.has_item_vectors:
            raise DataError(
                f"{self.model!r} has no item vectors to compare, so no similar items",
                hint="use a run of an embedding model (mf, lightgcn, sasrec, graphseq)",
            )
        emb = torch.nn.functional.normalize(self.enc.items.float(), dim=1)
        q = torch.as_tensor(rows, dtype=torch.long, device=emb.device)
        scores = emb[q] @ emb.T
        scores[torch.arange(len(q)), q] = float("-inf")
        return scores

    def popularity(self) -> Tensor:
        """(I,) each item's share of the graph's target events (the fallback's score)."""
        counts = target_counts(self.ev).float()
        return counts / counts.sum().clamp(min=1.0)

    # ---- JSON-shaped forms (the CLI's --json and the HTTP server) --------------------------
    def recommend_dict(
        self, users: list[str], k: int = 10, fallback_popular: bool = False
    ) -> dict[str, list[dict]]:
        """``{user: [{"item", "score"}, ...]}``: top-``k`` raw item ids for raw user ids,
        history excluded; an unknown user is an error, or with ``fallback_popular`` gets
        the popular items (score: their share of target events)."""
        _check_k(k)
        known = self.positions("user", users)
        unknown = [u for u, p in zip(users, known) if p < 0]
        if unknown and not fallback_popular:
            raise DataError(
                f"unknown user ids: {show_ids(unknown)}",
                hint="give known users, or ask for the popular fallback",
            )
        rows = torch.tensor([u for u in known if u >= 0], dtype=torch.long)
        recs = iter(self._topk(self.user_scores(rows), k) if len(rows) else [])
        pop = self._topk(self.popularity()[None], k)[0] if unknown else []
        return {_text(raw): next(recs) if p >= 0 else pop for raw, p in zip(users, known)}

    def recommend_history_list(self, items: list[str], k: int = 10) -> list[dict]:
        """``[{"item", "score"}, ...]``: top-``k`` for an anonymous user whose history is
        ``items`` (oldest first). Every item must be known (:meth:`split_known` drops the
        unknown ones)."""
        _check_k(k)
        rows = self.positions("item", items)
        if (rows < 0).any() or not len(rows):
            unknown = self.split_known("item", items)[1]
            raise DataError(f"unknown item ids: {show_ids(unknown)}" if unknown else "no items")
        return self._topk(self.history_scores(rows), k)[0]

    def similar_items_dict(self, items: list[str], k: int = 10) -> dict[str, list[dict]]:
        """``{item: [{"item", "score"}, ...]}``: nearest items by cosine similarity."""
        _check_k(k)
        rows = self.positions("item", items)
        if (rows < 0).any():
            raise DataError(f"unknown item ids: {show_ids(self.split_known('item', items)[1])}")
        return dict(zip(map(_text, items), self._topk(self.similar_scores(rows), k)))

    def recommend_all(self, out: str | Path, k: int = 10, batch_size: int = 1024) -> int:
        """Top-``k`` for every user with events, in batches, to ``out`` (atomic): Parquet for
        ``.parquet``, CSV for ``.csv``. Items the user has seen are left out, as in
        :meth:`recommend`."""
        _check_k(k)
        suffix = table_suffix(out)
        if suffix is None:
            raise DataError(
                "recommendations file must end in .parquet or .csv",
                file=out,
                hint="name a .parquet or .csv file",
            )
        k = min(k, self.ev.num_items)
        ptr, idx = self._user_csr()
        users = torch.nonzero(ptr[1:] > ptr[:-1]).flatten()
        frames = []
        for s in range(0, len(users), batch_size):
            b = users[s : s + batch_size]
            vals, top = torch.topk(self._score_rows(ptr, idx, b), k, dim=1)
            frames.append(
                pd.DataFrame(
                    {
                        "user": self.id_maps["user"][
                            b.repeat_interleave(top.size(1)).numpy()
                        ].astype(str),
                        "rank": torch.arange(1, top.size(1) + 1).repeat(len(b)).numpy(),
                        "item": self._item_ids(top.flatten()),
                        "score": vals.flatten().cpu().numpy(),
                    }
                )
            )
        recs = pd.concat(frames, ignore_index=True)
        recs = recs[recs["score"] > float("-inf")]  # seen items fill rows when k is large
        with atomic_path(out) as tmp:
            if suffix == ".csv":
                recs.to_csv(tmp, index=False)
            else:
                recs.to_parquet(tmp, index=False)
        return len(users)

    def histories(self, batch_size: int = 1024) -> tuple[Tensor, list]:
        """``(users (n,), [SeqBatch ...])``: every user with events and their last
        ``max_seq_len`` events, in batches of ``batch_size`` users (in ``users`` order)."""
        ptr, idx = self._user_csr()
        users = torch.nonzero(ptr[1:] > ptr[:-1]).flatten()
        L = self.cfg.max_seq_len
        chunks = users.split(batch_size)
        return users, [pad_from_csr(self.ev, ptr, idx, b, L) for b in chunks]

    @torch.no_grad()
    def user_vectors(self, batch_size: int = 1024) -> tuple[Tensor, Tensor]:
        """``(users (n,), vectors (n, d))`` for every user with events: the user state the
        model scores with (sequence models: the state after the user's whole history)."""
        users, hists = self.histories(batch_size)
        dev = self.enc.items.device
        out = []
        for b, hist in zip(users.split(batch_size), hists):
            u = self.model.user_repr(self.ctx, self.enc, b.to(dev), hist.to(dev))
            out.append(self.model.scorer.transform(u).float().cpu())
        return users, torch.cat(out) if out else torch.zeros(0, self.enc.items.size(1))

    def export(self, out: str | Path, item_graph_k: int = 100) -> list[Path]:
        """``items.parquet`` (raw id, row ``index``, metadata, vector), ``users.parquet`` (raw
        id, row ``index``, the user vector that ``recommend`` scores with), for models with
        views ``view_weights.parquet``; the item–item graph fusion's parts when it is on
        (``item_graph_k`` neighbours per item, 0 = all) and ``user_encoder.pt2`` for
        sequence models (:func:`graphseq.deploy.export_run`)."""
        from graphseq.deploy import export_run

        return export_run(self, Path(out), item_graph_k)

    def _user_csr(self) -> tuple[Tensor, Tensor]:
        """Every user's events (the whole graph: the model is deployed after its test)."""
        if self._csr is None:
            self._csr = user_csr(self.ev.user, self.ev.num_users)
        return self._csr


def load_run(
    path: str | Path,
    device: str | None = None,
    allow_incomplete: bool = False,
    graph: str | Path | None = None,
) -> Run:
    """Load a finished run directory (its ``checkpoint.pt`` with ``weights_only=True``).

    A run without ``metrics.json`` (still training, or interrupted) is refused unless
    ``allow_incomplete``, which loads its best checkpoint so far. ``graph`` overrides the
    graph directory of the run's config; without it, a run moved together with its graph
    finds it (:func:`graphseq.training.run.resolve_graph`). The checkpoint's graph fingerprint
    must match either way.
    """
    loaded = load_model(path, device, allow_incomplete, graph)
    ctx = GraphContext(loaded.data.events, torch.ones(len(loaded.data.events), dtype=torch.bool),
                       loaded.data.side)  # fmt: skip
    with torch.no_grad():
        enc = loaded.model.encode(ctx).detach()
    return Run(loaded.path, loaded.cfg, loaded.model, loaded.data, ctx, enc)
