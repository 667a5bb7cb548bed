"""The DataFrame face of a finished run (mixed into :class:`graphseq.recommend.Run`).

Every method takes raw ids as a list, a numpy array, a pandas Series or one scalar, and
returns a pandas DataFrame whose ``user`` / ``item`` columns hold raw ids in the dtype they
had in the log (integers stay integers). Unknown ids follow one rule: ``unknown="skip"``
(the default) leaves them out and names them (a warning, and ``frame.attrs["unknown"]``);
``unknown="raise"`` refuses them with a :class:`~data_builders.errors.DataError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch

from data_builders.errors import DataError
from graphseq.rules import k_problem, show_ids

log = logging.getLogger("graphseq")
UNKNOWN = ("skip", "raise")
FALLBACKS = (None, "popular")
BATCH = 1024  # users scored per batch


def as_ids(ids: Any) -> list[Any]:
    """A list of raw ids from a list, tuple, numpy array, pandas Series or Index, or one id."""
    if isinstance(ids, (str, bytes, int, np.integer)) or not isinstance(ids, Iterable):
        return [ids]
    if isinstance(ids, (pd.Series, pd.Index, np.ndarray)):
        return ids.tolist()
    return list(ids)


def _check(k: int, unknown: str) -> None:
    if (problem := k_problem(k)) is not None:
        raise DataError(problem)
    if unknown not in UNKNOWN:
        raise DataError(f"unknown={unknown!r} is not a rule", hint="use 'skip' or 'raise'")


class RunFrames:
    """Recommendations, neighbours and embeddings as DataFrames (see the module docstring)."""

    def _known(self, kind: str, ids: list[Any], unknown: str) -> tuple[np.ndarray, list]:
        """Rows of the known ids (in input order, first occurrence of each) and the unknown
        ids, which ``unknown="raise"`` refuses and ``"skip"`` names in a warning."""
        rows = self.positions(kind, ids)
        missing = list(dict.fromkeys(i for i, r in zip(ids, rows) if r < 0))
        if missing and unknown == "raise":
            raise DataError(
                f"unknown {kind} ids: {show_ids(missing)}",
                hint="pass unknown='skip' to leave them out",
            )
        if missing:
            log.warning("skipped %d unknown %s ids: %s", len(missing), kind, show_ids(missing))
        return pd.unique(rows[rows >= 0]), missing

    def _frame(
        self, key: str, keys: np.ndarray, vals: torch.Tensor, top: torch.Tensor, **extra
    ) -> pd.DataFrame:
        """One row per (query, kept top item): ``key`` (the query's raw ids, one per row of
        ``vals``), ``item``, ``score``, ``rank``; -inf scores (excluded items) left out."""
        vals, top = vals.cpu(), top.cpu()
        keep = (vals > float("-inf")).numpy()
        k = top.size(1)
        rank = np.broadcast_to(np.arange(1, k + 1), keep.shape)[keep]
        return pd.DataFrame({
            key: np.repeat(np.asarray(keys), k).reshape(keep.shape)[keep],
            "item": self.raw_ids("item", top.numpy()[keep]),
            "score": vals.numpy()[keep].astype(np.float64),
            "rank": rank.astype(np.int64),
            **extra,
        })  # fmt: skip

    def recommend(
        self, users: Any, k: int = 10, *, unknown: str = "skip", fallback: str | None = None
    ) -> pd.DataFrame:
        """Top-``k`` items for each known user (their history excluded): columns ``user``,
        ``item``, ``score``, ``rank`` (1-based) and ``source`` (``model``). With
        ``fallback="popular"`` an unknown user gets the most popular items instead,
        ``source`` ``popular`` and ``score`` each item's share of the target events (not on
        the model's scale)."""
        _check(k, unknown)
        if fallback not in FALLBACKS:
            raise DataError(f"fallback={fallback!r} is not a choice", hint="None or 'popular'")
        ids = as_ids(users)
        rows, missing = self._known("user", ids, "skip" if fallback else unknown)
        parts = []
        for b in torch.as_tensor(rows, dtype=torch.long).split(BATCH) if len(rows) else ():
            vals, top = self.top(self.user_scores(b), k)
            parts.append(self._frame("user", self.raw_ids("user", b), vals, top, source="model"))
        if missing and fallback == "popular":
            vals, top = self.top(self.popularity()[None].expand(len(missing), -1), k)
            parts.append(self._frame("user", np.asarray(missing), vals, top, source="popular"))
        out = pd.concat(parts, ignore_index=True) if parts else self._empty("user", source=[])
        out.attrs["unknown"] = [] if fallback else missing
        return out

    def recommend_history(self, items: Any, k: int = 10, *, unknown: str = "skip") -> pd.DataFrame:
        """Top-``k`` for an anonymous user whose history is ``items`` (oldest first; the
        history's items excluded): columns ``user`` (None: nobody), ``item``, ``score``,
        ``rank``. No known item: an empty frame."""
        _check(k, unknown)
        ids = as_ids(items)
        rows = self.positions("item", ids)
        missing = list(dict.fromkeys(i for i, r in zip(ids, rows) if r < 0))
        self._known("item", missing, unknown)  # refuse or name them
        rows = rows[rows >= 0]
        if not len(rows):
            out = self._empty("user")
        else:
            vals, top = self.top(self.history_scores(rows), k)
            out = self._frame("user", np.asarray([None], dtype=object), vals, top)
        out.attrs["unknown"] = missing
        return out

    def similar_items(self, items: Any, k: int = 10, *, unknown: str = "skip") -> pd.DataFrame:
        """The ``k`` nearest items of each known item by cosine similarity of the item
        representations: columns ``query``, ``item``, ``score``, ``rank``."""
        _check(k, unknown)
        rows, missing = self._known("item", as_ids(items), unknown)
        if not len(rows):
            out = self._empty("query")
        else:
            vals, top = self.top(self.similar_scores(rows), k)
            out = self._frame("query", self.raw_ids("item", rows), vals, top)
        out.attrs["unknown"] = missing
        return out

    def _empty(self, key: str, **extra: list) -> pd.DataFrame:
        """No rows, the columns (and score/rank dtypes) of a frame with rows."""
        return pd.DataFrame({key: [], "item": [], "score": [], "rank": [], **extra}).astype(
            {"score": np.float64, "rank": np.int64}
        )

    def item_embeddings(self, columns: bool = False) -> pd.DataFrame:
        """Every item's representation, the one the model scores with: ``item`` and one
        ``vector`` column (numpy arrays), or with ``columns`` the ``dim`` columns ``e0`` ...;
        the item table's ``title`` and ``tags`` when the graph has them."""
        emb = self.enc.items.detach().float().cpu().numpy()
        out = self._vectors("item", self.raw_ids("item", np.arange(len(emb))), emb, columns)
        items = self._item_table()
        if items is not None:
            out = out.merge(items, on="item", how="left")
        return out

    def user_embeddings(self, columns: bool = False) -> pd.DataFrame:
        """Every user with events: ``user`` and the state ``recommend`` scores them with
        (sequence models: after the user's whole history), as ``vector`` or ``e0`` ...."""
        rows, vecs = self.user_vectors()
        return self._vectors("user", self.raw_ids("user", rows), vecs.numpy(), columns)

    def view_weights(self) -> pd.DataFrame:
        """Per item, the attention weight of each graph view in the fused item representation
        (columns ``item`` and one per view, each row summing to 1); no rows for a model
        without views."""
        weights = self.enc.view_weights
        if weights is None:
            return pd.DataFrame({"item": []})
        out = pd.DataFrame(weights.float().cpu().numpy(), columns=list(self.model.views))
        out.insert(0, "item", self.raw_ids("item", np.arange(len(out))))
        return out

    @staticmethod
    def _vectors(key: str, ids: np.ndarray, emb: np.ndarray, columns: bool) -> pd.DataFrame:
        if columns:
            return pd.concat(
                [pd.DataFrame({key: ids}), pd.DataFrame(emb, columns=[f"e{j}" for j in
                                                                     range(emb.shape[1])])],
                axis=1,
            )  # fmt: skip
        return pd.DataFrame({key: ids, "vector": list(emb)})

    def _item_table(self) -> pd.DataFrame | None:
        from data_builders.store import load_items

        items = load_items(self.cfg.graph)
        if items is None:
            return None
        items = items[["item", *(c for c in ("title", "tags") if c in items.columns)]].copy()
        if self.data.id_dtypes.get("item") == "int64":
            items["item"] = items["item"].astype(np.int64)
        return items

    @property
    def metrics(self) -> dict:
        """The run's ``metrics.json`` (what training measured; ``{}`` for an unfinished run)."""
        f = self.path / "metrics.json"
        return json.loads(f.read_text()) if f.exists() else {}
