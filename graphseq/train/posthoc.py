"""Choices made on validation after training: buffers of a model's scorer (the item–item
graph's fusion weight and decay; EASE's λ, ItemKNN's k and shrinkage, the history decay)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn


def choose_on_validation(
    target: nn.Module, valid_score: Callable[[], float], settings: Sequence[dict[str, float]]
) -> dict[str, Any]:
    """Try every setting of ``target``'s buffers on validation and keep the best.

    ``valid_score`` evaluates the model as it stands (valid NDCG@10). The first setting wins
    ties (put the neutral one first: no fusion). Returns the choice, its score and the grid.
    """
    grid: dict[str, float] = {}
    best: tuple[float, dict[str, float]] = (float("-inf"), dict(settings[0]))
    for setting in settings:
        for name, value in setting.items():
            getattr(target, name).fill_(value)
        key = ",".join(f"{k}={v:g}" for k, v in setting.items())
        grid[key] = score = valid_score()
        if score > best[0]:
            best = (score, dict(setting))
    for name, value in best[1].items():
        getattr(target, name).fill_(value)
    return {**best[1], "valid_NDCG@10": best[0], "grid": grid}


def choose_plan(
    plan: Sequence[tuple[nn.Module, Sequence[dict[str, float]], str]],
    valid_score: Callable[[], float],
    reset: bool = False,
) -> dict[str, dict[str, Any]]:
    """Every step of a post-training plan (``graphseq.models.registry.posthoc_plan``), in
    order, each chosen on validation: ``{metrics.json key: choice}``. ``reset`` first puts
    every step back on its first (neutral) setting, as a freshly trained model has them, so
    a finished run's choices can be made again after a scoring change."""
    if reset:
        for target, settings, _ in plan:
            for name, value in settings[0].items():
                getattr(target, name).fill_(value)
    return {key: choose_on_validation(t, valid_score, settings) for t, settings, key in plan}


def fusion_settings(weights: Sequence[float], decays: Sequence[float]) -> list[dict[str, float]]:
    """Weight 0 (no fusion) first, where the decay is moot; then every weight × decay."""
    out = [{"weight": 0.0, "decay": float(decays[0])}]
    return out + [
        {"weight": float(w), "decay": float(d)}
        for w in sorted(set(weights) - {0.0})
        for d in decays
    ]


def tune_item_graph(
    model: nn.Module,
    valid_score: Callable[[], float],
    weights: Sequence[float],
    decays: Sequence[float],
) -> dict[str, Any]:
    """The item–item graph fusion's weight and decay on validation (``{}`` without one)."""
    ig = getattr(model, "item_graph", None)
    if ig is None:
        return {}
    return choose_on_validation(ig, valid_score, fusion_settings(weights, decays))
