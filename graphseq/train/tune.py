"""Choices made on validation after training: the item–item graph's fusion weight and decay."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphseq.models.base import Recommender


def tune_item_graph(
    model: Recommender,
    valid_score: Callable[[], float],
    weights: Sequence[float],
    decays: Sequence[float],
) -> dict[str, Any]:
    """Try every (weight, decay) on validation and keep the best on ``model.item_graph``.

    ``valid_score`` evaluates the model as it stands (valid NDCG@10). Weight 0 (no fusion) is
    tried first and kept on ties, so fusion is used only where validation prefers it. Returns
    ``{}`` for models without an item graph, else the choice and the whole grid.
    """
    ig = getattr(model, "item_graph", None)
    if ig is None:
        return {}
    grid: dict[str, float] = {}
    best = (float("-inf"), 0.0, float(decays[0]))
    for w in sorted(set(weights) | {0.0}):
        for decay in decays[:1] if w == 0.0 else decays:  # decay is moot without fusion
            ig.weight.fill_(w)
            ig.decay.fill_(decay)
            grid[f"weight={w:g},decay={decay:g}"] = score = valid_score()
            if score > best[0]:
                best = (score, w, float(decay))
    ig.weight.fill_(best[1])
    ig.decay.fill_(best[2])
    return {"weight": best[1], "decay": best[2], "valid_NDCG@10": best[0], "grid": grid}
