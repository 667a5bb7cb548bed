"""Chunked full softmax and the chunked seen mask equal the fused one-buffer path; gBCE by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from graphseq.graph.sequences import EarlierTargets, SeqBatch, earlier_targets
from graphseq.nn.losses import full_softmax_ce
from graphseq.nn.softmax import chunked_softmax_ce, softmax_chunk


def _seq(seed: int = 0, B: int = 5, L: int = 9, num_items: int = 23):
    g = torch.Generator().manual_seed(seed)
    length = torch.randint(2, L + 1, (B,), generator=g)
    mask = torch.arange(L)[None] < length[:, None]
    item = torch.where(mask, torch.randint(num_items, (B, L), generator=g), num_items)
    is_target = mask & (torch.rand(B, L, generator=g) < 0.7)
    seq = SeqBatch(item, torch.zeros_like(item), torch.zeros_like(item), is_target, mask)
    inp, label, use = seq.shift()
    return inp, label[use], use, num_items


def _brute_seen(inp: SeqBatch, use: Tensor, label: Tensor, num_items: int) -> Tensor:
    """The definition, one position at a time."""
    rows = []
    for b, t in zip(*use.nonzero(as_tuple=True)):
        row = torch.zeros(num_items, dtype=torch.bool)
        for s in range(int(t) + 1):
            if inp.mask[b, s] and inp.is_target[b, s]:
                row[inp.item[b, s]] = True
        rows.append(row)
    seen = torch.stack(rows)
    seen[torch.arange(len(label)), label] = False
    return seen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_earlier_targets_by_columns_equals_the_definition(seed):
    inp, label, use, n = _seq(seed)
    want = _brute_seen(inp, use, label, n)
    assert want.any()  # the fixture has earlier targets to find
    lazy = EarlierTargets(inp, use, label, n)
    assert torch.equal(earlier_targets(inp, use, label, n), want)
    for lo, hi in [(0, n), (0, 1), (3, 10), (10, n), (22, 23)]:
        assert torch.equal(lazy.columns(lo, hi), want[:, lo:hi])
    N = len(label)
    for lo, hi in [(0, N), (0, 1), (2, 5), (N - 1, N)]:
        assert torch.equal(lazy.rows(lo, hi), want[lo:hi])
    cols = torch.tensor([4, 4, 0, 22, 7, 19, 4])  # repeats, any order
    got = lazy.select(cols)
    # select may keep a row's own label True (sampled losses drop accidental hits anyway)
    ref = _brute_seen(inp, use, label, n) | (
        F.one_hot(label, n).bool() & _label_seen_before(inp, use, label)
    )
    assert torch.equal(got, ref[:, cols])
    assert lazy.select(torch.zeros(0, dtype=torch.long)).shape == (len(label), 0)


def _label_seen_before(inp, use, label):
    """(N, 1) whether a position's label is itself one of its earlier targets."""
    out = []
    for (b, t), lab in zip(zip(*use.nonzero(as_tuple=True)), label):
        prev = inp.item[b, : t + 1][inp.is_target[b, : t + 1] & inp.mask[b, : t + 1]]
        out.append(bool((prev == lab).any()))
    return torch.tensor(out)[:, None]


def _problem(seed: int, masked: bool, N: int = 11, n_items: int = 37, d: int = 5):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, d, generator=g, dtype=torch.float64)
    items = torch.randn(n_items, d, generator=g, dtype=torch.float64)
    target = torch.randint(n_items, (N,), generator=g)
    seen = None
    if masked:
        seen = torch.rand(N, n_items, generator=g) < 0.5
        seen[0, :] = True  # a row whose first chunks are all masked (running max is -inf)
        seen[torch.arange(N), target] = False
    return h, items, target, seen


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("chunk", [1, 4, 10, 36])
def test_chunked_ce_equals_the_fused_ce_in_value_and_gradient(masked, chunk):
    h, items, target, seen = _problem(3, masked)
    if masked:
        target[0] = 36  # row 0: only its target, in the last chunk, is unmasked
        seen[0, :] = True
        seen[0, 36] = False
    h1, i1 = h.clone().requires_grad_(), items.clone().requires_grad_()
    h2, i2 = h.clone().requires_grad_(), items.clone().requires_grad_()
    ref = full_softmax_ce(h1, i1, target, seen)
    got = chunked_softmax_ce(h2, i2, target, seen, chunk)  # the (N, I) mask, sliced
    (3 * ref).backward()
    (3 * got).backward()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(h2.grad, h1.grad)
    torch.testing.assert_close(i2.grad, i1.grad)
    logits = h @ items.T  # and the textbook definition
    plain = F.cross_entropy(logits if seen is None else logits.masked_fill(seen, -math.inf), target)
    torch.testing.assert_close(got.detach(), plain)
    if masked:  # the mask given chunk by chunk, as the objective does
        calls = []

        def by_chunk(lo: int, hi: int):
            calls.append((lo, hi))
            return seen[:, lo:hi]

        h3, i3 = h.clone().requires_grad_(), items.clone().requires_grad_()
        (3 * chunked_softmax_ce(h3, i3, target, by_chunk, chunk)).backward()
        torch.testing.assert_close(h3.grad, h1.grad)
        torch.testing.assert_close(i3.grad, i1.grad)
        n_chunks = -(-37 // chunk)
        assert len(calls) == 2 * n_chunks  # forward and backward, one chunk at a time
        assert max(hi - lo for lo, hi in calls) == chunk


def test_chunked_ce_with_the_lazy_seen_mask_matches_the_full_mask():
    inp, label, use, n = _seq(4, B=6, L=12, num_items=29)
    lazy = EarlierTargets(inp, use, label, n)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(len(label), 4, generator=g, dtype=torch.float64, requires_grad=True)
    items = torch.randn(n, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ref = full_softmax_ce(h, items, label, earlier_targets(inp, use, label, n))
    gh, gi = torch.autograd.grad(ref, (h, items))
    got = chunked_softmax_ce(h, items, label, lazy.columns, 6)
    ch, ci = torch.autograd.grad(got, (h, items))
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(ch, gh)
    torch.testing.assert_close(ci, gi)


def test_softmax_chunk_bounds_the_logits_held():
    assert softmax_chunk(100, 1000, 0) == 0  # 0: always one buffer
    assert softmax_chunk(100, 1000, 100_000) == 0  # fits: the fused path
    assert softmax_chunk(100, 1000, 99_999) == 999
    assert softmax_chunk(1000, 10**6, 2**27) == 134_217
    assert softmax_chunk(10**9, 10, 5) == 1


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_chunked_ce_with_sparse_bias_equals_the_fused_path(chunk):
    """Own-history terms (sparse logit terms, repeats adding up, one on a target, one on a
    masked item) in chunks: the fused path's value and gradients, ``values`` included."""
    g = torch.Generator().manual_seed(4)
    h = torch.randn(5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    items = torch.randn(7, 4, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.tensor([0, 3, 6, 2, 2])
    rows, cols = torch.tensor([0, 0, 1, 4, 4, 2, 1]), torch.tensor([3, 3, 3, 2, 5, 1, 6])
    vals = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True)
    seen = torch.zeros(5, 7, dtype=torch.bool)
    seen[1, 5] = seen[2, 1] = True
    got = chunked_softmax_ce(h, items, target, seen, chunk, (rows, cols, vals))
    want = full_softmax_ce(h, items, target, seen, (rows, cols, vals))
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad(got, (h, items, vals)),
                    torch.autograd.grad(want, (h, items, vals))):  # fmt: skip
        torch.testing.assert_close(a, b)
