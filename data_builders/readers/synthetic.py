"""Compatibility path: the synthetic generator lives in :mod:`data_builders.synthetic` and its
file writer/reader in :mod:`data_builders.synthetic_io` (it is not a reader)."""

from data_builders.synthetic import SyntheticSpec, generate, spec_for_events
from data_builders.synthetic_io import EVENT_COLUMNS, read_synthetic, write_synthetic

__all__ = [
    "EVENT_COLUMNS",
    "SyntheticSpec",
    "generate",
    "read_synthetic",
    "spec_for_events",
    "write_synthetic",
]
