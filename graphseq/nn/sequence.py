"""Sequence modules over per-timestep embeddings: causal Transformer, GRU, time encoding, gate."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TimeGapEncoding(nn.Module):
    """Embedding of log2-bucketed time gaps between consecutive events (TiSASRec-style,
    https://dl.acm.org/doi/10.1145/3336191.3371786, simplified to buckets).

    Shapes: ``time`` (B, L) int64 seconds, ``mask`` (B, L) bool → (B, L, d).
    """

    def __init__(self, dim: int, num_buckets: int = 32) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.emb = nn.Embedding(num_buckets, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.emb.weight, std=0.02)

    def forward(self, time: Tensor, mask: Tensor) -> Tensor:
        gap = torch.zeros_like(time)
        gap[:, 1:] = (time[:, 1:] - time[:, :-1]).clamp(min=0)
        gap = torch.where(mask & torch.roll(mask, 1, 1), gap, torch.zeros_like(gap))
        bucket = torch.log2(gap.double() + 1).floor().long().clamp(max=self.num_buckets - 1)
        return self.emb(bucket)

    def __repr__(self) -> str:
        return f"TimeGapEncoding({self.emb.embedding_dim}, buckets={self.num_buckets})"


class CausalTransformer(nn.Module):
    """Pre-LN causal Transformer (SASRec, https://arxiv.org/abs/1808.09781).

    Position ``t`` attends to positions ``<= t`` that are not padding (and always to itself).
    Shapes: ``x`` (B, L, d), ``mask`` (B, L) bool (true = real event) → (B, L, d).
    """

    def __init__(
        self, dim: int, num_layers: int = 2, num_heads: int = 1, dropout: float = 0.2
    ) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            dim,
            num_heads,
            dim_feedforward=dim,  # SASRec: point-wise FFN of width d
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.num_heads, self.dim, self.num_layers = num_heads, dim, num_layers

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        B, L, _ = x.shape
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(
            1
        )  # (L, L) true = blocked
        blocked = causal[None] | ~mask[:, None, :]  # (B, L, L)
        blocked = blocked & ~torch.eye(L, dtype=torch.bool, device=x.device)[None]
        attn = torch.zeros(B, L, L, device=x.device, dtype=x.dtype).masked_fill(blocked, -math.inf)
        attn = attn.repeat_interleave(self.num_heads, 0)  # (B*h, L, L)
        return self.norm(self.encoder(x, mask=attn))

    def __repr__(self) -> str:
        return (
            f"CausalTransformer(dim={self.dim}, layers={self.num_layers}, heads={self.num_heads})"
        )


class GRUSequence(nn.Module):
    """GRU over the sequence (GRU4Rec, https://arxiv.org/abs/1511.06939); padding comes after
    the last event, so it never reaches a real state. Shapes: (B, L, d), (B, L) → (B, L, d)."""

    def __init__(self, dim: int, num_layers: int = 1, dropout: float = 0.2) -> None:
        super().__init__()
        self.gru = nn.GRU(
            dim, dim, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.norm = nn.LayerNorm(dim)

    def reset_parameters(self) -> None:
        self.gru.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out, _ = self.gru(x * mask[..., None])
        return self.norm(out)

    def __repr__(self) -> str:
        return f"GRUSequence(dim={self.gru.hidden_size}, layers={self.gru.num_layers})"


class ScaleGate(nn.Module):
    """Learned gate mixing the event scale with the snapshot scale:
    ``fine + sigmoid(W [fine; snapshot]) * snapshot``. Shapes: (..., d), (..., d) → (..., d)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.constant_(self.lin.bias, -2.0)  # start mostly closed: the fine scale leads

    def forward(self, fine: Tensor, snapshot: Tensor) -> Tensor:
        gate = torch.sigmoid(self.lin(torch.cat([fine, snapshot], -1)))
        return fine + gate * snapshot

    def __repr__(self) -> str:
        return f"ScaleGate({self.lin.out_features})"
