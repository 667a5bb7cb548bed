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
