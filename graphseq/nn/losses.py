"""Losses and negative samplers. Scores are dot products (see ``heads``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def full_softmax_ce(h: Tensor, items: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy over the whole catalogue (gSASRec, https://arxiv.org/abs/2308.07192).

    Shapes: ``h`` (N, d), ``items`` (I, d), ``target`` (N,) → scalar.
    """
    return F.cross_entropy(h @ items.T, target)


def sampled_softmax_ce(
    h: Tensor, items: Tensor, target: Tensor, neg: Tensor, log_q: Tensor | None = None
) -> Tensor:
    """Sampled softmax with logQ correction (Yi et al. 2019). ``neg`` (S,) shared negatives;
    ``log_q`` (I,) log sampling probabilities (``None``: uniform, no correction needed).

    Shapes: ``h`` (N, d), ``items`` (I, d), ``target`` (N,), ``neg`` (S,) → scalar.
    """
    pos = (h * items[target]).sum(-1, keepdim=True)  # (N, 1)
    negs = h @ items[neg].T  # (N, S)
    if log_q is not None:
        pos = pos - log_q[target][:, None]
        negs = negs - log_q[neg][None, :]
    negs = negs.masked_fill(neg[None, :] == target[:, None], float("-inf"))  # no accidental hits
    logits = torch.cat([pos, negs], 1)
    return F.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long, device=h.device))


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking (Rendle et al. 2009). Shapes: (N,), (N,) or (N, S) → scalar."""
    if neg.dim() == 2:
        pos = pos[:, None]
    return -F.logsigmoid(pos - neg).mean()


def sample_negatives(
    num: int,
    num_items: int,
    popularity: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``num`` item indices, uniform or ∝ ``popularity`` (I,)."""
    if popularity is None:
        return torch.randint(num_items, (num,), generator=generator).to(device)
    return torch.multinomial(
        popularity.cpu().float(), num, replacement=True, generator=generator
    ).to(device)
