"""Full-softmax cross-entropy in item chunks, for catalogues too large for row chunks.

The one-pass :func:`~graphseq.nn.losses.full_softmax_ce` runs in row chunks and holds each
chunk's logits over the whole catalogue; with a million items even a chunk of 64 rows is
256 MB, and a chunk of a few rows is a matrix-vector product per row. Here the
forward pass keeps only each row's running log-sum-exp (online softmax, Milakov & Gimelshein
2018, https://arxiv.org/abs/1805.02867), and the backward pass recomputes every chunk's
logits once more: one extra ``(N, d) × (d, chunk)`` matmul per chunk buys memory that no
longer grows with the catalogue. The seen mask comes chunk by chunk too
(:class:`~graphseq.graph.sequences.EarlierTargets`), so no (N, I) tensor exists at any point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from graphseq.nn.losses import full_softmax_ce

SeenChunk = Callable[[int, int], Tensor]  # (lo, hi) -> (N, hi - lo) bool mask of those items


class SeenMask(Protocol):
    """A seen mask given by parts (:class:`~graphseq.graph.sequences.EarlierTargets`)."""

    def columns(self, lo: int, hi: int) -> Tensor: ...  # (N, hi - lo): items lo..hi-1
    def rows(self, lo: int, hi: int) -> Tensor: ...  # (hi - lo, I): rows lo..hi-1


def chunked_softmax_ce(
    h: Tensor,
    items: Tensor,
    target: Tensor,
    seen: Tensor | SeenChunk | SeenMask | None = None,
    chunk: int = 0,
    bias: tuple[Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    """Cross-entropy over the whole catalogue, ``chunk`` items at a time (gSASRec's CE,
    https://arxiv.org/abs/2308.07192), the items where ``seen`` is True left out of each row.

    Equals :func:`~graphseq.nn.losses.full_softmax_ce` in value and gradient. ``chunk`` 0 or
    at least the catalogue size: that one-pass path itself (the fastest: row chunks, three
    matmuls each; here every item chunk costs a fourth, the logits again in backward).
    ``seen``: an (N, I) bool tensor, a function ``(lo, hi) → (N, hi - lo)`` giving the mask
    of items ``lo..hi-1`` (called twice per chunk: forward and backward), or a
    :class:`SeenMask` (its ``rows`` on the one-pass path, its ``columns`` here). Under CUDA
    autocast it runs in float32, as the one-pass path does. ``bias`` (rows, cols, values):
    sparse logit terms with their gradient, added chunk by chunk, as in the one-pass path.

    Shapes: ``h`` (N, d), ``items`` (I, d), ``target`` (N,) → scalar.
    """
    num_items = items.size(0)
    if chunk <= 0 or chunk >= num_items:
        if hasattr(seen, "rows"):
            return full_softmax_ce(h, items, target, seen.rows, bias)
        full = seen(0, num_items) if callable(seen) else seen
        return full_softmax_ce(h, items, target, full, bias)
    if hasattr(seen, "columns"):
        seen = seen.columns
    rows, cols, vals = bias if bias is not None else (None, None, None)
    return _ChunkedCE.apply(h, items, target, seen, chunk, rows, cols, vals)


def softmax_chunk(rows: int, num_items: int, max_logits: int) -> int:
    """Items per chunk so that a step holds at most ``max_logits`` logits (rows × items) at
    once: 0 (the one-pass path, row chunks of at most that many logits) when the whole
    (rows, I) matrix fits or ``max_logits`` is 0."""
    if max_logits <= 0 or rows * num_items <= max_logits:
        return 0
    return max(1, max_logits // max(rows, 1))


def _mask(seen: Tensor | SeenChunk | None, lo: int, hi: int) -> Tensor | None:
    if seen is None:
        return None
    return seen(lo, hi) if callable(seen) else seen[:, lo:hi]


class _ChunkedCE(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, h, items, target, seen, chunk, rows, cols, vals) -> Tensor:  # type: ignore[override]
        n = h.size(0)
        top = torch.full((n,), float("-inf"), dtype=h.dtype, device=h.device)  # running max
        total = torch.zeros(n, dtype=h.dtype, device=h.device)  # sum of exp(logit - top)
        for lo in range(0, items.size(0), chunk):
            hi = min(lo + chunk, items.size(0))
            logits = h @ items[lo:hi].T  # (N, w)
            _add_bias(logits, rows, cols, vals, lo, hi)
            mask = _mask(seen, lo, hi)
            if mask is not None:
                logits.masked_fill_(mask, float("-inf"))
            new = torch.maximum(top, logits.amax(1))
            safe = torch.where(torch.isinf(new), torch.zeros_like(new), new)  # all masked so far
            total = total * (top - safe).exp() + logits.sub_(safe[:, None]).exp_().sum(1)
            top = new
        lse = top + total.log()  # (N,) finite: a row's target is never masked
        pos = (h * items[target]).sum(1)  # (N,)
        if vals is not None:  # the target's own bias terms
            hit = cols == target[rows]
            pos = pos.index_add(0, rows[hit], vals[hit].to(pos.dtype))
        ctx.save_for_backward(h, items, target, lse)
        ctx.bias = (rows, cols, vals)
        ctx.seen, ctx.chunk = seen, chunk
        return (lse - pos).mean()

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        h, items, target, lse = ctx.saved_tensors
        scale = grad / h.size(0)
        gh = torch.zeros_like(h) if ctx.needs_input_grad[0] else None
        gi = torch.empty_like(items) if ctx.needs_input_grad[1] else None
        rows, cols, vals = ctx.bias
        gv = torch.zeros_like(vals) if vals is not None and ctx.needs_input_grad[7] else None
        for lo in range(0, items.size(0), ctx.chunk):
            hi = min(lo + ctx.chunk, items.size(0))
            part = items[lo:hi]
            p = h @ part.T  # (N, w) logits again, then the softmax in place
            _add_bias(p, rows, cols, vals, lo, hi)
            mask = _mask(ctx.seen, lo, hi)
            if mask is not None:
                p.masked_fill_(mask, float("-inf"))
            p.sub_(lse[:, None]).exp_()
            tr = torch.nonzero((target >= lo) & (target < hi)).flatten()
            p[tr, target[tr] - lo] -= 1.0
            p.mul_(scale)
            if gv is not None:  # d loss / d bias term = the softmax gradient at its logit
                sel = torch.nonzero((cols >= lo) & (cols < hi)).flatten()
                gv[sel] = p[rows[sel], cols[sel] - lo].to(gv.dtype)
            if gh is not None:
                gh.addmm_(p, part)
            if gi is not None:
                torch.mm(p.T, h, out=gi[lo:hi])
        return gh, gi, None, None, None, None, None, gv


def _add_bias(logits: Tensor, rows, cols, vals, lo: int, hi: int) -> None:
    """Add the sparse terms whose columns fall in ``lo..hi-1`` to a chunk's logits."""
    if vals is None:
        return
    sel = torch.nonzero((cols >= lo) & (cols < hi)).flatten()
    logits.index_put_((rows[sel], cols[sel] - lo), vals[sel].to(logits.dtype), accumulate=True)
