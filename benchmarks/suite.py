"""What every suite's command line shares: ``--variants``, ``--list``, ``--tag``, ``--results``,
and writing each result as an envelope (:mod:`benchmarks.envelope`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.envelope import RESULTS, command_line, write_result


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The suite's docstring as written, and every flag's default."""


def make_parser(suite: str, doc: str) -> argparse.ArgumentParser:
    """The suite's parser with the shared flags; ``doc`` (the suite's docstring) is its
    description."""
    p = argparse.ArgumentParser(
        prog=f"python -m benchmarks {suite}",
        description=doc.strip().replace("``", "`"),
        formatter_class=_Help,
    )
    p.add_argument("--variants", nargs="+", metavar="NAME", help="run these variants only")
    p.add_argument("--list", action="store_true", help="print the variants and stop")
    p.add_argument("--tag", default="", help="results go to <variant>-<tag>.json")
    p.add_argument("--results", type=Path, default=RESULTS, help="results root")
    return p


def pick(
    p: argparse.ArgumentParser, known: Iterable[str], chosen: Sequence[str] | None
) -> list[str]:
    """The chosen variants in declaration order (all when none chosen); unknown names are a
    usage error that lists the valid ones."""
    known = list(known)
    if not chosen:
        return known
    unknown = [n for n in chosen if n not in known]
    if unknown:
        p.error(f"unknown variants {unknown}; valid: {', '.join(repr(k) for k in known)}")
    return [n for n in known if n in chosen]


def result_name(base: str, tag: str = "") -> str:
    """``base`` or ``base-tag``."""
    return f"{base}-{tag}" if tag else base


def print_list(rows: Iterable[tuple[str, str]]) -> None:
    """``--list``: one ``name  description`` line per variant, on stdout."""
    rows = list(rows)
    width = max(len(n) for n, _ in rows)
    for name, about in rows:
        print(f"{name:<{width}}  {about}".rstrip())


def save(
    suite: str,
    name: str,
    data: Any,
    argv: Sequence[str],
    results: Path,
    threads: int | None = None,
) -> Path:
    """Write one result envelope and say where it went (stderr)."""
    path = write_result(suite, name, data, command_line(argv, suite), results, threads)
    print(f"wrote {path}", file=sys.stderr)
    return path
