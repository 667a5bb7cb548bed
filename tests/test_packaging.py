"""What a user installs and reads: one version, the licence in the wheel, extras that match
the imports, the torch floor, and README commands that the CLI accepts."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import graphseq
from graphseq.cli import make_parser

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()
STDLIB = set(sys.stdlib_module_names)


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


DOCS = ROOT / "docs"
# what a user reads first: README's quickstart and the guide's page on using a trained model
OWNED = _section("Quickstart") + (DOCS / "guide" / "use.md").read_text()


def test_one_version():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "graphseq.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", graphseq.__version__)
    assert f"## {graphseq.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_license_and_typing_marker_ship():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert (ROOT / "graphseq" / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["graphseq"]


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - STDLIB - {"graphseq", "data_builders", "__future__"}


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("-", "_") for r in reqs}


def test_server_imports_are_in_the_serve_extra():
    serve = _requirement_names(PYPROJECT["project"]["optional-dependencies"]["serve"])
    used = set().union(*map(_third_party_imports, (ROOT / "graphseq" / "serve").glob("*.py")))
    assert {"fastapi", "prometheus_client", "uvicorn"} <= used
    base = _requirement_names(PYPROJECT["project"]["dependencies"])
    assert used - base <= serve, used - base - serve
    test = _requirement_names(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert serve <= test  # the test suite exercises the server


def test_every_extra_is_named_in_the_readme_and_back():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert set(re.findall(r"^\| `(\w+)` \|", OWNED, flags=re.M)) == extras  # the extras table
    installed = {x for x in re.findall(r"\.\[(\w+)\]", README) if not x.isupper()}  # not NAME
    assert installed and installed <= extras


def test_torch_floor_covers_the_apis_used():
    (torch_req,) = [r for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch>")]
    floor = tuple(int(x) for x in torch_req.split(">=")[1].split("."))
    sources = "\n".join(p.read_text() for p in (ROOT / "graphseq").rglob("*.py"))
    if "torch.amp.custom_fwd(device_type" in sources:  # new in torch 2.4
        assert floor >= (2, 4)
    assert f"torch ≥ {floor[0]}.{floor[1]}" in _section("Quickstart")


def _readme_commands() -> list[list[str]]:
    cmds = []
    for block in _code_blocks(OWNED + (DOCS / "guide" / "tune.md").read_text(), "bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                if words and words[0] == "graphseq":
                    cmds.append(words[1:])
    return cmds


@pytest.mark.parametrize("args", _readme_commands(), ids=" ".join)
def test_readme_commands_parse(args):
    ns = make_parser().parse_args(args)  # an argparse error would exit 2 here
    assert callable(ns.func)


def test_readme_python_names_exist():
    from graphseq import recommend

    block = next(b for b in _code_blocks(OWNED, "python") if "load_run" in b)
    assert "from graphseq.recommend import load_run" in block
    for name in re.findall(r"run\.(\w+)\(", block):
        assert callable(getattr(recommend.Run, name)), name
    assert "allow_incomplete" in recommend.load_run.__code__.co_varnames


def test_readme_and_docs_stand_alone():
    """Nothing sends a reader to a file outside the repository."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    for page in pages:
        text = page.read_text()
        for outside in ("BENCHMARKS.md", "DESIGN.md", "STYLE.md", "shared/"):
            assert outside not in text, (page.name, outside)


def test_package_import_does_not_import_ogb():
    """ogb checks for a newer version over the network when imported: never at import time."""
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import graphseq, data_builders\n"
        "for pkg in (graphseq, data_builders):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if m.name not in ('graphseq.__main__',):\n"
        "            importlib.import_module(m.name)\n"
        "print(json.dumps('ogb' in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) is False


def test_readme_serve_defaults():
    ns = make_parser().parse_args(["serve", "--run", "r"])
    assert (ns.host, ns.port) == ("127.0.0.1", 8000)
    assert "--host 127.0.0.1 by default" in OWNED and "--port 1..65535" in OWNED


def test_console_script_and_module_share_one_entry():
    from graphseq import cli

    assert PYPROJECT["project"]["scripts"] == {"graphseq": "graphseq.cli:entry"}
    assert callable(cli.entry)
    assert "from graphseq.cli import entry" in (ROOT / "graphseq" / "__main__.py").read_text()
