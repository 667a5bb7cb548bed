"""Layers of the code base: which module may import which.

Every ``.py`` module of ``graphseq`` and ``data_builders`` is parsed with :mod:`ast` (nothing
is imported), and every ``import`` statement becomes an :class:`Edge` between two of those
modules, tagged with where it sits: ``module`` (runs on import; ``if``/``try`` and class
bodies included), ``function`` (runs on call) or ``type_checking`` (under
``if TYPE_CHECKING:``, never runs). Checked:

- ``data_builders`` imports nothing from ``graphseq``, wherever the import sits;
- the ``module`` edges have no cycle, and no ``type_checking`` edge would close one;
- the layer rules of :data:`FORBIDDEN`, on edges wherever they sit.

Names computed at run time (``importlib.import_module(name)``, as in ``graphseq.__getattr__``)
are not seen.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphseq", "data_builders")

Where = Literal["module", "function", "type_checking"]

_RUN_LAYER = ("graphseq.training", "graphseq.recommend", "graphseq.serve")
_APP_LAYER = ("graphseq.commands", "graphseq.cli")
# importer package -> the packages/modules it must never import (each matches its submodules)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "graphseq.models": (*_RUN_LAYER, *_APP_LAYER),
    "graphseq.nn": (*_RUN_LAYER, *_APP_LAYER, "graphseq.models"),
    "graphseq.graph": (*_RUN_LAYER, *_APP_LAYER, "graphseq.nn", "graphseq.models"),
    "graphseq.training": ("graphseq.recommend", "graphseq.serve", *_APP_LAYER),
}

# Violations of FORBIDDEN tolerated for now, as (importer, imported) pairs: none since the
# run-layer refactor; this set must only shrink.
KNOWN: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Source:
    """One module's text, and whether it is a package's ``__init__.py``."""

    text: str
    is_package: bool = False


@dataclass(frozen=True)
class Edge:
    """``importer`` imports ``imported`` (both dotted module names) at ``line``."""

    importer: str
    imported: str
    where: Where
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} -> {self.imported} ({self.where})"


def read_sources(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Source]:
    """Every ``.py`` file of ``packages`` under ``root``, by dotted module name."""
    out: dict[str, Source] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            out[name] = Source(path.read_text(encoding="utf-8"), is_package)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _statements(
    nodes: Iterable[ast.AST], where: Where
) -> Iterator[tuple[ast.Import | ast.ImportFrom, Where]]:
    """Every import statement under ``nodes``, with where it sits."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, where
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, "type_checking")
            yield from _statements(node.orelse, where)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner: Where = "type_checking" if where == "type_checking" else "function"
            yield from _statements(ast.iter_child_nodes(node), inner)
        else:
            yield from _statements(ast.iter_child_nodes(node), where)


def _land(name: str, modules: Collection[str], roots: Collection[str]) -> str | None:
    """The module of ours that importing ``name`` reaches: ``name`` itself or its longest
    prefix in ``modules`` (``pkg.mod.func`` → ``pkg.mod``); ``name`` as is when no prefix is
    (a module that does not exist, kept so that the rules still see it); ``None`` when
    ``name`` is third-party."""
    parts = name.split(".")
    if parts[0] not in roots:
        return None
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in modules:
            return ".".join(parts[:k])
    return name


def import_edges(sources: Mapping[str, Source]) -> list[Edge]:
    """Every import between two modules of ``sources`` (self-imports left out)."""
    roots = {m.split(".")[0] for m in sources}
    edges: list[Edge] = []
    for importer, src in sources.items():
        tree = ast.parse(src.text, filename=importer)
        for stmt, where in _statements(tree.body, "module"):
            names: list[str] = []
            if isinstance(stmt, ast.Import):
                names = [alias.name for alias in stmt.names]
            else:
                base = stmt.module or ""
                if stmt.level:
                    pkg = importer if src.is_package else importer.rpartition(".")[0]
                    for _ in range(stmt.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                for alias in stmt.names:  # `from pkg import mod` imports the module pkg.mod
                    sub = f"{base}.{alias.name}"
                    names.append(sub if sub in sources else base)
            for name in names:
                imported = _land(name, sources, roots)
                if imported is not None and imported != importer:
                    edges.append(Edge(importer, imported, where, stmt.lineno))
    return edges


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def foreign_imports(edges: Iterable[Edge], importer: str, imported: str) -> list[Edge]:
    """Edges from a module of package ``importer`` to one of package ``imported``."""
    return [e for e in edges if _within(e.importer, importer) and _within(e.imported, imported)]


def layer_violations(
    edges: Iterable[Edge], forbidden: Mapping[str, tuple[str, ...]] = FORBIDDEN
) -> list[Edge]:
    """Edges that break a rule of ``forbidden``."""
    return [
        e
        for e in edges
        for pkg, banned in forbidden.items()
        if _within(e.importer, pkg) and any(_within(e.imported, b) for b in banned)
    ]


def _graph(edges: Iterable[Edge], where: Collection[Where]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.where in where:
            graph.setdefault(e.importer, set()).add(e.imported)
            graph.setdefault(e.imported, set())
    return graph


def _reaches(graph: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A shortest path ``[start, ..., goal]`` in ``graph`` (at least one step), or None."""
    parent: dict[str, str] = {}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt == goal:
                path = [goal]
                while path[-1] != start or len(path) == 1:
                    path.append(parent[path[-1]])
                return path[::-1]
            todo.append(nxt)
    return None


def import_cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """One shortest cycle ``[a, b, ..., a]`` per strongly connected group of modules linked
    by ``module`` edges (the imports that run when a module is imported)."""
    graph = _graph(edges, ("module",))
    cycles: list[list[str]] = []
    seen: set[str] = set()
    for node in sorted(graph):
        if node in seen:
            continue
        cycle = _reaches(graph, node, node)
        if cycle is not None:
            group = {m for m in graph if _reaches(graph, node, m) and _reaches(graph, m, node)}
            seen |= group
            cycles.append(cycle)
    return cycles


def type_checking_back_edges(edges: Iterable[Edge]) -> list[tuple[Edge, list[str]]]:
    """``type_checking`` edges ``a -> b`` where ``b`` already imports ``a`` on import (through
    the path given): the cycle that ``TYPE_CHECKING`` hides."""
    edges = list(edges)
    graph = _graph(edges, ("module",))
    out = []
    for e in edges:
        if e.where == "type_checking":
            path = _reaches(graph, e.imported, e.importer)
            if path is not None:
                out.append((e, path))
    return out


def _pairs(edges: Iterable[Edge]) -> set[tuple[str, str]]:
    return {(e.importer, e.imported) for e in edges}


def _listing(edges: Iterable[Edge]) -> str:
    return "\n".join(sorted(map(str, edges)))


# --- the code base -------------------------------------------------------------------------


SOURCES = read_sources()
EDGES = import_edges(SOURCES)


def test_every_module_is_read() -> None:
    assert {"graphseq", "graphseq.models.registry", "data_builders.build"} <= set(SOURCES)
    assert "graphseq.typing" not in SOURCES  # its aliases live in data_builders.aliases
    assert any(e.where == "function" for e in EDGES)
    assert any(e.where == "type_checking" for e in EDGES)


def test_data_builders_imports_nothing_from_graphseq() -> None:
    bad = foreign_imports(EDGES, "data_builders", "graphseq")
    assert not bad, "data_builders must not import graphseq:\n" + _listing(bad)


def test_no_import_cycles() -> None:
    cycles = import_cycles(EDGES)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# annotation-only imports allowed to point back: each part names the config type its
# ``from_config`` reads, and ``graphseq.config`` is the union of the parts' key declarations
ANNOTATION_ONLY = {"graphseq.config"}


def test_no_cycle_hidden_under_type_checking() -> None:
    back = [(e, p) for e, p in type_checking_back_edges(EDGES) if e.imported not in ANNOTATION_ONLY]
    assert not back, "TYPE_CHECKING imports that close a cycle:\n" + "\n".join(
        f"{e}, while {' -> '.join(path)}" for e, path in back
    )


def test_layer_rules_only_known_violations() -> None:
    found = layer_violations(EDGES)
    new = [e for e in found if (e.importer, e.imported) not in KNOWN]
    assert not new, "imports that break a layer rule (see FORBIDDEN):\n" + _listing(new)


def test_known_violations_still_exist() -> None:
    gone = KNOWN - _pairs(layer_violations(EDGES))
    assert not gone, f"fixed, so remove from KNOWN: {sorted(gone)}"


# --- the detector itself, on planted modules ------------------------------------------------


PLANTED = {
    "graphseq": Source("", is_package=True),
    "graphseq.nn": Source("from graphseq.nn import heads\n", is_package=True),
    "graphseq.nn.heads": Source(
        "from typing import TYPE_CHECKING\n"
        "import torch\n"
        "from ..models import base\n"  # nn -> models: a layer violation
        "if TYPE_CHECKING:\n"
        "    from graphseq.training.run import Run\n"  # train imports heads on import
    ),
    "graphseq.models": Source("", is_package=True),
    "graphseq.models.base": Source(
        "import graphseq.nn.heads\n"  # with heads -> base: a cycle
        "def fit():\n"
        "    from graphseq.training import trainer\n"  # deferred, but still models -> train
    ),
    "graphseq.training": Source("", is_package=True),
    "graphseq.training.run": Source("from graphseq.models.base import fit\n"),
    "graphseq.training.trainer": Source("import graphseq.recommend.load_run\n"),
    "graphseq.recommend": Source(""),
    "data_builders": Source("", is_package=True),
    "data_builders.build": Source(
        "try:\n    from graphseq.nn.heads import Head\nexcept ImportError:\n    pass\n"
    ),
}


def test_detector_sees_every_kind_of_import() -> None:
    got = {(e.importer, e.imported, e.where, e.line) for e in import_edges(PLANTED)}
    assert got == {
        ("graphseq.nn", "graphseq.nn.heads", "module", 1),
        ("graphseq.nn.heads", "graphseq.models.base", "module", 3),
        ("graphseq.nn.heads", "graphseq.training.run", "type_checking", 5),
        ("graphseq.models.base", "graphseq.nn.heads", "module", 1),
        ("graphseq.models.base", "graphseq.training.trainer", "function", 3),
        ("graphseq.training.run", "graphseq.models.base", "module", 1),
        ("graphseq.training.trainer", "graphseq.recommend", "module", 1),
        ("data_builders.build", "graphseq.nn.heads", "module", 2),
    }  # `torch` is not ours


def test_detector_finds_planted_violations() -> None:
    edges = import_edges(PLANTED)
    assert _pairs(foreign_imports(edges, "data_builders", "graphseq")) == {
        ("data_builders.build", "graphseq.nn.heads")
    }
    assert import_cycles(edges) == [
        ["graphseq.models.base", "graphseq.nn.heads", "graphseq.models.base"]
    ]
    back = type_checking_back_edges(edges)
    assert [(str(e), path) for e, path in back] == [
        (
            "graphseq.nn.heads:5 -> graphseq.training.run (type_checking)",
            ["graphseq.training.run", "graphseq.models.base", "graphseq.nn.heads"],
        )
    ]
    assert _pairs(layer_violations(edges)) == {
        ("graphseq.nn.heads", "graphseq.models.base"),
        ("graphseq.nn.heads", "graphseq.training.run"),  # under TYPE_CHECKING, still a dependency
        ("graphseq.models.base", "graphseq.training.trainer"),
        ("graphseq.training.trainer", "graphseq.recommend"),
    }


def test_detector_passes_a_clean_module_set() -> None:
    clean = {
        "graphseq": Source("", is_package=True),
        "graphseq.nn": Source("from . import heads\n", is_package=True),
        "graphseq.nn.heads": Source("import torch\n"),
        "graphseq.models": Source("from graphseq.nn.heads import Head\n", is_package=True),
        "graphseq.training": Source("from graphseq import models\n", is_package=True),
    }
    edges = import_edges(clean)
    assert _pairs(edges) == {
        ("graphseq.nn", "graphseq.nn.heads"),
        ("graphseq.models", "graphseq.nn.heads"),
        ("graphseq.training", "graphseq.models"),
    }
    assert not import_cycles(edges)
    assert not type_checking_back_edges(edges)
    assert not layer_violations(edges)
