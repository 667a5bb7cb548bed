"""The documentation site builds with ``mkdocs build --strict`` and holds the guide that
README points to."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_points_at_pages_that_exist_and_are_in_the_site():
    readme = (ROOT / "README.md").read_text()
    pages = re.findall(r"`(docs/[\w/]+\.md)`", readme)
    assert len(pages) >= 9
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in pages:
        assert (ROOT / page).exists(), page
        assert page.removeprefix("docs/") in nav, page
    assert '--8<-- "README.md"' in (ROOT / "docs" / "index.md").read_text()  # home = README


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    site = tmp_path / "site"
    tune = (site / "guide" / "tune" / "index.html").read_text()
    assert "use_default_space" in tune and "best_config.yaml" in tune
    api = (site / "api" / "train" / "index.html").read_text()
    assert "graphseq.train.search" in api and "graphseq.train.trainer" in api
    assert (site / "api" / "readers" / "index.html").exists()
