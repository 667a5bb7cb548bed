"""Full-ranking evaluation: one torch-only evaluator, batched, on the scores' device.

Input contract (every function here):

- ``scores``: ``(B, I)`` float, one row per evaluated user, one column per item of
  the whole catalogue. Higher is better. NaN is treated as beating every item.
- ``targets``: ``(B,)`` long, the held-out item of each row.
- ``exclude``: ``(2, E)`` long COO ``(row in batch, item)`` of items removed from
  the candidate set (typically the user's history). Duplicates are allowed; the
  target must not be among them (a ``ValueError`` is raised if it is).

Ranks are pessimistic: ``rank = 1 + #candidates whose score >= the target's``, so
ties (and NaN) never help the model. All-equal scores give ``rank = num_candidates``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

KS: tuple[int, ...] = (5, 10, 20)
SAMPLED_NUM_NEG: int = 100  # negatives per positive in the legacy sampled protocol


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k <= 0 for k in ks):
        raise ValueError(f"ks must be non-empty positive integers (got {ks})")
    return ks


def _exclude_keys(
    exclude: Tensor | None, num_rows: int, num_items: int, device: torch.device
) -> Tensor:
    """Sorted unique keys ``row * num_items + item`` of the excluded pairs.

    Shapes: exclude (2, E) -> (E',) long, E' <= E.
    """
    if exclude is None or exclude.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=device)
    if exclude.dim() != 2 or exclude.size(0) != 2:
        raise ValueError(f"exclude must have shape (2, E) (got {tuple(exclude.shape)})")
    exclude = exclude.to(device=device, dtype=torch.long)
    row, item = exclude[0], exclude[1]
    if bool(((row < 0) | (row >= num_rows) | (item < 0) | (item >= num_items)).any()):
        raise ValueError("exclude holds a row or item index out of range")
    return torch.unique(row * num_items + item)  # sorted


def _rank(scores: Tensor, targets: Tensor, keys: Tensor) -> Tensor:
    """Pessimistic 1-based ranks given sorted unique exclusion keys.

    Shapes: scores (B, I), targets (B,), keys (E,) -> (B,) long.
    """
    num_rows, num_items = scores.shape
    targets = targets.to(device=scores.device, dtype=torch.long)
    rows = torch.arange(num_rows, device=scores.device)
    if keys.numel() > 0:
        target_keys = rows * num_items + targets
        pos = torch.searchsorted(keys, target_keys).clamp(max=keys.numel() - 1)
        if bool((keys[pos] == target_keys).any()):
            raise ValueError("a target item is among the excluded items of its row")
    target_score = scores.gather(1, targets.view(-1, 1))  # (B, 1)
    # not (s < t) is (s >= t) or s is NaN or t is NaN: NaN never helps the target.
    beats = torch.lt(scores, target_score).logical_not_()  # (B, I) bool
    if keys.numel() > 0:
        beats[keys // num_items, keys % num_items] = False
    beats[rows, targets] = False
    return beats.sum(dim=1) + 1


def rank_of_targets(scores: Tensor, targets: Tensor, exclude: Tensor | None = None) -> Tensor:
    """Pessimistic 1-based rank of each row's target among its candidate items.

    ``rank = 1 + #items with score >= target score``, not counting the target
    itself nor excluded items; NaN scores beat the target, and a NaN target
    score ranks last.

    Args:
        scores: item scores, higher is better.
        targets: held-out item per row.
        exclude: optional COO ``(row in batch, item)`` pairs to mask out; the
            target must not be among them.

    Shapes: scores (B, I), targets (B,), exclude (2, E) -> (B,) long.
    """
    if scores.dim() != 2 or targets.shape != (scores.size(0),):
        raise ValueError(
            f"expected scores (B, I) and targets (B,) (got {tuple(scores.shape)}, "
            f"{tuple(targets.shape)})"
        )
    keys = _exclude_keys(exclude, scores.size(0), scores.size(1), scores.device)
    return _rank(scores, targets, keys)


def metrics_from_ranks(
    ranks: Tensor,
    num_items: int,
    ks: Sequence[int] = KS,
    num_candidates: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-user metrics for a single held-out target per user.

    For each ``K``: ``Recall@K`` and ``Hit@K`` (equal with one target),
    ``NDCG@K = 1/log2(rank+1)``, ``MRR@K = 1/rank`` and ``Precision@K = hit/K``,
    all zero when ``rank > K``. Plus ``AUC = (n - rank) / (n - 1)`` with ``n`` the
    number of candidates (``num_items`` minus the user's excluded items); rows
    with a single candidate get ``AUC = 0.5`` (no negatives: uninformative).

    Args:
        ranks: pessimistic 1-based ranks, e.g. from :func:`rank_of_targets`.
        num_items: catalogue size, the default number of candidates.
        ks: cut-offs (default ``KS``).
        num_candidates: optional per-user number of candidates.

    Shapes: ranks (B,), num_candidates (B,) -> each value (B,) float32.
    """
    ks = _check_ks(ks)
    dtype = torch.float32
    rank_f = ranks.to(dtype)
    out: dict[str, Tensor] = {}
    for k in ks:
        hit = (ranks <= k).to(dtype)
        out[f"Recall@{k}"] = hit
        out[f"Hit@{k}"] = hit.clone()
        out[f"NDCG@{k}"] = hit / torch.log2(rank_f + 1.0)
        out[f"MRR@{k}"] = hit / rank_f
        out[f"Precision@{k}"] = hit / k
    if num_candidates is None:
        n = torch.full_like(rank_f, float(num_items))
    else:
        n = num_candidates.to(device=ranks.device, dtype=dtype)
    auc = (n - rank_f) / (n - 1.0).clamp(min=1.0)
    out["AUC"] = torch.where(n > 1.0, auc, torch.full_like(auc, 0.5))
    return out


class Evaluator:
    """Full-ranking evaluator: accumulate batches, then read mean metrics.

    ``result()`` gives the mean over users of every per-user metric of
    :func:`metrics_from_ranks` and ``Coverage@K``: the share of the catalogue
    that appears in at least one user's top-``K`` after exclusion (ties at the
    cut-off are broken by ``torch.topk``). Splitting the same users into
    different batches gives the same result.

    Args:
        num_items: catalogue size ``I``; every ``scores`` row has ``I`` columns.
        ks: cut-offs (default ``KS``).

    Shapes: add(scores (B, I), targets (B,), exclude (2, E), users (B,)).
    """

    def __init__(self, num_items: int, ks: Sequence[int] = KS) -> None:
        if num_items <= 0:
            raise ValueError(f"num_items must be positive (got {num_items})")
        self.num_items = int(num_items)
        self.ks = _check_ks(ks)
        self.reset()

    def reset(self) -> None:
        """Forget every batch added so far."""
        self._columns: list[dict[str, Tensor]] = []
        self._covered: dict[int, Tensor] = {}  # K -> (I,) bool, on the scores' device
        self._num_seen = 0

    @torch.no_grad()
    def add(
        self,
        scores: Tensor,
        targets: Tensor,
        exclude: Tensor | None = None,
        users: Tensor | None = None,
    ) -> None:
        """Rank one batch and store its per-user metrics.

        Args:
            scores: item scores, higher is better.
            targets: held-out item per row.
            exclude: optional COO ``(row in batch, item)`` pairs to mask out.
            users: optional user ids for ``per_user()`` (default: running row index).

        Shapes: scores (B, I), targets (B,), exclude (2, E), users (B,).
        """
        if scores.dim() != 2 or scores.size(1) != self.num_items:
            raise ValueError(
                f"scores must have shape (B, {self.num_items}) (got {tuple(scores.shape)})"
            )
        num_rows, device = scores.size(0), scores.device
        if targets.shape != (num_rows,):
            raise ValueError(f"targets must have shape ({num_rows},) (got {tuple(targets.shape)})")
        targets = targets.to(device=device, dtype=torch.long)
        keys = _exclude_keys(exclude, num_rows, self.num_items, device)
        num_excluded = torch.bincount(keys // self.num_items, minlength=num_rows)  # (B,)

        self._update_coverage(scores, keys)
        ranks = _rank(scores, targets, keys)
        num_candidates = self.num_items - num_excluded
        cols = metrics_from_ranks(ranks, self.num_items, self.ks, num_candidates)
        if users is None:
            users = torch.arange(self._num_seen, self._num_seen + num_rows, device=device)
        cols = {
            "user": users.to(device=device, dtype=torch.long),
            "target": targets,
            "rank": ranks,
            "num_candidates": num_candidates,
            **cols,
        }
        self._columns.append(cols)
        self._num_seen += num_rows

    def _update_coverage(self, scores: Tensor, keys: Tensor) -> None:
        """Mark items in each row's top-K, excluded items masked out."""
        num_items = self.num_items
        k_max = min(max(self.ks), num_items)
        masked = scores
        if keys.numel() > 0:
            masked = masked.clone()  # (B, I): the one extra B x I float buffer
            masked[keys // num_items, keys % num_items] = float("-inf")
        top = torch.topk(masked, k_max, dim=1).indices  # (B, k_max)
        del masked
        valid = torch.ones_like(top, dtype=torch.bool)
        if keys.numel() > 0:  # K may exceed a row's candidates: drop excluded picks
            rows = torch.arange(top.size(0), device=top.device).view(-1, 1)
            top_keys = rows * num_items + top
            pos = torch.searchsorted(keys, top_keys).clamp(max=keys.numel() - 1)
            valid = keys[pos] != top_keys
        for k in self.ks:
            covered = self._covered.get(k)
            if covered is None:
                covered = torch.zeros(num_items, dtype=torch.bool, device=scores.device)
                self._covered[k] = covered
            kk = min(k, k_max)
            covered[top[:, :kk][valid[:, :kk]]] = True

    def per_user(self) -> dict[str, Tensor]:
        """Per-user columns in ``add`` order, on CPU.

        Keys: ``user``, ``target``, ``rank``, ``num_candidates`` and every metric
        of :func:`metrics_from_ranks`.

        Shapes: each value (N,) with N the number of users added.
        """
        if not self._columns:
            raise RuntimeError("Evaluator.per_user() called before any add()")
        return {key: torch.cat([c[key].cpu() for c in self._columns]) for key in self._columns[0]}

    def result(self) -> dict[str, float]:
        """Mean of each per-user metric, plus ``Coverage@K``, as Python floats."""
        cols = self.per_user()
        skip = {"user", "target", "rank", "num_candidates"}
        out = {key: float(v.double().mean()) for key, v in cols.items() if key not in skip}
        for k in self.ks:
            out[f"Coverage@{k}"] = float(self._covered[k].double().mean())
        return out

    def __repr__(self) -> str:
        return f"Evaluator({self.num_items}i, ks={self.ks}, users={self._num_seen})"


@torch.no_grad()
def evaluate_sampled(
    scores_pos: Tensor, scores_neg: Tensor, ks: Sequence[int] = KS
) -> dict[str, float]:
    """Legacy 1-vs-100 sampled-negative metrics, for comparison with old papers only.

    Ranks are pessimistic (a negative scoring >= the positive, or NaN, beats
    it). Every key is prefixed ``"sampled100/"`` so these numbers can never be
    mistaken for full-ranking ones.

    Args:
        scores_pos: score of each held-out positive.
        scores_neg: scores of the 100 sampled negatives of each positive.
        ks: cut-offs (default ``KS``).

    Shapes: scores_pos (B,), scores_neg (B, 100).
    """
    num_rows = scores_pos.size(0)
    if scores_pos.dim() != 1 or scores_neg.shape != (num_rows, SAMPLED_NUM_NEG):
        raise ValueError(
            f"expected scores_pos (B,) and scores_neg (B, {SAMPLED_NUM_NEG}) "
            f"(got {tuple(scores_pos.shape)}, {tuple(scores_neg.shape)})"
        )
    pos = scores_pos.to(scores_neg.device).view(-1, 1)  # (B, 1)
    ranks = torch.lt(scores_neg, pos).logical_not_().sum(dim=1) + 1  # (B,)
    cols = metrics_from_ranks(ranks, SAMPLED_NUM_NEG + 1, ks)
    prefix = f"sampled{SAMPLED_NUM_NEG}/"
    return {prefix + key: float(v.double().mean()) for key, v in cols.items()}


__all__ = [
    "KS",
    "Evaluator",
    "evaluate_sampled",
    "metrics_from_ranks",
    "rank_of_targets",
]
