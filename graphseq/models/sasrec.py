"""SASRec with full-softmax cross-entropy: the sequence-only baseline and GraphSeq's core.

Kang & McAuley 2018 (https://arxiv.org/abs/1808.09781), trained at every position with CE
over the catalogue as in gSASRec (https://arxiv.org/abs/2308.07192).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphseq.graph.context import GraphContext
from graphseq.graph.sequences import SeqBatch, earlier_targets
from graphseq.models.base import Encoded, Recommender
from graphseq.nn.features import ItemFeatures
from graphseq.nn.heads import DotHead, MLPHead
from graphseq.nn.losses import bpr_loss, full_softmax_ce, sample_negatives, sampled_softmax_ce
from graphseq.nn.sequence import CausalTransformer, GRUSequence, TimeGapEncoding


class SASRec(Recommender):
    """Args:
        num_users, num_items, num_behaviors: sizes.
        dim: embedding size (64).  max_len: positions (200).
        num_layers, num_heads, dropout: Transformer / GRU settings (2, 1, 0.3).
        sequence: ``transformer`` | ``gru`` | ``none`` (cumulative mean of the inputs).
        time_encoding: add log time-gap embeddings (True).
        loss: ``ce`` | ``sampled`` | ``bpr``; num_negatives for the latter two (256).
        head: ``dot`` (default) | ``mlp`` (an MLP on the user state before the dot product).
        train_exclude_seen: with ``ce``, leave each position's earlier target items (never
            its label) out of the training softmax, as evaluation leaves them out of the
            ranking (False).
        item_features: optional (I, F) fixed item features (e.g. title embeddings, see
            ``graphseq.text``); an :class:`ItemFeatures` projection of them is added to the
            item ID embedding. Kept as a buffer, so checkpoints carry them.
        id_dropout: with item features, the share of items whose ID embedding is dropped at
            each training step, so the feature path alone must rank them (0.0).

    Cold items: an item without training events keeps an ID embedding that only ever was a
    softmax negative (pushed away from every user). With item features, ``item_input`` zeroes
    the ID embedding of every item outside ``trained_items`` (set by the trainer) when not
    training, so such items are scored by their features alone. Chosen on the cold
    validation targets of a simulated item cold start on ML-100K: their AUC over the whole
    catalogue rose from 0.25 to 0.68 (titles), overall NDCG@10 unchanged; ID dropout of 0.2
    or 0.5 did not help further (README, "Text features and cold start").
    Shapes: ``user_repr`` returns (B, d); items are (I, d).
    """

    train_mode = "sequences"

    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_behaviors: int,
        dim: int = 64,
        max_len: int = 200,
        num_layers: int = 2,
        num_heads: int = 1,
        dropout: float = 0.3,
        sequence: str = "transformer",
        time_encoding: bool = True,
        loss: str = "ce",
        num_negatives: int = 256,
        head: str = "dot",
        train_exclude_seen: bool = False,
        item_features: Tensor | None = None,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim, self.max_len = num_users, num_items, dim, max_len
        self.loss_name, self.num_negatives, self.sequence_name = loss, num_negatives, sequence
        self.train_exclude_seen = train_exclude_seen
        self.item_emb = nn.Embedding(num_items, dim)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.beh_emb = nn.Embedding(num_behaviors + 1, dim)
        self.time_enc = TimeGapEncoding(dim) if time_encoding else None
        self.drop = nn.Dropout(dropout)
        self.in_norm = nn.LayerNorm(dim)
        if sequence == "transformer":
            self.seq: nn.Module | None = CausalTransformer(dim, num_layers, num_heads, dropout)
        elif sequence == "gru":
            self.seq = GRUSequence(dim, num_layers, dropout)
        elif sequence == "none":
            self.seq = None
        else:
            raise ValueError(f"unknown sequence {sequence!r}; valid: transformer, gru, none")
        if head not in ("dot", "mlp"):
            raise ValueError(f"unknown head {head!r}; valid: dot, mlp")
        self.head = MLPHead(dim) if head == "mlp" else DotHead()
        self.id_dropout = id_dropout
        self.item_feat: ItemFeatures | None = None
        if item_features is not None:
            if item_features.dim() != 2 or item_features.size(0) != num_items:
                raise ValueError(
                    f"item_features must be ({num_items}, F), got {tuple(item_features.shape)}"
                )
            self.register_buffer("item_features", item_features.float().clone())  # (I, F)
            self.register_buffer("trained_items", torch.ones(num_items, dtype=torch.bool))
            self.item_feat = ItemFeatures(item_features.size(1), dim)
        self.reset_parameters()

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        """(B, d), (I, d) → (B, I): one matmul ranks the catalogue (the MLP head acts on users)."""
        return self.head(users, items)

    def reset_parameters(self) -> None:
        for emb in (self.item_emb, self.pos_emb, self.beh_emb):
            nn.init.normal_(emb.weight, std=0.02)
        for m in self.children():
            if hasattr(m, "reset_parameters") and not isinstance(m, nn.Embedding):
                m.reset_parameters()

    def set_trained_items(self, mask: Tensor) -> None:
        """Mark the items with training events (the rest get no ID embedding at scoring).
        Shapes: mask (I,) bool."""
        if self.item_feat is not None:
            self.trained_items.copy_(mask.to(self.trained_items.device))

    def item_input(self) -> Tensor:
        """(I, d) ID embedding, plus projected item features when the model has them."""
        ids = self.item_emb.weight
        if self.item_feat is None:
            return ids
        if self.training and self.id_dropout > 0:
            keep = torch.rand(self.num_items, device=ids.device) >= self.id_dropout
        else:
            keep = self.trained_items if not self.training else None
        if keep is not None:
            ids = ids * keep[:, None].to(ids.dtype)
        return ids + self.item_feat(self.item_features)  # (I, d)

    def item_table(self, ctx: GraphContext, batch_users: Tensor | None = None) -> Tensor:
        """(I, d) item representations; GraphSeq adds its graph views here (``batch_users``:
        the users being trained on, whose own edges a graph view must leave out)."""
        return self.item_input()

    def encode(self, ctx: GraphContext) -> Encoded:
        return Encoded(items=self.item_table(ctx))

    def states(self, ctx: GraphContext, enc: Encoded, seq: SeqBatch, users: Tensor) -> Tensor:
        """Per-position states of ``users`` (B,); position t depends on events <= t only.
        Shapes: ``seq`` fields (B, L) → (B, L, d)."""
        items = F.pad(enc.items, (0, 0, 0, 1))  # pad row for the padding index
        pos = torch.arange(seq.item.size(1), device=seq.item.device)
        x = items[seq.item] + self.pos_emb(pos)[None] + self.beh_emb(seq.behavior)  # (B, L, d)
        if self.time_enc is not None:
            x = x + self.time_enc(seq.time, seq.mask)
        x = self.drop(self.in_norm(x)) * seq.mask[..., None]
        if self.seq is None:  # cumulative mean: an order-free bag of the history
            csum = x.cumsum(1)
            return csum / seq.mask.cumsum(1).clamp(min=1)[..., None]
        return self.seq(x, seq.mask)

    def user_repr(self, ctx: GraphContext, enc: Encoded, users: Tensor, hist: SeqBatch) -> Tensor:
        h = self.states(ctx, enc, hist, users)  # (B, L, d)
        return h[torch.arange(len(h), device=h.device), hist.last]

    def loss(self, ctx: GraphContext, batch: Tensor) -> Tensor:
        dev = self.item_emb.weight.device
        seq = ctx.user_sequences(batch, self.max_len + 1).to(dev)
        fields = (seq.item, seq.behavior, seq.time, seq.is_target, seq.mask)
        inp = SeqBatch(*(t[:, :-1] for t in fields))
        label, use = seq.item[:, 1:], seq.is_target[:, 1:] & seq.mask[:, :-1]
        enc = Encoded(items=self.item_table(ctx, batch))
        h = self.head.transform(self.states(ctx, enc, inp, batch.to(dev))[use])  # (N, d)
        target, ex = label[use], self.train_exclude_seen
        if self.loss_name == "ce":
            seen = earlier_targets(inp, use, target, self.num_items) if ex else None
            return full_softmax_ce(h, enc.items, target, seen)
        neg = sample_negatives(self.num_negatives, self.num_items, device=h.device)
        if self.loss_name == "sampled":
            seen = earlier_targets(inp, use, target, self.num_items, neg) if ex else None
            return sampled_softmax_ce(h, enc.items, target, neg, seen=seen)
        if self.loss_name == "bpr":
            return bpr_loss((h * enc.items[target]).sum(-1), h @ enc.items[neg[:1]].T)
        raise ValueError(f"unknown loss {self.loss_name!r}; valid: ce, sampled, bpr")

    def __repr__(self) -> str:
        text = f", text={self.item_feat.proj.in_features}" if self.item_feat is not None else ""
        return f"{type(self).__name__}({self.num_users}u, {self.num_items}i, dim={self.dim}, seq={self.sequence_name}{text})"
