"""Type aliases for node and edge types, and the string key an edge type has in files."""

from __future__ import annotations

NodeType = str
EdgeType = tuple[str, str, str]


def edge_key(edge_type: EdgeType) -> str:
    """``("user", "buy", "item")`` → ``"user,buy,item"`` (the key used in files and reports)."""
    return ",".join(edge_type)


def parse_edge_key(key: str) -> EdgeType:
    """Inverse of :func:`edge_key`."""
    src, rel, dst = key.split(",")
    return (src, rel, dst)
