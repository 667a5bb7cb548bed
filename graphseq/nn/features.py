"""Item input features (e.g. sentence embeddings of titles) projected into the item space."""

from __future__ import annotations

from torch import Tensor, nn


class ItemFeatures(nn.Module):
    """A linear projection of fixed item features, added to the item ID embedding.

    Features are centred over the catalogue first (sentence embeddings share a large common
    direction that would otherwise add the same vector to every item).

    Args:
        in_dim: feature size (384 for MiniLM).  dim: item embedding size.
    Shapes: (I, in_dim) → (I, dim).
    """

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x - x.mean(0, keepdim=True))  # (I, dim)

    def __repr__(self) -> str:
        return f"ItemFeatures({self.proj.in_features}, {self.proj.out_features})"
