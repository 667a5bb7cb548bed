"""Choices made on validation after training: the settings of a model's tunable scorer parts
(the item–item graph's fusion weight and decay; EASE's λ, ItemKNN's k and shrinkage and their
history decay; the own-history pointer's calibration). Each part declares its grid
(``posthoc_grid()``) and the ``metrics.json`` key it is reported under (``posthoc_key``);
:meth:`Recommender.posthoc_parts` gives them in the order they are chosen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

Plan = list[tuple[nn.Module, list[dict[str, float]], str]]  # (part, settings, metrics key)


def plan_of(model: nn.Module) -> Plan:
    """What validation chooses after training, in order: ``(part whose buffers are set, the
    settings to try (the first wins ties), metrics.json key)`` for each tunable part."""
    return [(p, p.posthoc_grid(), p.posthoc_key) for p in model.posthoc_parts()]


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
    plan: Plan, valid_score: Callable[[], float], reset: bool = False
) -> dict[str, dict[str, Any]]:
    """Every step of a post-training plan (:func:`plan_of`), in order, each chosen on
    validation: ``{metrics.json key: choice}``. ``reset`` first puts every step back on its
    first (neutral) setting, as a freshly trained model has them, so a finished run's
    choices can be made again after a scoring change."""
    if reset:
        for target, settings, _ in plan:
            for name, value in settings[0].items():
                getattr(target, name).fill_(value)
    return {key: choose_on_validation(t, valid_score, settings) for t, settings, key in plan}
