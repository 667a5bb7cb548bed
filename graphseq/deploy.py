"""Deployable parts of a run, beside the embeddings that :meth:`Run.export` writes.

- The item–item graph fusion (when validation turned it on): ``item_graph.parquet`` (item,
  neighbour, weight: each item's ``k`` largest-magnitude weights of the EASE or ItemKNN
  graph; ``k=0``: all), ``history.parquet`` (user, item, weight: the decayed history
  ``h_u``) and ``item_graph.json`` (weight, decay, the graph's kind and parameters, the
  formula). The fused score of item ``j`` is::

      score(u, j) = standardize(u · i_j) + w · standardize(Σ_i h_u(i) B(i, j))

  ``standardize`` is a z-score over the whole catalogue per user (standard deviation with
  n−1), ``B`` the neighbour table, ``h_u(i) = Σ exp(-age / decay)`` over the user's target
  events on item ``i`` among their last ``max_seq_len`` events, ``age`` = events between it
  and the user's most recent one. Seen items are then excluded, as everywhere.
- The own-history term (``graphseq``, or any model run with ``own_history=true``):
  ``own_history.json``, each behavior's weight ``w`` and decay ``τ``. It adds
  ``Σ_e w[beh_e] · exp(-age_e / τ[beh_e])`` over the user's earlier non-target events ``e``
  on item ``j`` to the fused score of ``j`` above (after standardizing); the dot product of
  the exported vectors alone does not contain it.
- The user encoder of sequence models (``sasrec``, ``gru4rec``, ``graphseq``) as a
  ``torch.export`` program, ``user_encoder.pt2``: ``(user, item, behavior, time, mask)`` →
  the user vector scored against ``items.parquet`` (see :class:`UserEncoder`).
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from data_builders.atomic import atomic_path, write_json
from data_builders.errors import DataError
from data_builders.store import load_items
from graphseq.graph.sequences import SeqBatch
from graphseq.models.base import Encoded
from graphseq.models.users import SequenceEncoder, SnapshotStates
from graphseq.nn.itemgraph import decayed_history, top_per_row
from graphseq.nn.sequence import CausalTransformer

log = logging.getLogger("graphseq")

FUSED_SCORE = "standardize(u . i) + weight * standardize(h_u B)"


def _write_parquet(path: Path, df: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path


def item_graph_neighbours(run, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(item, neighbour, weight)`` of each item's ``k`` largest-|weight| non-zero entries of
    the fused item–item weights ``B`` (``k=0``: all), or None when fusion is off. The sparse
    ItemKNN graph is read as it is; EASE's dense block is mapped back to item indices."""
    ig = run.model.item_graph
    if ig is None or float(ig.weight) == 0.0:
        return None
    g = ig.graph_of(run.ctx, run.enc.items.device)
    if g.weights.layout == torch.sparse_csr:  # at most the graph's own k per row already
        w = g.weights.cpu().to_sparse_coo().coalesce()
        rows, cols = w.indices().numpy()
        vals = w.values().numpy()
        keep = top_per_row(rows, np.abs(vals), run.ev.num_items, k)
        return rows[keep], cols[keep], vals[keep]
    b = g.weights.cpu()  # (M, M) over items g.index (all items when None)
    top = torch.topk(b.abs(), b.size(1) if k <= 0 else min(k, b.size(1)), dim=1).indices
    rows = torch.arange(b.size(0))[:, None].expand_as(top)
    w = b[rows, top]
    nz = w != 0
    rows, cols, vals = rows[nz].numpy(), top[nz].numpy(), w[nz].numpy()
    if g.index is not None:
        idx = g.index.cpu().numpy()
        rows, cols = idx[rows], idx[cols]
    return rows, cols, vals


def export_item_graph(run, out: Path, k: int = 100) -> list[Path]:
    """``item_graph.parquet``, ``history.parquet`` and ``item_graph.json`` (nothing when the
    run has no fusion or validation chose weight 0)."""
    found = item_graph_neighbours(run, k)
    if found is None:
        return []
    ig, ids = run.model.item_graph, run.id_maps["item"]
    i, j, w = found
    files = [
        _write_parquet(
            out / "item_graph.parquet",
            pd.DataFrame(
                {"item": ids[i].astype(str), "neighbour": ids[j].astype(str), "weight": w}
            ),
        )
    ]
    users, hist = run.histories()
    h = torch.cat([decayed_history(hb, run.ev.num_items, ig.decay.cpu()) for hb in hist])
    r, c = torch.nonzero(h, as_tuple=True)
    files.append(
        _write_parquet(
            out / "history.parquet",
            pd.DataFrame(
                {
                    "user": run.id_maps["user"][users[r].numpy()].astype(str),
                    "item": ids[c.numpy()].astype(str),
                    "weight": h[r, c].numpy(),
                }
            ),
        )  # fmt: skip
    )
    spec = {
        "score": FUSED_SCORE,
        "weight": float(ig.weight),
        "decay": float(ig.decay),
        "kind": ig.kind,
        **(
            {"k": ig.k, "shrink": ig.shrink}
            if ig.kind == "itemknn"
            else {"reg": float(ig.reg), "max_items": ig.max_items}
        ),
        "neighbours_per_item": k if k > 0 else "all",
        "max_seq_len": run.cfg.max_seq_len,
        "standardize": "per user over every item: (s - mean) / std, std with n-1 (min 1e-8)",
        "history": "h_u(i) = sum of exp(-age / decay) over the user's target events on i "
        "among their last max_seq_len events; age = events after it",
    }
    write_json(out / "item_graph.json", spec)
    return [*files, out / "item_graph.json"]


class _EncoderLayers(nn.Module):
    """``nn.TransformerEncoder.forward`` for a causal mask, without its causal-mask detection:
    that compares the mask's (B·heads, L, L) size with (L, L) element by element, a guard
    (B·heads ≠ L) that ``torch.export`` cannot keep dynamic. Same layers, same result."""

    def __init__(self, encoder: nn.TransformerEncoder) -> None:
        super().__init__()
        self.layers, self.norm = encoder.layers, encoder.norm

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=False)
        return x if self.norm is None else self.norm(x)


class UserEncoder(nn.Module):
    """A sequence model's user side as one self-contained module (for ``torch.export``):
    the item input table, the sequence encoder, the snapshot states (graphseq's snapshot
    scale, as of the run's whole graph) and the head's user transform.

    Inputs (B users, their last ``max_seq_len`` events, oldest first, left-aligned and
    padded on the right to exactly ``L = max_seq_len`` columns; right padding never changes
    a causal state): ``user`` (B,) int64 row in ``ids`` order (-1: anonymous, no snapshot states;
    ignored without a snapshot scale), ``item`` (B, L) int64 item rows (padding:
    ``num_items``), ``behavior`` (B, L) int64 (padding: ``len(behaviors)``), ``time`` (B, L)
    int64 seconds, ``mask`` (B, L) bool. Output: (B, d) user vectors, scored by a dot product
    with ``items.parquet``'s embeddings.
    """

    def __init__(self, run) -> None:
        super().__init__()
        users = run.model.users
        if not isinstance(users, SequenceEncoder) or (
            users.snapshots is not None and run.enc.snapshots is None
        ):
            raise ValueError(f"{run.model!r} has no exportable sequence user encoder")
        self.seq, self.head = copy.deepcopy(users), copy.deepcopy(run.model.scorer.head)
        if isinstance(self.seq.seq, CausalTransformer):
            self.seq.seq.encoder = _EncoderLayers(self.seq.seq.encoder)
        self.register_buffer("items", run.enc.items.detach().clone())
        snaps = run.enc.snapshots
        self.num_users = run.ev.num_users
        self.has_snapshots = snaps is not None
        if snaps is not None:  # one zero row more: the anonymous user (-1) has no states
            states = snaps.states.detach()
            self.register_buffer("bounds", snaps.bounds.detach().clone())
            self.register_buffer("states", torch.cat([states, torch.zeros_like(states[:1])]))

    def forward(
        self, user: Tensor, item: Tensor, behavior: Tensor, time: Tensor, mask: Tensor
    ) -> Tensor:
        hist = SeqBatch(item, behavior, time, mask, mask)  # is_target is not read here
        rows = None
        enc = Encoded(self.items)
        if self.has_snapshots:
            enc.snapshots = SnapshotStates(self.bounds, self.states)
            rows = torch.where(user < 0, torch.full_like(user, self.num_users), user)
        h = self.seq.states(None, enc, hist, rows)  # (B, L, d); ctx is not read in eval
        last = (mask.sum(1) - 1).clamp(min=0)  # what SequenceEncoder.forward gathers
        return self.head.transform(h[torch.arange(h.size(0), device=h.device), last])


def export_user_encoder(run, out: Path) -> list[Path]:
    """``user_encoder.pt2`` (``torch.export``) and ``user_encoder.json``; ``[]`` with a note on
    stderr for models without a sequence user encoder."""
    try:
        module = UserEncoder(run).eval()
    except ValueError as e:
        log.info("user_encoder.pt2 not written: %s (only sequence models have one)", e)
        return []
    n, nb, L = run.ev.num_items, len(run.ev.behaviors), run.cfg.max_seq_len
    mask = torch.zeros(3, L, dtype=torch.bool)
    mask[0, :1], mask[1, : min(2, L)], mask[2] = True, True, True
    example = (
        torch.tensor([0, -1, 0]),
        torch.where(mask, 0, n),
        torch.where(mask, 0, nb),
        torch.arange(L).expand(3, L) * mask,
        mask,
    )
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    shapes = ({0: batch}, {0: batch}, {0: batch}, {0: batch}, {0: batch})
    with torch.no_grad(), warnings.catch_warnings():
        # nn.GRU re-assigns its flat weights while traced (gru4rec): harmless here
        warnings.filterwarnings("ignore", message="The tensor attributes")
        program = torch.export.export(module.cpu(), example, dynamic_shapes=shapes)
    buf = io.BytesIO()
    torch.export.save(program, buf)
    with atomic_path(out / "user_encoder.pt2") as tmp:
        tmp.write_bytes(buf.getvalue())
    spec = {
        "inputs": ["user", "item", "behavior", "time", "mask"],
        "output": "user vector (B, d); score = vector @ items.parquet embedding",
        "user": "row in users.parquet's 'index' column (-1: anonymous)",
        "item": "row in items.parquet (its 'index' column); padding = num_items",
        "shape": "item, behavior, time, mask: (B, max_seq_len), left-aligned, right-padded",
        "behaviors": list(run.ev.behaviors),
        "num_items": n,
        "max_seq_len": run.cfg.max_seq_len,
        "snapshots": module.has_snapshots,
        "load": "torch.export.load('user_encoder.pt2').module()(user, item, behavior, time, mask)",
    }
    write_json(out / "user_encoder.json", spec)
    return [out / "user_encoder.pt2", out / "user_encoder.json"]


def export_own_history(run, out: Path) -> list[Path]:
    """``own_history.json`` (nothing when the model has no own-history term)."""
    hist = run.model.scorer.history
    if hist is None:
        return []
    w = hist.weights().detach().float().cpu().tolist()
    tau = hist.decays().detach().float().cpu().tolist()
    spec = {
        "formula": "score(u, j) += sum over u's earlier events e on j: "
        "weight[behavior_e] * exp(-age_e / decay[behavior_e]) (age in events, 0 = the most "
        "recent; target-behavior events left out: they are excluded from the ranking)",
        "skip_targets": bool(hist.skip_targets),
        "behaviors": {b: {"weight": w[i], "decay": tau[i]} for i, b in enumerate(run.ev.behaviors)},
    }
    write_json(out / "own_history.json", spec)
    return [out / "own_history.json"]


def export_run(run, out: Path, item_graph_k: int = 100) -> list[Path]:
    """Everything :meth:`graphseq.recommend.Run.export` writes (see there)."""
    if out.exists() and not out.is_dir():
        raise DataError(
            "export writes a directory, and this is a file", file=out, hint="give a directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    items = pd.DataFrame({"item": run.id_maps["item"].astype(str)})
    items["index"] = range(len(items))
    meta = load_items(run.cfg.graph)
    if meta is not None:
        items = items.merge(meta.drop(columns=["index"]), on="item", how="left", sort=False)
    items["embedding"] = list(run.enc.items.float().cpu().numpy())
    users, vecs = run.user_vectors()
    frames = {
        out / "items.parquet": items,
        out / "users.parquet": pd.DataFrame({
            "user": run.id_maps["user"][users.numpy()].astype(str),
            "index": users.numpy(),
            "embedding": list(vecs.numpy()),
        }),
    }  # fmt: skip
    weights = run.enc.view_weights
    if weights is not None:
        frames[out / "view_weights.parquet"] = pd.DataFrame(
            weights.float().cpu().numpy(), columns=run.model.views
        ).assign(item=items["item"])
    files = [_write_parquet(f, df) for f, df in frames.items()]
    return [
        *files,
        *export_item_graph(run, out, item_graph_k),
        *export_own_history(run, out),
        *export_user_encoder(run, out),
    ]


__all__ = [
    "FUSED_SCORE",
    "UserEncoder",
    "export_item_graph",
    "export_own_history",
    "export_user_encoder",
    "item_graph_neighbours",
]
