"""The own-earlier-edges term: training terms and scores by hand, learned on planted data."""

from __future__ import annotations

import math

import torch

from graphseq.graph.sequences import SeqBatch
from graphseq.nn.history import STEP, OwnHistory


def _seq():
    # one row: items 4 (cart), 2 (buy, a target), 4 (cart), 1 (fav); behaviors 0 buy, 1 cart, 2 fav
    item = torch.tensor([[4, 2, 4, 1]])
    beh = torch.tensor([[1, 0, 1, 2]])
    tgt = torch.tensor([[False, True, False, False]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    return SeqBatch(item, beh, torch.zeros_like(item), tgt, mask)


def test_training_terms_by_hand():
    m = OwnHistory(3, decay=2.0)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.5, 1.0, 3.0, 9.0]) / STEP)  # padding: never used
    inp = _seq()
    use = torch.tensor([[False, True, False, True]])  # positions 1 and 3 are scored
    rows, items, vals = m.train_terms(inp, use)
    # position 1: event 0 (cart 4, age 1); the buy at position 1 is a target: left out
    # position 3: events 0 (cart 4, age 3), 2 (cart 4, age 1), 3 (fav 1, age 0)
    assert rows.tolist() == [0, 1, 1, 1] and items.tolist() == [4, 4, 4, 1]
    e = math.exp
    want = [1.0 * e(-1 / 2), 1.0 * e(-3 / 2), 1.0 * e(-1 / 2), 3.0]
    torch.testing.assert_close(vals, torch.tensor(want))
    with torch.no_grad():
        scores = m(inp, num_items=6)  # whole history, ages from the last event
    assert scores.shape == (1, 6)
    torch.testing.assert_close(scores[0, 4], torch.tensor(e(-3 / 2) + e(-1 / 2)))
    assert float(scores[0, 1]) == 3.0 and float(scores[0, 2]) == 0.0  # a bought item: 0


def test_a_weight_starts_at_zero_and_learns_to_point_at_carted_items():
    torch.manual_seed(0)
    m = OwnHistory(2)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    for _ in range(30):  # the next item is always the earlier carted one
        inp = SeqBatch(torch.tensor([[3, 5]]), torch.tensor([[1, 0]]), torch.zeros(1, 2, dtype=torch.long),
                       torch.tensor([[False, True]]), torch.ones(1, 2, dtype=torch.bool))  # fmt: skip
        rows, items, vals = m.train_terms(inp, torch.tensor([[True, False]]))
        logits = torch.zeros(1, 8).index_put((rows, items), vals, accumulate=True)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = m.weights().detach()
    assert float(w[1]) > 1.0 and float(w[0]) == 0.0  # cart learned, buy untouched


def test_training_terms_equal_the_definition_on_random_batches():
    """Every used position against every earlier-or-equal event, one at a time: the same
    terms in the same order (row, then position), with and without the targets."""
    g = torch.Generator().manual_seed(0)
    B, L = 6, 11
    length = torch.randint(0, L + 1, (B,), generator=g)
    mask = torch.arange(L)[None] < length[:, None]
    item = torch.where(mask, torch.randint(9, (B, L), generator=g), 9)
    beh = torch.where(mask, torch.randint(3, (B, L), generator=g), 3)
    tgt = mask & (beh == 0)
    inp = SeqBatch(item, beh, torch.zeros_like(item), tgt, mask)
    use = mask & (torch.rand(B, L, generator=g) < 0.6)
    for skip in (True, False):
        m = OwnHistory(3, decay=3.0, skip_targets=skip)
        with torch.no_grad():
            m.weight.copy_(torch.tensor([0.5, 1.0, 3.0, 9.0]) / STEP)
        want = []
        for n, (b, t) in enumerate(zip(*use.nonzero(as_tuple=True))):
            for s in range(int(t) + 1):
                if mask[b, s] and not (skip and tgt[b, s]):
                    want.append((n, int(item[b, s]), int(beh[b, s]), int(t) - s))
        rows, items, vals = m.train_terms(inp, use)
        assert rows.tolist() == [w[0] for w in want] and items.tolist() == [w[1] for w in want]
        ref = [float(m.weights()[w[2]] * math.exp(-w[3] / 3.0)) for w in want]
        torch.testing.assert_close(vals, torch.tensor(ref))
    none = SeqBatch(item, beh, torch.zeros_like(item), mask, mask)  # every event a target
    assert OwnHistory(3).train_terms(none, use)[0].numel() == 0
