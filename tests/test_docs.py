"""The documentation site builds with ``mkdocs build --strict`` and no warning, and holds the
guide that README points to."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "hooks" / "readme_links.py"  # mkdocs.yml's hook for the home page


def test_readme_points_at_pages_that_exist_and_are_in_the_site():
    readme = (ROOT / "README.md").read_text()
    pages = re.findall(r"`(docs/[\w/]+\.md)`", readme)
    assert len(pages) >= 9
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in pages:
        assert (ROOT / page).exists(), page
        assert page.removeprefix("docs/") in nav, page
    assert '--8<-- "README.md"' in (ROOT / "docs" / "index.md").read_text()  # home = README


def test_readme_links_resolve_on_github_and_on_the_site():
    """README's links into docs/ name files that exist (GitHub resolves them from the top
    level); the site's hook turns them into links relative to docs/ (mkdocs checks those)."""
    spec = importlib.util.spec_from_file_location("readme_links", HOOK)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)", readme)
    local = [t for t in targets if "://" not in t]
    assert local and all(t.startswith("docs/") for t in local), local  # no link out of docs/
    for target in local:
        assert (ROOT / target).is_file(), target
    site = re.findall(r"\]\(([^)#\s]+)", hook.readme_for_site(readme))
    assert [t for t in site if "://" not in t] == [t.removeprefix("docs/") for t in local]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    # no -q: it hides the warnings, and --strict only fails on warnings it has printed
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    output = res.stdout + res.stderr
    assert res.returncode == 0, output[-3000:]
    assert "WARNING" not in output, output[-3000:]
    site = tmp_path / "site"
    home = (site / "index.html").read_text()
    assert 'href="results/"' in home and 'href="guide/train/"' in home  # README's links
    tune = (site / "guide" / "tune" / "index.html").read_text()
    assert "use_default_space" in tune and "best_config.yaml" in tune
    api = (site / "api" / "training" / "index.html").read_text()
    assert "graphseq.training.search" in api and "graphseq.training.trainer" in api
    assert (site / "api" / "readers" / "index.html").exists()
    python = (site / "guide" / "python" / "index.html").read_text()
    assert "read_frame" in python and "attrs[" in python and "DataFrame log" in python
    top = (site / "api" / "graphseq" / "index.html").read_text()
    assert "build_graph" in top and "item_embeddings" in top
    for page in ("config", "builders", "explore"):
        assert (site / "api" / page / "index.html").exists(), page
    pages = [p.read_text() for p in site.rglob("*.html")]
    assert not [p for p in pages if "Example::" in p or ":class:<code>" in p]  # rendered


def test_config_keys_page_is_the_code_s_own_table():
    """docs/config.md is generated from the key declarations: regenerate it with
    ``python -c "from graphseq.config import keys_table; print(keys_table())"``."""
    from graphseq.config import KEYS, keys_table

    page = (ROOT / "docs" / "config.md").read_text()
    assert page.endswith(keys_table()), "docs/config.md is stale: paste keys_table() into it"
    assert all(f"| `{k}` |" in page for k in KEYS)
