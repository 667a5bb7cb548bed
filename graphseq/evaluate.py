"""Score a held-out split: leakage check, then batched full ranking (see ``metrics``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from graphseq.config import TrainConfig
from graphseq.graph.context import GraphContext, ItemSide
from graphseq.graph.events import EventTable
from graphseq.graph.sequences import pad_from_csr
from graphseq.graph.splits import Split, check_leakage, scoring_input
from graphseq.metrics import KS, Evaluator
from graphseq.models.base import Recommender
from graphseq.segments import segment_codes, segment_k, segment_summary


@dataclass
class EvalCache:
    """What calls on the same split share while the model's weights stay fixed and only its
    scorer's buffers change (a validation grid over the fusion and pointer settings): the
    scoring context (so the parts' event-derived structures and the item–item graph are
    built once), the encoded items and every batch's user states."""

    ctx: GraphContext | None = None
    encoded: Any = None
    user_states: dict[tuple[int, int], Tensor] = field(default_factory=dict)


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_user: dict[str, Tensor]  # user, target (indices), rank, segment, per-user metrics
    num_users: int  # evaluated targets
    repeat_targets_dropped: int  # targets already in the user's seen items (exclude_seen)
    cold: dict[str, float] = field(default_factory=dict)  # see cold_item_metrics
    view_weights: dict[str, float] = field(default_factory=dict)  # mean fusion weight per view
    later_share: float = 0.0  # mean share of the scoring graph's events later than the target
    segments: dict[str, dict] = field(default_factory=dict)  # see graphseq.segments


PER_USER_KEYS = ("user", "target", "rank", "num_candidates", "segment")


def cold_items(ev: EventTable, graph_mask: Tensor) -> Tensor:
    """Items with no event (of any behavior) in the scoring graph ``graph_mask``.
    Shapes: graph_mask (E,) bool → (I,) bool."""
    return torch.bincount(ev.item[graph_mask], minlength=ev.num_items) == 0


def cold_item_metrics(per_user: dict[str, Tensor], cold: Tensor) -> dict[str, float]:
    """Mean per-user metrics over the targets whose item is ``cold`` (first interaction
    after the cut-off), plus ``targets``: how many there are (no metrics when 0).
    Shapes: per_user values (N,), cold (I,) bool."""
    rows = cold[per_user["target"]]
    out = {"targets": int(rows.sum())}
    if out["targets"]:
        out.update(
            {
                k: float(v[rows].double().mean())
                for k, v in per_user.items()
                if k not in PER_USER_KEYS
            }
        )
    return out


def seen_pairs(ev: EventTable, hist_ptr: Tensor, hist_idx: Tensor) -> tuple[Tensor, Tensor]:
    """(row, item) of every target-behavior event in each row's history ("seen" items)."""
    counts = hist_ptr[1:] - hist_ptr[:-1]
    rows = torch.repeat_interleave(torch.arange(len(counts)), counts)
    keep = ev.is_target[hist_idx]
    return rows[keep], ev.item[hist_idx][keep]


@torch.no_grad()
def evaluate(
    model: Recommender,
    ev: EventTable,
    split: Split,
    name: str,
    side: ItemSide,
    *,
    batch_size: int = 512,
    max_len: int = 200,
    exclude_seen: bool = True,
    ks: tuple[int, ...] = KS,
    cache: EvalCache | None = None,
    max_users: int = 0,
    sample_seed: int = 0,
) -> EvalResult:
    """Full-ranking metrics of ``model`` on split ``name`` ("valid" or "test").

    ``max_users`` > 0 scores a uniform sample of that many of the split's users (drawn from
    ``sample_seed``, the same users at every call; every item is still ranked): for
    validation on logs whose full-catalogue scoring of every user is slow.

    ``cache``: an :class:`EvalCache` shared between calls on the same split while the model's
    weights stay fixed and only its scorer's buffers change; ``None`` builds everything
    afresh.

    The scoring graph and histories come from :func:`scoring_input` and pass
    :func:`check_leakage` first (it raises on any leak). With ``exclude_seen`` the user's
    earlier target items are removed from the ranking, and targets that are repeats of a
    seen item are dropped (and counted), never scored in the model's favour. ``cold`` holds
    the same metrics restricted to targets whose item has no event in the scoring graph
    (:func:`cold_item_metrics`), and ``cold_only/*``: those targets ranked among the cold
    items alone (a "new arrivals" shelf; ``cold_only/candidates`` = how many cold items).
    ``segments``: the metrics of the repeat and explore users (:mod:`graphseq.segments`,
    read from the scoring input alone), whose codes are ``per_user["segment"]``.
    """
    inp = scoring_input(ev, split, name)
    check_leakage(ev, split, inp)
    cache = cache if cache is not None else EvalCache()
    if cache.ctx is None:
        cache.ctx = GraphContext(ev, inp.graph_mask, side)
    ctx = cache.ctx
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    if cache.encoded is None:
        cache.encoded = model.encode(ctx)
    enc, reprs = cache.encoded, cache.user_states
    target_item = ev.item[inp.target_idx]
    users = ev.user[inp.target_idx]
    rows, items = seen_pairs(ev, inp.hist_ptr, inp.hist_idx)
    keep = torch.ones(len(users), dtype=torch.bool)
    if exclude_seen:
        keep[rows[items == target_item[rows]]] = False
    kept = torch.nonzero(keep).flatten()
    if 0 < max_users < len(kept):
        g = torch.Generator().manual_seed(sample_seed)
        kept = kept[torch.randperm(len(kept), generator=g)[:max_users]].sort().values
    evaluator = Evaluator(ev.num_items, ks)
    cold = cold_items(ev, inp.graph_mask)
    cold_eval, cold_dev = Evaluator(ev.num_items, ks), cold.to(device)
    for s in range(0, len(kept), batch_size):
        b = kept[s : s + batch_size]
        hist = pad_from_csr(ev, inp.hist_ptr, inp.hist_idx, b, max_len).to(device)
        key = (s, len(kept))  # the scorer's buffers alone change between cached calls
        u = reprs.get(key)
        if u is None:
            u = reprs[key] = model.user_repr(ctx, enc, users[b].to(device), hist)
        scores = model.scorer(ctx, u, enc.items, hist).float()  # (B, I): rank_scores
        exclude = None
        if exclude_seen:  # seen pairs are sorted by row: slice this batch's, then localise
            lo, hi = torch.searchsorted(rows, torch.stack([b[0], b[-1] + 1])).tolist()
            r, it = rows[lo:hi], items[lo:hi]
            pos = torch.searchsorted(b, r)
            m = b[pos.clamp(max=len(b) - 1)] == r  # drops rows of skipped (repeat) targets
            exclude = torch.stack([pos[m], it[m]]).to(device)
        evaluator.add(scores, target_item[b].to(device), exclude, users[b].to(device))
        c = cold[target_item[b]]  # (B,) rows whose target is cold: rank among cold items only
        if bool(c.any()):
            _add_cold_only(cold_eval, scores, c.to(device), cold_dev, target_item[b], exclude)
    model.train(was_training)
    per_user = evaluator.per_user()
    per_user["segment"] = segment_codes(ev, inp, exclude_seen)[kept]
    segments = segment_summary(per_user, segment_k(evaluator.ks))
    cold_m = cold_item_metrics(per_user, cold)
    if cold_m["targets"]:
        only = cold_eval.result()
        cold_m["cold_only/candidates"] = int(cold.sum())
        # AUC and Coverage count the whole catalogue as candidates: meaningless here
        cold_m.update(
            {f"cold_only/{k}": v for k, v in only.items() if k != "AUC" and "Coverage" not in k}
        )
    return EvalResult(
        evaluator.result(), per_user, len(kept), int((~keep).sum()), cold_m,
        mean_view_weights(model, enc, ~cold), later_share(ev, inp.graph_mask, inp.target_idx),
        segments,
    )  # fmt: skip


def later_share(ev: EventTable, graph_mask: Tensor, target_idx: Tensor) -> float:
    """Mean over targets of the share of scoring-graph events later in time than the target
    (other users' futures: allowed by leave-last-out, 0 under global_time)."""
    times = ev.time[graph_mask].sort().values
    if times.numel() == 0 or target_idx.numel() == 0:
        return 0.0
    after = times.numel() - torch.searchsorted(times, ev.time[target_idx], right=True)
    return float(after.double().mean() / times.numel())


def mean_view_weights(model: Recommender, enc, items: Tensor) -> dict[str, float]:
    """Each view's fusion weight averaged over ``items`` (I,) bool (those with events)."""
    w = enc.view_weights
    if w is None or not bool(items.any()):
        return {}
    m = w[items.to(w.device)].float().mean(0)
    return {name: round(float(v), 4) for name, v in zip(model.views, m)}


def _add_cold_only(
    ev_: Evaluator,
    scores: Tensor,
    rows: Tensor,
    cold: Tensor,
    target: Tensor,
    exclude: Tensor | None,
) -> None:
    """Rank the cold-target ``rows`` of a batch among the cold items alone (every warm item
    scored -inf), the user's seen items still excluded.
    Shapes: scores (B, I), rows (B,) bool, cold (I,) bool, target (B,), exclude (2, E)."""
    sc = scores[rows].masked_fill(~cold, float("-inf"))  # (B', I)
    if exclude is not None:
        new = torch.cumsum(rows.long(), 0) - 1  # batch row -> row among the cold ones
        m = rows[exclude[0]]
        exclude = torch.stack([new[exclude[0][m]], exclude[1][m]])
    ev_.add(sc, target.to(sc.device)[rows], exclude)


def evaluate_with(
    cfg: TrainConfig,
    model: Recommender,
    ev: EventTable,
    split: Split,
    name: str,
    side: ItemSide,
    cache: EvalCache | None = None,
) -> EvalResult:
    """:func:`evaluate` with the evaluation settings of ``cfg`` (``cache`` as there);
    ``valid`` scores ``cfg.valid_users`` sampled users when that is set."""
    return evaluate(
        model, ev, split, name, side, batch_size=cfg.eval_batch_size, max_len=cfg.max_seq_len,
        exclude_seen=cfg.exclude_seen, ks=cfg.ks, cache=cache,
        max_users=cfg.valid_users if name == "valid" else 0, sample_seed=cfg.seed,
    )  # fmt: skip
