"""graphseq: graph-neural-network recommendation from behavior logs."""

__version__ = "0.1.0"
