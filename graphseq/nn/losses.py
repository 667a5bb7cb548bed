"""Losses and negative samplers. Scores are dot products (see ``heads``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

SeenRows = Callable[[int, int], Tensor]  # (lo, hi) -> (hi - lo, I) bool mask of rows lo..hi-1
CHUNK_LOGITS = 2**22  # logits of one row chunk: 16 MiB of float32, within a CPU's L3 cache


def full_softmax_ce(
    h: Tensor,
    items: Tensor,
    target: Tensor,
    seen: Tensor | SeenRows | None = None,
    bias: tuple[Tensor, Tensor, Tensor] | None = None,
    row_chunk: int = 0,
) -> Tensor:
    """Cross-entropy over the whole catalogue (gSASRec, https://arxiv.org/abs/2308.07192),
    the items where ``seen`` is True left out of each row's softmax (never its target).
    ``bias`` = (rows, cols, values) adds sparse terms to the logits (repeats add up), with a
    gradient for ``values`` (e.g. :class:`graphseq.nn.history.OwnHistory`).

    Equals ``F.cross_entropy((h @ items.T).masked_fill(seen, -inf), target)`` in value and
    gradient, in one pass over ``row_chunk`` rows at a time (0: about :data:`CHUNK_LOGITS` logits
    a chunk): each chunk's logits are formed in one reused buffer that stays in cache, masked,
    turned into the softmax and its gradient in place, and multiplied into the gradients of
    ``h`` and ``items`` at once; backward only scales them. Three matmuls per chunk, no
    (N, I) tensor (the one-buffer version it replaces spent about as long again on the
    buffer's memory traffic as on its matmuls). ``seen``: an (N, I) bool tensor, or a
    function ``(lo, hi) → (hi - lo, I)`` giving the mask of rows ``lo..hi-1``. Under CUDA
    autocast it runs in float32 (a bfloat16 softmax over thousands of items loses the
    target's probability).

    Shapes: ``h`` (N, d), ``items`` (I, d), ``target`` (N,), ``seen`` (N, I) bool, ``bias``
    three (M,) tensors → scalar.
    """
    r, c, v = bias if bias is not None else (None, None, None)
    chunk = row_chunk if row_chunk > 0 else max(1, CHUNK_LOGITS // max(items.size(0), 1))
    return _FullSoftmaxCE.apply(h, items, target, seen, chunk, r, c, v)


class _FullSoftmaxCE(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, h, items, target, seen, chunk, rows, cols, vals):  # type: ignore[override]
        n = h.size(0)
        want = ctx.needs_input_grad
        gh = torch.empty_like(h) if want[0] else None
        gi = torch.zeros_like(items) if want[1] else None
        gv = torch.zeros_like(vals) if vals is not None and want[7] else None
        if vals is not None:  # the terms by row, so that each chunk takes a slice of them
            order = torch.argsort(rows, stable=True)
            rows, cols, vals = rows[order], cols[order], vals[order].to(h.dtype)
            at = torch.searchsorted(rows, torch.arange(0, n + chunk, chunk, device=rows.device))
        buf = h.new_empty(min(chunk, n), items.size(0))
        losses = []
        for k, lo in enumerate(range(0, n, chunk)):
            hi = min(lo + chunk, n)
            x = torch.mm(h[lo:hi], items.T, out=buf[: hi - lo])  # (m, I) logits
            if vals is not None:
                a, b = int(at[k]), int(at[k + 1])
                x.index_put_((rows[a:b] - lo, cols[a:b]), vals[a:b], accumulate=True)
            mask = None if seen is None else seen(lo, hi) if callable(seen) else seen[lo:hi]
            if mask is not None:
                x.masked_fill_(mask, float("-inf"))
            ar = torch.arange(hi - lo, device=h.device)
            t = target[lo:hi]
            pos = x[ar, t]  # (m,) a row's target is never masked
            top = x.amax(1)  # (m,)
            total = x.sub_(top[:, None]).exp_().sum(1)  # exp(logit - max) in place; masked → 0
            losses.append(total.log().add_(top).sub_(pos))
            if gh is None and gi is None and gv is None:
                continue
            x.div_(total[:, None])  # the softmax, then d loss / d logits (times n)
            x[ar, t] -= 1.0
            if gv is not None:  # d loss / d bias term = the softmax gradient at its logit
                gv[order[a:b]] = x[rows[a:b] - lo, cols[a:b]].to(gv.dtype)
            if gh is not None:
                torch.mm(x, items, out=gh[lo:hi])
            if gi is not None:
                gi.addmm_(x.T, h[lo:hi])
        ctx.grads = tuple(None if g is None else g.div_(n) for g in (gh, gi, gv))
        return torch.cat(losses).mean() if losses else h.sum() * 0.0

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        gh, gi, gv = (None if g is None else g * grad for g in ctx.grads)
        return gh, gi, None, None, None, None, None, gv


def negative_scores(h: Tensor, items: Tensor, neg: Tensor, use: Tensor | None = None) -> Tensor:
    """(N, S) each row's scores of its negatives: ``neg`` (S,) shared by every row, or (B, S)
    one set per sequence, with ``use`` (B, L) the positions the N rows come from (then one
    batched matmul over (B, L, d); no (N, S, d) gather). Shapes: ``h`` (N, d), ``items`` (I, d)."""
    if neg.dim() == 1:
        return h @ items[neg].T
    if use is None:
        raise ValueError("per-sequence negatives (B, S) need `use` (B, L)")
    states = h.new_zeros(*use.shape, h.size(1))  # (B, L, d)
    states[use] = h
    return torch.bmm(states, items[neg].transpose(1, 2))[use]  # (N, S)


def row_negatives(neg: Tensor, use: Tensor | None = None) -> Tensor:
    """(N, S), or (1, S) when shared, the negative ids each row sees (for masks and logQ)."""
    return neg[None, :] if neg.dim() == 1 else neg[use.nonzero(as_tuple=True)[0]]


def sampled_terms(
    bias: tuple[Tensor, Tensor, Tensor],
    target: Tensor,
    neg: Tensor,
    use: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Sparse logit terms ``bias`` = (rows, cols, values) (as :func:`full_softmax_ce` takes
    them, e.g. :class:`graphseq.nn.history.OwnHistory`) placed on a sampled softmax's
    logits: ``(pos (N,), negs (N, S))``, each term added to its row's positive when ``col`` is
    the row's target, and to every negative slot of the row that holds ``col`` (repeats add
    up; terms on items the row neither targets nor samples fall out, as those logits are not
    computed). ``neg`` (S,) shared or (B, S) per sequence with ``use`` (B, L), as in
    :func:`sampled_softmax_ce`; the result is differentiable in ``values``."""
    rows, cols, vals = bias
    n = len(target)
    pos = vals.new_zeros(n).index_add(0, rows, vals * (cols == target[rows]).to(vals.dtype))
    s = neg.size(-1)
    if neg.dim() == 1:  # one set: the term's key is its item
        keys, want = neg, cols
    else:  # one set per sequence: key = sequence · span + item
        if use is None:
            raise ValueError("per-sequence negatives (B, S) need `use` (B, L)")
        span = int(torch.cat([cols, neg.flatten()]).max()) + 1
        seq_of_row = use.nonzero(as_tuple=True)[0]  # (N,)
        keys = (torch.arange(neg.size(0), device=neg.device)[:, None] * span + neg).flatten()
        want = seq_of_row[rows] * span + cols
    order = torch.argsort(keys)
    sorted_keys = keys[order]
    lo = torch.searchsorted(sorted_keys, want)
    hi = torch.searchsorted(sorted_keys, want, right=True)
    count = hi - lo  # slots of the row's set holding the term's item (usually 0 or 1)
    term = torch.repeat_interleave(torch.arange(len(want), device=want.device), count)
    first = torch.repeat_interleave(lo, count)
    offset = torch.arange(len(term), device=want.device) - torch.repeat_interleave(
        torch.cumsum(count, 0) - count, count
    )
    slot = order[first + offset] % s  # the slot within the row's set
    negs = vals.new_zeros(n, s).index_put((rows[term], slot), vals[term], accumulate=True)
    return pos, negs


def sampled_softmax_ce(
    h: Tensor,
    items: Tensor,
    target: Tensor,
    neg: Tensor,
    log_q: Tensor | None = None,
    seen: Tensor | None = None,
    use: Tensor | None = None,
    bias: tuple[Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    """Sampled softmax with logQ correction (Yi et al. 2019). ``neg`` (S,) negatives shared by
    every row, or (B, S) one set per sequence (with ``use``, see :func:`negative_scores`);
    ``log_q`` (I,) log sampling probabilities (``None``: uniform, no correction needed);
    ``seen`` (N, S) True where a negative is to be left out of a row's softmax (e.g. the
    row's earlier targets, as the full-softmax ``seen`` mask). Accidental hits (a negative
    equal to the row's target) are always left out. ``bias``: sparse logit terms on the
    scored items (:func:`sampled_terms`), e.g. the own-history pointer.

    Shapes: ``h`` (N, d), ``items`` (I, d), ``target`` (N,) → scalar.
    """
    pos, negs = _sampled_logits(h, items, target, neg, use, bias)
    pos = pos[:, None]
    ids = row_negatives(neg, use)  # (N or 1, S)
    if log_q is not None:
        pos = pos - log_q[target][:, None]
        negs = negs - log_q[ids]
    drop = ids == target[:, None]  # (N, S) accidental hits
    if seen is not None:
        drop = drop | seen
    negs = negs.masked_fill(drop, float("-inf"))
    logits = torch.cat([pos, negs], 1)
    return F.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long, device=h.device))


def _sampled_logits(
    h: Tensor,
    items: Tensor,
    target: Tensor,
    neg: Tensor,
    use: Tensor | None,
    bias: tuple[Tensor, Tensor, Tensor] | None,
) -> tuple[Tensor, Tensor]:
    """(N,) positive and (N, S) negative logits, ``bias`` terms included."""
    pos = (h * items[target]).sum(-1)  # (N,)
    negs = negative_scores(h, items, neg, use)  # (N, S)
    if bias is not None:
        bp, bn = sampled_terms(bias, target, neg, use)
        pos, negs = pos + bp.to(pos.dtype), negs + bn.to(negs.dtype)
    return pos, negs


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


class _GatheredBPR(torch.autograd.Function):
    """BPR on rows gathered from one table, with a hand-written backward: three
    ``index_add_`` calls instead of a gather's scatter plus slice/mul backward nodes."""

    @staticmethod
    def forward(ctx, table: Tensor, u: Tensor, i: Tensor, j: Tensor) -> Tensor:  # type: ignore[override]
        eu, diff = table[u], table[i] - table[j]  # (B, d)
        x = (eu * diff).sum(-1)  # (B,) pos - neg score
        ctx.save_for_backward(u, i, j, eu, diff, x)
        ctx.shape = table.shape
        return -F.logsigmoid(x).mean()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        u, i, j, eu, diff, x = ctx.saved_tensors
        g = (-torch.sigmoid(-x) * (grad / len(x)))[:, None]  # (B, 1) dloss/dx
        gu = g * eu
        out = torch.zeros(ctx.shape, dtype=eu.dtype, device=eu.device)
        out.index_add_(0, u, g * diff).index_add_(0, i, gu).index_add_(0, j, -gu)
        return out, None, None, None


def gathered_bpr(table: Tensor, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """``bpr_loss`` of ``table[users]·table[pos]`` against ``table[users]·table[neg]``, fused:
    same value and gradient, about half the backward time of the autograd graph.

    Shapes: ``table`` (N, d); ``users``, ``pos``, ``neg`` (B,) row indices → scalar.
    """
    return _GatheredBPR.apply(table, users, pos, neg)


def gathered_sq_norm(table: Tensor, rows: Tensor) -> Tensor:
    """``table[rows].pow(2).sum()`` with an ``index_add_`` backward. Shapes: (N, d), (B,) → scalar."""
    return _GatheredSqNorm.apply(table, rows)


class _GatheredSqNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor) -> Tensor:  # type: ignore[override]
        sel = table[rows]
        ctx.save_for_backward(rows, sel)
        ctx.shape = table.shape
        return sel.pow(2).sum()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        rows, sel = ctx.saved_tensors
        out = torch.zeros(ctx.shape, dtype=sel.dtype, device=sel.device)
        return out.index_add_(0, rows, sel * (2 * grad)), None
