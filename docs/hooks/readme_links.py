"""MkDocs hook: the home page is README.md, whose links into the docs are written for a
reader of the repository (``docs/results.md``, relative to the top level). On the site the
home page lives in ``docs/``, so those links lose their ``docs/`` prefix there; README.md
itself is unchanged and its links keep working on GitHub."""

from __future__ import annotations

import re
from pathlib import Path

INCLUDE = '--8<-- "README.md"'  # docs/index.md is this one line
DOCS_LINK = re.compile(r"\]\(docs/")  # a Markdown link target starting with docs/


def readme_for_site(readme: str) -> str:
    """README's Markdown with its ``](docs/…)`` link targets made relative to ``docs/``."""
    return DOCS_LINK.sub("](", readme)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (hook API)
    if page.file.src_uri != "index.md" or INCLUDE not in markdown:
        return markdown
    readme = Path(config.config_file_path).parent / "README.md"
    return markdown.replace(INCLUDE, readme_for_site(readme.read_text(encoding="utf-8")))
