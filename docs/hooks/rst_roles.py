"""MkDocs hook: the code's docstrings use Sphinx roles (``:class:`~a.b.C```) and ``Example::``
blocks, which mkdocstrings' Google style leaves as literal text. On the site a role becomes
its code span (``~`` keeps the last name, as Sphinx shows it) and ``Example::`` an
``Example:`` heading over its code block; the docstrings stay as they are for help() and IDEs."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([\w.]+)</code>")
LITERAL_BLOCK = re.compile(r"::</p>")  # a paragraph ending in "::" introduces a code block


def render_roles(html: str) -> str:
    """``html`` with Sphinx roles made code spans and ``::`` paragraph ends made ``:``."""
    html = ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)
    return LITERAL_BLOCK.sub(":</p>", html)


def on_page_content(html: str, page, config, files) -> str:  # noqa: ARG001 (hook API)
    return render_roles(html)
