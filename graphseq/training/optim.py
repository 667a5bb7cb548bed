"""AdamW that updates only the rows a step touched in embedding tables with sparse gradients.

A mini-batch step looks up a few thousand of a log's users, but dense AdamW reads and writes
every row of the user table and its two moment buffers each step, most of a step at 100M
events (the scale guide has the figures). In mini-batch mode the trainer gives tables of
at least ``sparse_min_rows`` rows sparse gradients; :class:`RowAdamW` updates their touched
rows the way TensorFlow's LazyAdam and ``torch.optim.SparseAdam`` do (moments and the
decoupled weight decay of a row move only when the row has a gradient), and everything else
with ``torch.optim.AdamW``, unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn


class LazyAdamW(torch.optim.Optimizer):
    """AdamW over parameters whose gradients are sparse COO tensors indexing rows (dim 0); a
    dense gradient (a step that used the whole table) updates every row, as AdamW does.

    Per touched row: ``m ← β1·m + (1−β1)·g``, ``v ← β2·v + (1−β2)·g²``, then
    ``p ← p·(1 − lr·wd) − lr·m̂ / (√v̂ + ε)`` with bias corrections from the parameter's step
    count, as ``torch.optim.SparseAdam`` (which has no weight decay) counts them.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # noqa: D102
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                c = (lr, b1, b2, eps, wd, 1 - b1 ** st["step"], 1 - b2 ** st["step"])
                if not p.grad.is_sparse:  # the whole table was used (a full-catalogue step)
                    _adamw(p, st["exp_avg"], st["exp_avg_sq"], p.grad, *c)
                    continue
                g = p.grad.coalesce()
                rows = g.indices()[0]
                new, m, v = (t.index_select(0, rows) for t in (p, st["exp_avg"], st["exp_avg_sq"]))
                _adamw(new, m, v, g.values(), *c)
                for t, r in ((p, new), (st["exp_avg"], m), (st["exp_avg_sq"], v)):
                    t.index_copy_(0, rows, r)


def _adamw(p: Tensor, m: Tensor, v: Tensor, g: Tensor, lr: float, b1: float, b2: float,
           eps: float, wd: float, bc1: float, bc2: float) -> None:  # fmt: skip
    """One AdamW update of ``p``, ``m``, ``v`` in place (``torch.optim.AdamW``'s order)."""
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    if wd:
        p.mul_(1 - lr * wd)
    p.addcdiv_(m, (v.sqrt() / math.sqrt(bc2)).add_(eps), value=-lr / bc1)


class RowAdamW:
    """``torch.optim.AdamW`` over the dense parameters and :class:`LazyAdamW` over the sparse
    ones, behind one optimizer's interface (``step``, ``zero_grad``, ``param_groups``,
    ``state_dict``)."""

    def __init__(self, dense: list[Tensor], sparse: list[Tensor], lr: float, weight_decay: float):
        self.parts: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(dense, lr=lr, weight_decay=weight_decay),
            LazyAdamW(sparse, lr=lr, weight_decay=weight_decay),
        ]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.parts for g in o.param_groups]

    def step(self) -> None:
        for o in self.parts:
            o.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"row_adamw": [o.state_dict() for o in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "row_adamw" not in state:
            raise ValueError("this optimizer state is not a RowAdamW state (sparse tables differ)")
        for o, s in zip(self.parts, state["row_adamw"], strict=True):
            o.load_state_dict(s)


def sparse_tables(model: nn.Module) -> list[Tensor]:
    """The weights of the model's embedding tables built with ``sparse=True``."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]


def use_sparse_tables(model: nn.Module, min_rows: int) -> list[str]:
    """Give every embedding table with at least ``min_rows`` rows sparse gradients (mini-batch
    steps look up a small share of its rows); the others dense. Returns the sparse ones' names.
    """
    names = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Embedding):
            m.sparse = m.num_embeddings >= min_rows
            names += [name] if m.sparse else []
    return names


def dense_tables(model: nn.Module) -> None:
    """Switch every sparse-gradient table back to dense gradients (DDP, or an exact AdamW)."""
    use_sparse_tables(model, 2**62)


def make_optimizer(
    model: nn.Module, params: list[Tensor], lr: float, weight_decay: float
) -> torch.optim.Optimizer | RowAdamW:
    """AdamW over ``params``, with row-wise updates for the model's sparse-gradient tables."""
    sparse = {id(p) for p in sparse_tables(model)}
    rows = [p for p in params if id(p) in sparse]
    if not rows:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return RowAdamW([p for p in params if id(p) not in sparse], rows, lr, weight_decay)


def clip_grad_norm(params: list[Tensor], max_norm: float) -> Tensor:
    """``torch.nn.utils.clip_grad_norm_`` that also takes sparse gradients (coalesced first:
    a row looked up twice has one gradient, the sum)."""
    if not any(p.grad is not None and p.grad.is_sparse for p in params):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    grads = []
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    dev = grads[0].device
    norms = [torch.linalg.vector_norm(g).to(dev) for g in grads]
    total = torch.linalg.vector_norm(torch.stack(norms))
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.to(g.device))
    return total
