"""Which torch device a config's ``device`` (or ``load_run(device=...)``) means."""

from __future__ import annotations

import re

import torch

from data_builders.errors import DataError

_NAMES = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cpu``; ``cuda`` or ``cuda:N``, which need a
    CUDA device. Anything else is a :class:`DataError` naming the valid choices."""
    if not isinstance(name, str) or not _NAMES.fullmatch(name):
        raise DataError(f"unknown device {name!r}", hint="use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(
            f"device={name} but no CUDA device is available", hint="use device='auto' or 'cpu'"
        )
    return torch.device(name)
