"""``python -m graphseq``: the same command line as the ``graphseq`` console script."""

from graphseq.cli import entry

entry()
