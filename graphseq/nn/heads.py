"""Scoring heads: one matmul ranks the whole catalogue."""

from __future__ import annotations

from torch import Tensor, nn


class DotHead(nn.Module):
    """``score(u, i) = <u, i>``. Shapes: (B, d), (I, d) → (B, I)."""

    def reset_parameters(self) -> None:
        pass

    def transform(self, users: Tensor) -> Tensor:
        """The user side as scored (identity here). Shapes: (B, d) → (B, d)."""
        return users

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.transform(users) @ items.T

    def __repr__(self) -> str:
        return "DotHead()"


class MLPHead(nn.Module):
    """An MLP on the user side before the dot product (keeps one-matmul ranking).
    Shapes: (B, d), (I, d) → (B, I)."""

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or 2 * dim
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def reset_parameters(self) -> None:
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def transform(self, users: Tensor) -> Tensor:
        """Residual MLP on the user side. Shapes: (B, d) → (B, d)."""
        return users + self.mlp(users)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        return self.transform(users) @ items.T

    def __repr__(self) -> str:
        return f"MLPHead({self.mlp[0].in_features})"
