"""Which torch device a config's ``device`` means."""

from __future__ import annotations

import torch

from data_builders.errors import DataError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError(
            "device=cuda but no CUDA device is available", hint="use device=auto or cpu"
        )
    return torch.device(name)
