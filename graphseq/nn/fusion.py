"""Fusion of per-view node embeddings into one embedding per node."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ViewFusion"]

_MODES = ("attention", "mean", "concat")


class ViewFusion(nn.Module):
    """Combine V view embeddings of every node.

    Modes:
        ``"attention"``: per-node softmax over views of
        ``q^T tanh(W h_v + b)``, the semantic attention of HAN
        (https://arxiv.org/abs/1903.07293) applied per node, as in multi-view
        recommenders such as MBGCN (https://doi.org/10.1145/3397271.3401072);
        returns ``sum_v a_v h_v``.
        ``"mean"``: uniform average.
        ``"concat"``: concatenate the views, then ``Linear(V * dim, dim)``.

    ``forward`` returns the fused embeddings and the (N, V) view weights
    (uniform for ``"mean"``, ``None`` for ``"concat"``); the module keeps no state.

    Args:
        dim: embedding size d of every view.
        num_views: number of views V.
        mode: ``"attention"`` (default), ``"mean"`` or ``"concat"``.

    Shapes: xs (V, N, d) or a list of V (N, d) tensors -> (N, d).
    """

    def __init__(self, dim: int, num_views: int, mode: str = "attention") -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.dim, self.num_views, self.mode = dim, num_views, mode
        self.proj: nn.Linear | None = None
        self.query: nn.Parameter | None = None
        if mode == "attention":
            self.proj = nn.Linear(dim, dim)
            self.query = nn.Parameter(torch.empty(dim))
        elif mode == "concat":
            self.proj = nn.Linear(num_views * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.proj is not None:
            nn.init.xavier_uniform_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)
        if self.query is not None:
            nn.init.normal_(self.query, std=self.dim**-0.5)

    def _stack(self, xs: Tensor | Sequence[Tensor]) -> Tensor:
        xs = xs if isinstance(xs, Tensor) else torch.stack(list(xs))
        if xs.dim() != 3 or xs.size(0) != self.num_views or xs.size(2) != self.dim:
            raise ValueError(
                f"expected xs of shape ({self.num_views}, N, {self.dim}), got {tuple(xs.shape)}"
            )
        return xs

    def view_weights(self, xs: Tensor | Sequence[Tensor]) -> Tensor | None:
        """Per-node view weights, rows summing to 1 (``None`` for ``"concat"``).

        Shapes: xs (V, N, d) -> (N, V).
        """
        xs = self._stack(xs)
        if self.mode == "concat":
            return None
        if self.mode == "mean":
            return xs.new_full((xs.size(1), self.num_views), 1.0 / self.num_views)
        scores = torch.tanh(self.proj(xs)) @ self.query  # (V, N)
        return scores.t().softmax(dim=-1)  # (N, V)

    def forward(self, xs: Tensor | Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        """Shapes: xs (V, N, d) -> fused (N, d), weights (N, V) or None."""
        xs = self._stack(xs)
        if self.mode == "concat":
            return self.proj(xs.permute(1, 0, 2).reshape(xs.size(1), -1)), None  # (N, d)
        weights = self.view_weights(xs)  # (N, V)
        if self.mode == "mean":
            return xs.mean(dim=0), weights
        return torch.einsum("nv,vnd->nd", weights, xs), weights

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(dim={self.dim}, views={self.num_views}, mode={self.mode})"
        )
