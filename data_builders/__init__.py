"""Readers for behavior logs and the builder that turns them into a PyG ``HeteroData`` graph."""

from data_builders.errors import DataError
from data_builders.log import CanonicalLog

__all__ = ["CanonicalLog", "DataError"]
