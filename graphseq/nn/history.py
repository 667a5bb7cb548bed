"""The user's own earlier edges of each behavior as a score: a learned pointer to items the
user carted, faved or clicked before (the user's 1-hop neighbourhood in every behavior's
user–item graph, strictly before the scored position).

``score(u, i) += Σ_e w[beh_e] · exp(-age_e / τ[beh_e])`` over the user's earlier events ``e``
on item ``i`` (age in events, 0 for the most recent). ``w`` starts at 0 (a no-op until
training finds it useful) and is reported per behavior. A model that trains no softmax (pop,
mf, lightgcn, mbcgcn, ease, itemknn) gets the same term untrained (``trained=False``): off
(``scale`` 0) until the post-training calibration, whose grid (``scale`` × ``sharpen``, off
first) sets each behavior's weight around ``UNTRAINED_WEIGHT`` and decay around 10 events.
Items the user already bought (target behaviors) are excluded from the ranking, so on logs
where every behavior is a target (e.g. MovieLens ratings) this term has nothing to score. Repeat-aware models (RepeatNet, Ren et al.
2019, https://arxiv.org/abs/1812.02646) point into the history the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphseq.graph.sequences import SeqBatch

STEP = 200.0  # weight = STEP · parameter: Adam moves a parameter by ~lr a step, and a logit
# weight has to travel to ~10 (full-softmax logits are of that size) within a few dozen steps
# (chosen on a Tmall validation slice; docs: Results, the own-history pointer)
UNTRAINED_WEIGHT = 10.0  # an untrained pointer's base weight: what graphseq learns on Tmall
# (~9), so the calibration grid (own_history_scales × own_history_sharpen) spans the same
# strengths for a model that trains the pointer and for one that does not


class OwnHistory(nn.Module):
    """Args: num_behaviors (padding gets weight 0); decay: initial τ in events (10);
    trained: False for a model that trains no softmax (weights fixed at ``UNTRAINED_WEIGHT``);
    scales, sharpen: the calibration grid tried on validation after training
    (:meth:`posthoc_grid`).
    Shapes: ``train_terms`` → three (M,) tensors; ``forward`` hist (B, L) → (B, I)."""

    posthoc_key = "own_history_choice"  # where metrics.json reports what validation chose

    def __init__(
        self,
        num_behaviors: int,
        decay: float = 10.0,
        skip_targets: bool = True,
        trained: bool = True,
        scales: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
        sharpen: Sequence[float] = (1.0, 4.0, 16.0),
    ) -> None:
        super().__init__()
        self.num_behaviors, self.init_decay, self.skip_targets = num_behaviors, decay, skip_targets
        self.trained = trained
        self.grid_scales, self.grid_sharpen = tuple(scales), tuple(sharpen)
        self.weight = nn.Parameter(torch.zeros(num_behaviors + 1))
        self.log_decay = nn.Parameter(torch.full((num_behaviors + 1,), math.log(decay)))
        # chosen on validation after training (train/posthoc.py), 1 while training: the
        # learned weights times ``scale``, the learned decays divided by ``sharpen``
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("sharpen", torch.ones(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.weight, 0.0 if self.trained else UNTRAINED_WEIGHT / STEP)
        nn.init.constant_(self.log_decay, math.log(self.init_decay))
        self.scale.fill_(1.0 if self.trained else 0.0)  # untrained: off until calibrated
        for p in (self.weight, self.log_decay):
            p.requires_grad_(self.trained)

    def posthoc_grid(self) -> list[dict[str, float]]:
        """The ``scale`` × ``sharpen`` settings tried on validation: after the learned weights
        (none when training left them at 0), or off first for an untrained pointer."""
        grid = [{"scale": float(a), "sharpen": float(b)}
                for a in self.grid_scales for b in self.grid_sharpen]  # fmt: skip
        if not self.trained:
            return [{"scale": 0.0, "sharpen": 1.0}, *grid]
        return grid if float(self.weights().detach().abs().sum()) > 0 else []

    def weights(self) -> Tensor:
        """(num_behaviors + 1,) the weight of each behavior (padding: 0), ``scale`` included."""
        pad = torch.arange(len(self.weight), device=self.weight.device) == self.num_behaviors
        return STEP * self.scale * self.weight.masked_fill(pad, 0.0)

    def decays(self) -> Tensor:
        """(num_behaviors + 1,) the decay τ of each behavior in events, ``sharpen`` included."""
        return self.log_decay.exp() / self.sharpen

    def _value(self, behavior: Tensor, age: Tensor) -> Tensor:
        return self.weights()[behavior] * torch.exp(-age / self.decays()[behavior])

    def train_terms(self, inp: SeqBatch, use: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(rows, items, values)``: for each used position (row of the loss, in ``use``
        order), every earlier-or-equal event of its sequence; target-behavior events are left
        out when ``skip_targets`` (the training softmax masks them). Ordered by row, then by
        position. Built from the events that can score (none on a log whose every event is
        a target), each paired with the used positions at or after it.
        Shapes: ``inp`` fields and ``use`` (B, L) → three (M,) tensors."""
        L = inp.item.size(1)
        b, t = use.nonzero(as_tuple=True)  # (N,) row-major: by row, then position
        able = inp.mask & ~inp.is_target if self.skip_targets else inp.mask
        eb, ep = able.nonzero(as_tuple=True)  # (E,) the events that can score
        slot = b * L + t  # (N,) sorted
        lo = torch.searchsorted(slot, eb * L + ep)  # first used position at or after it
        hi = torch.searchsorted(slot, eb * L + L)  # past its row's last used position
        count = hi - lo
        total = int(count.sum())
        ev = torch.repeat_interleave(torch.arange(len(eb), device=t.device), count,
                                     output_size=total)  # fmt: skip
        start = torch.cumsum(count, 0) - count
        row = lo[ev] + torch.arange(total, device=t.device) - start[ev]
        order = torch.argsort(row * L + ep[ev])  # by row, then by position (keys are unique)
        row, rb, pos = row[order], eb[ev[order]], ep[ev[order]]
        age = (t[row] - pos).to(self.weight.dtype)
        return row, inp.item[rb, pos], self._value(inp.behavior[rb, pos], age)

    def forward(self, hist: SeqBatch, num_items: int) -> Tensor:
        """(B, I) scores of each row's whole history (age from its last event)."""
        L = hist.item.size(1)
        pos = torch.arange(L, device=hist.item.device)
        age = (hist.last[:, None] - pos[None, :]).clamp(min=0).to(self.weight.dtype)  # (B, L)
        m = hist.mask & ~hist.is_target if self.skip_targets else hist.mask
        v = self._value(hist.behavior, age) * m
        out = torch.zeros(len(hist.item), num_items + 1, device=v.device, dtype=v.dtype)
        return out.scatter_add_(1, hist.item, v)[:, :num_items]

    def summary(self) -> dict[str, dict[str, float]]:
        w, d = self.weights().detach(), self.decays().detach()
        return {"weight": w[:-1].tolist(), "decay": d[:-1].tolist()}

    def by_behavior(self, behaviors: list[str]) -> dict[str, dict[str, float]]:
        """``{behavior: {"weight", "decay"}}`` as ``metrics.json`` reports them (rounded)."""
        s = self.summary()
        return {b: {"weight": round(s["weight"][k], 4), "decay": round(s["decay"][k], 2)}
                for k, b in enumerate(behaviors)}  # fmt: skip

    def __repr__(self) -> str:
        fixed = "" if self.trained else ", untrained"
        return f"OwnHistory({self.num_behaviors} behaviors{fixed})"
